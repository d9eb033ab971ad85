"""Lambda / EventBridge event pattern matching."""

from __future__ import annotations

import pytest

from local.filters import FilterError, matches, matches_any, parse_filter_criteria, sqs_filter_view

RECORD = {
    "eventName": "INSERT",
    "dynamodb": {"Keys": {"stream_id": {"S": "order-123"}, "version": {"N": "3"}},
                 "NewImage": {"type": {"S": "OrderCreated"}, "amount": {"N": "12.5"}}},
    "tags": ["a", "b"],
    "n": 5,
    "ip": "10.0.0.7",
}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ({"eventName": ["INSERT"]}, True),
        ({"eventName": ["MODIFY", "REMOVE"]}, False),
        ({"dynamodb": {"Keys": {"stream_id": {"S": [{"prefix": "order-"}]}}}}, True),
        ({"dynamodb": {"Keys": {"stream_id": {"S": [{"prefix": "account-"}]}}}}, False),
        ({"dynamodb": {"Keys": {"stream_id": {"S": [{"suffix": "123"}]}}}}, True),
        ({"dynamodb": {"NewImage": {"type": {"S": [{"equals-ignore-case": "ordercreated"}]}}}}, True),
        ({"dynamodb": {"NewImage": {"missing": [{"exists": False}]}}}, True),
        ({"dynamodb": {"NewImage": {"type": [{"exists": True}]}}}, True),
        ({"dynamodb": {"NewImage": {"type": [{"exists": False}]}}}, False),
        ({"eventName": [{"anything-but": ["REMOVE"]}]}, True),
        ({"eventName": [{"anything-but": {"prefix": "INS"}}]}, False),
        ({"n": [{"numeric": [">", 1, "<=", 5]}]}, True),
        ({"n": [{"numeric": [">", 5]}]}, False),
        ({"tags": ["b"]}, True),
        ({"tags": ["z"]}, False),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, True),
        ({"eventName": [{"wildcard": "IN*T"}]}, True),
        ({"$or": [{"eventName": ["REMOVE"]}, {"n": [5]}]}, True),
        ({"$or": [{"eventName": ["REMOVE"]}, {"n": [6]}]}, False),
        ({"missing": ["x"]}, False),
        ({"n": [5.0]}, True),
    ],
)
def test_patterns(pattern, expected):
    assert matches(pattern, RECORD) is expected


def test_filter_criteria_are_ored_and_empty_matches_all():
    criteria = {"Filters": [{"Pattern": '{"eventName": ["REMOVE"]}'}, {"Pattern": '{"n": [5]}'}]}
    patterns = parse_filter_criteria(criteria)
    assert len(patterns) == 2
    assert matches_any(patterns, RECORD)
    assert matches_any([], RECORD)
    assert not matches_any(parse_filter_criteria({"Filters": [{"Pattern": '{"n": [1]}'}]}), RECORD)


def test_invalid_patterns_are_rejected():
    with pytest.raises(FilterError):
        matches({"a": "scalar"}, {"a": "scalar"})
    with pytest.raises(FilterError):
        matches({"a": [{"nonsense": 1}]}, {"a": 1})
    with pytest.raises(FilterError):
        parse_filter_criteria({"Filters": [{"Pattern": "[1]"}]})


def test_sqs_body_is_filtered_as_json_when_it_is_json():
    rec = {"body": '{"detail-type": "OrderCreated"}', "messageId": "1"}
    assert matches({"body": {"detail-type": ["OrderCreated"]}}, sqs_filter_view(rec))
    assert sqs_filter_view({"body": "plain"})["body"] == "plain"
