"""The fast path for moto's attribute-value serialization (local/attribute_values.py) changes no
answer: the same requests, served with and without it, give equal responses."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local import attribute_values

RICH_ITEM = {
    "data": {"M": {"text": {"S": "é" * 20}, "n": {"N": "1.50"}, "list": {"L": [{"S": "a"}, {"BOOL": True}, {"NULL": True}]},
                   "set": {"SS": ["a", "b"]}, "nums": {"NS": ["1", "2.5"]}, "empty": {"M": {}}, "none": {"L": []}}},
    "blob": {"B": b"\x00\x01binary"},
    "blobs": {"BS": [b"x", b"y"]},
    "nested_blob": {"M": {"b": {"B": b"\xff"}}},
    "empty": {"S": ""},
    "flag": {"BOOL": False},
}


@pytest.fixture
def fast_path_off() -> Any:
    """moto's own serializer for the test, whatever was installed before; restored after."""
    was = attribute_values._original is not None
    attribute_values.uninstall()
    yield
    if was:
        attribute_values.install()


def _observe(dynamodb: Any, streams: Any) -> list[Any]:
    dynamodb.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "v", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "p", "AttributeType": "S"}, {"AttributeName": "v", "AttributeType": "N"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for version in range(1, 6):
        dynamodb.put_item(TableName="t", Item={"p": {"S": "a"}, "v": {"N": str(version)}, **RICH_ITEM})
    dynamodb.update_item(TableName="t", Key={"p": {"S": "a"}, "v": {"N": "1"}}, UpdateExpression="SET flag = :t",
                         ExpressionAttributeValues={":t": {"BOOL": True}}, ReturnValues="ALL_NEW")
    answers: list[Any] = [
        dynamodb.query(TableName="t", KeyConditionExpression="p = :p", ExpressionAttributeValues={":p": {"S": "a"}}),
        dynamodb.get_item(TableName="t", Key={"p": {"S": "a"}, "v": {"N": "2"}}),
        dynamodb.scan(TableName="t", Limit=2),
        dynamodb.batch_get_item(RequestItems={"t": {"Keys": [{"p": {"S": "a"}, "v": {"N": "3"}}]}}),
        dynamodb.delete_item(TableName="t", Key={"p": {"S": "a"}, "v": {"N": "5"}}, ReturnValues="ALL_OLD"),
    ]
    try:
        dynamodb.put_item(TableName="t", Item={"p": {"S": "a"}, "v": {"N": "4"}}, ConditionExpression="attribute_not_exists(p)",
                          ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except dynamodb.exceptions.ConditionalCheckFailedException as exc:
        answers.append(exc.response["Item"])
    arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    # the images: sequence numbers, times and sizes come from counters shared by every mock
    images = ("Keys", "NewImage", "OldImage", "StreamViewType")
    answers.append([{k: record["dynamodb"].get(k) for k in images}
                    for record in streams.get_records(ShardIterator=iterator)["Records"]])
    for answer in answers:
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    return answers


def test_every_dynamodb_answer_is_the_same_with_and_without_the_fast_path(fast_path_off: None) -> None:
    from moto import mock_aws

    from cairn.aws import client

    with mock_aws():
        plain = _observe(client("dynamodb"), client("dynamodbstreams"))
    attribute_values.install()
    with mock_aws():
        fast = _observe(client("dynamodb"), client("dynamodbstreams"))
    assert fast == plain
    assert fast[1]["Item"]["blob"] == {"B": b"\x00\x01binary"} and fast[1]["Item"]["data"]["M"]["set"] == {"SS": ["a", "b"]}


def test_only_the_wire_form_takes_the_fast_path() -> None:
    assert attribute_values.wire_form({"S": "x"}) == {"S": "x"}
    assert attribute_values.wire_form({"L": [{"N": "1"}, {"M": {"a": {"NULL": True}}}]}) == {"L": [{"N": "1"}, {"M": {"a": {"NULL": True}}}]}
    for other in ({"B": "AAE="}, {"M": {"a": {"BS": []}}}, {"S": 1}, {"N": 1}, {"S": "x", "N": "1"}, {}, {"SS": [1]}, "x", None,
                  {"L": {"S": "x"}}, {"M": []}, {"BOOL": "true"}, {"XX": "x"}):
        assert attribute_values.wire_form(other) is None, other


@given(st.recursive(
    st.one_of(st.text().map(lambda s: {"S": s}), st.booleans().map(lambda b: {"BOOL": b}),
              st.lists(st.text(), unique=True).map(lambda v: {"SS": v})),
    lambda children: st.one_of(st.lists(children).map(lambda v: {"L": v}),
                               st.dictionaries(st.text(), children).map(lambda v: {"M": v})),
    max_leaves=20,
))
def test_a_copy_is_equal_and_shares_no_container(value: dict[str, Any]) -> None:
    copied = attribute_values.wire_form(value)
    assert copied == value and copied is not value
