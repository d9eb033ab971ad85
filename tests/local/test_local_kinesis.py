"""Kinesis Data Streams for DynamoDB on the local runtime (local/kinesis.py): the fixture's events
table streams to Kinesis, and its projector reads through an enhanced fan-out consumer.

moto does not replicate a table to Kinesis; these tests fail without the runtime's forwarder (no
record reaches the function), without Lambda's filter on ``data`` (other streams reach it),
without the Kinesis on-failure record, and without trimming (the shards keep every record)."""

from __future__ import annotations

import base64
import copy
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.cloud import aws_client
from tests.local.conftest import FIXTURE, Client

STACK = "FixtureKinesis"


def _kinesis_template() -> dict[str, Any]:
    body = copy.deepcopy(json.loads(FIXTURE.read_text()))
    res = body["Resources"]
    res["Fanout"] = {"Type": "AWS::Kinesis::Stream",
                     "Properties": {"StreamModeDetails": {"StreamMode": "ON_DEMAND"},
                                    "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}}}
    res["ProjectorConsumer"] = {"Type": "AWS::Kinesis::StreamConsumer",
                                "Properties": {"ConsumerName": "projector",
                                               "StreamARN": {"Fn::GetAtt": ["Fanout", "Arn"]}}}
    res["EventsTable"]["Properties"]["KinesisStreamSpecification"] = {"StreamArn": {"Fn::GetAtt": ["Fanout", "Arn"]}}
    mapping = res["ProjectorStream"]["Properties"]
    mapping["EventSourceArn"] = {"Fn::GetAtt": ["ProjectorConsumer", "ConsumerARN"]}
    mapping["FilterCriteria"] = {"Filters": [{"Pattern": json.dumps(
        {"data": {"eventName": ["INSERT"], "dynamodb": {"Keys": {"stream_id": {"S": [{"prefix": "item-"}]}}}}})}]}
    return body


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Iterator[Any]:
    from local.esm import Timing
    from local.runtime import LocalRuntime, RuntimeOptions
    from local.template import Template

    # The fixture's code paths are relative to the template: keep them pointing at the fixture.
    # Its own stack name: moto's backends are per process, shared with the fixture runtime.
    template = Template(_kinesis_template(), STACK, source=FIXTURE)
    opts = RuntimeOptions(
        port=0, state_dir=tmp_path_factory.mktemp("local-state"), echo_function_logs=False,
        access_log=False, max_concurrency=6,
        timing=Timing(poll_interval=0.1, retry_base=0.05, retry_max=0.3, sqs_retry_visibility=1),
    )
    rt = LocalRuntime(template, opts).start()
    yield rt
    urllib.request.urlopen(urllib.request.Request(f"{rt.moto.endpoint}/moto-api/reset", method="POST"), timeout=30)
    rt.stop()


@pytest.fixture(scope="module")
def client(runtime) -> Client:
    return Client(runtime.base_url)


def _wait(predicate, timeout=20.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def _view(runtime, pk):
    return aws_client("dynamodb", runtime.moto.endpoint).query(
        TableName=f"{STACK}-ViewTable", KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": pk}})["Items"]


def test_changes_reach_the_function_as_kinesis_for_dynamodb_records(runtime, client):
    token = client.token()
    for _ in range(3):
        assert client.json("POST", "/streams/item-k/events", {"data": "x"}, token=token)[0] == 201
    assert client.json("POST", "/streams/other-k/events", {"data": "x"}, token=token)[0] == 201
    items = _wait(lambda: (r := _view(runtime, "item-k")) and len(r) == 3 and r)
    record = json.loads(items[0]["record"]["S"])
    stream_arn = runtime.template.resources["Fanout"].attributes["Arn"]
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"] == stream_arn
    assert record["eventID"] == f"{record['eventID'].split(':')[0]}:{record['kinesis']['sequenceNumber']}"
    change = json.loads(base64.b64decode(record["kinesis"]["data"]))
    assert set(change) == {"awsRegion", "eventID", "eventName", "userIdentity", "recordFormat", "tableName",
                           "dynamodb", "eventSource"}
    assert change["recordFormat"] == "application/json" and change["tableName"] == f"{STACK}-EventsTable"
    assert change["eventSource"] == "aws:dynamodb" and change["eventName"] == "INSERT"
    assert change["dynamodb"]["Keys"] == {"stream_id": {"S": "item-k"}, "version": {"N": "1"}}
    assert change["dynamodb"]["ApproximateCreationDateTime"] > 10**12  # milliseconds
    assert runtime.wait_idle(10)
    mapping = next(m for m in runtime.mappings if m.spec.logical_id == "ProjectorStream")
    assert mapping.spec.kind == "kinesis" and len(mapping.shards) == 2
    assert mapping.stats["filtered"] >= 1  # other-k was filtered on `data`
    assert not _view(runtime, "other-k")
    forwarder = next(m for m in runtime.mappings if m.spec.kind == "forwarder")
    assert forwarder.stats["forwarded"] >= 4
    consumers = aws_client("kinesis", runtime.moto.endpoint).list_stream_consumers(StreamARN=stream_arn)["Consumers"]
    assert [c["ConsumerName"] for c in consumers] == ["projector"]


def test_poison_record_goes_to_the_on_failure_destination_with_kinesis_batch_info(runtime, client):
    token = client.token()
    client.json("POST", "/streams/item-q/events", {"data": "ok"}, token=token)
    client.json("POST", "/streams/item-q/events", {"data": "poison"}, token=token)
    url = runtime.outputs[STACK]["FailureQueueUrl"]
    sqs = aws_client("sqs", runtime.moto.endpoint)
    got = _wait(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                .get("Messages"))
    failure = json.loads(got[0]["Body"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    info = failure["KinesisBatchInfo"]
    assert "DDBStreamBatchInfo" not in failure
    assert info["batchSize"] == 1 and info["streamArn"] == runtime.template.resources["Fanout"].attributes["Arn"]
    assert info["shardId"].startswith("shardId-")
    client.json("POST", "/streams/item-q/events", {"data": "after"}, token=token)
    _wait(lambda: len(_view(runtime, "item-q")) == 2)


def test_the_kinesis_shards_stay_bounded(runtime, client):
    token = client.token()
    for i in range(30):
        client.json("POST", f"/streams/item-t{i % 5}/events", {"data": "x"}, token=token)
    assert runtime.wait_idle(20)
    runtime.kinesis.keep_passed = 3  # the bounded buffer past every reader (1,000 by default)
    runtime.kinesis.trim()
    heads = runtime.kinesis.heads(runtime.template.resources["Fanout"].attributes["Arn"])
    stream = runtime.kinesis._stream(runtime.template.resources["Fanout"].attributes["Arn"])
    kept = sum(len(s.records) for s in stream.shards.values())
    assert sum(heads.values()) >= 30  # records were numbered past the trim
    assert kept <= 3 * len(stream.shards)  # only the buffer is left
    assert runtime.kinesis.trimmed >= 30 - 3 * len(stream.shards)
    assert runtime.status()["streams"]["kinesis_records_trimmed"] == runtime.kinesis.trimmed
