"""A batch the publisher's stream mapping gives up on (retries exhausted) lands in its on-failure
queue as Lambda's ``DDBStreamBatchInfo`` record; once the cause is fixed, ``python -m cairn_tools
redrive`` re-reads the range from the stream and publishes it: the order's notification arrives.

The on-failure queue is shared: another stream's batch that is still failing may sit in it (the
poison test leaves one on the shared runtime). The test waits for the batch that holds ITS stream
(not the first message) and redrives only that one (``--stream``); the other stays queued."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests.e2e.conftest import REPO, wait_for

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SKU-REDRIVE-1", "quantity": 1, "unit_price": "2.00"}]


def test_publisher_batch_redriven_after_retries_are_exhausted(cairn):
    from cairn_tools.redrive import BatchInfo, read_range

    alice = cairn.token(f"redrive-{uuid.uuid4().hex[:8]}")
    status, _, created = cairn.request("POST", "/orders", {"items": ITEMS, "currency": "USD"}, alice)
    assert status == 201, created
    ddb, sqs, kinesis, streams = (cairn.aws(n) for n in ("dynamodb", "sqs", "kinesis", "dynamodbstreams"))
    table = cairn.outputs["EventsTableName"]
    model = ddb.get_item(TableName=table, Key={"stream_id": {"S": created["order_id"]}, "version": {"N": "1"}},
                         ConsistentRead=True)["Item"]
    failed = cairn.outputs["PublisherFailedQueueUrl"]

    def poison() -> tuple[str, dict]:
        stream = f"order-{uuid.uuid4()}"
        item = {**model, "stream_id": {"S": stream}, "event_id": {"S": str(uuid.uuid4())}, "data": {"S": "{not json"}}
        ddb.put_item(TableName=table, Item=item)
        return stream, item

    def held_by(message: dict) -> dict[str, list[int]]:
        return read_range(streams, BatchInfo.parse(message["Body"]), ("order-",), kinesis=kinesis)

    def batch_holding(stream: str):
        def probe():
            got = sqs.receive_message(QueueUrl=failed, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
            for m in got:
                if stream in held_by(m):
                    return m
            return None
        return wait_for(f"the publisher's batch holding {stream} in its on-failure queue", probe, timeout=180, interval=1.0)

    # a stream that stays broken: its batch is in the queue first (as after test_e2e_poison)
    other, _ = poison()
    batch_holding(other)
    poisoned, item = poison()
    message = json.loads(batch_holding(poisoned)["Body"])
    # the publisher reads the fan-out stream (Kinesis Data Streams for DynamoDB, issue 18)
    info = message.get("KinesisBatchInfo") or message["DDBStreamBatchInfo"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["batchSize"] >= 1 and info["streamArn"].startswith(("arn:aws:kinesis:", "arn:aws:dynamodb:"))

    # the fix: the event is readable again (here: rewritten; in life, a deploy that reads it)
    data = json.loads(model["data"]["S"])
    data["order_id"] = poisoned
    ddb.put_item(TableName=table, Item={**item, "data": {"S": json.dumps(data)}})
    outputs = cairn.state_dir / "outputs.json" if cairn.state_dir else REPO / ".local" / "outputs.json"

    def redrive(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cairn_tools", "redrive", "publisher", "--json", "--outputs", str(outputs), *extra],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )

    # every batch: the still-broken one fails (and stays), whatever is fixed is applied
    everything = redrive("--dry-run")
    assert everything.returncode == 0, everything.stderr
    [dry] = json.loads(everything.stdout)["redrives"]
    held = {s for batch in dry["held"] for s in batch["streams"]}
    assert {other, poisoned} <= held and dry["redriven"] == 0
    done = redrive("--stream", poisoned)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["redrives"]
    assert (row["consumer"], row["redriven"], row["failed"]) == ("Publisher", 1, 0) and row["events"] >= 1
    assert row["skipped"] >= 1
    assert "redrive Publisher [" in done.stderr

    def notified():
        body = cairn.request("GET", "/users/me/notifications?limit=100", token=alice)[2]
        return [n for n in body["notifications"] if n["order_id"] == poisoned] or None

    assert [n["kind"] for n in wait_for("the redriven order's notification", notified, timeout=60)]
    left = sqs.receive_message(QueueUrl=failed, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    still = {s for m in left for s in held_by(m)}
    assert other in still and poisoned not in still  # the broken one stays queued, the redriven one is gone
