"""A batch the publisher's stream mapping gives up on (retries exhausted) lands in its on-failure
queue as Lambda's ``DDBStreamBatchInfo`` record; once the cause is fixed, ``python -m cairn_tools
redrive`` re-reads the range from the stream and publishes it: the order's notification arrives."""

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
    alice = cairn.token(f"redrive-{uuid.uuid4().hex[:8]}")
    status, _, created = cairn.request("POST", "/orders", {"items": ITEMS, "currency": "USD"}, alice)
    assert status == 201, created
    ddb, sqs = cairn.aws("dynamodb"), cairn.aws("sqs")
    table = cairn.outputs["EventsTableName"]
    model = ddb.get_item(TableName=table, Key={"stream_id": {"S": created["order_id"]}, "version": {"N": "1"}},
                         ConsistentRead=True)["Item"]

    poisoned = f"order-{uuid.uuid4()}"
    item = {**model, "stream_id": {"S": poisoned}, "event_id": {"S": str(uuid.uuid4())}, "data": {"S": "{not json"}}
    ddb.put_item(TableName=table, Item=item)
    failed = cairn.outputs["PublisherFailedQueueUrl"]

    def batch_info():
        got = sqs.receive_message(QueueUrl=failed, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return [json.loads(m["Body"]) for m in got] or None

    [message] = wait_for("the publisher's batch in its on-failure queue", batch_info, timeout=180, interval=1.0)
    info = message["DDBStreamBatchInfo"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["batchSize"] >= 1 and info["streamArn"].startswith("arn:aws:dynamodb:")

    # the fix: the event is readable again (here: rewritten; in life, a deploy that reads it)
    data = json.loads(model["data"]["S"])
    data["order_id"] = poisoned
    ddb.put_item(TableName=table, Item={**item, "data": {"S": json.dumps(data)}})
    outputs = cairn.state_dir / "outputs.json" if cairn.state_dir else REPO / ".local" / "outputs.json"
    done = subprocess.run(
        [sys.executable, "-m", "cairn_tools", "redrive", "publisher", "--json", "--outputs", str(outputs)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["redrives"]
    assert (row["consumer"], row["redriven"], row["failed"]) == ("Publisher", 1, 0) and row["events"] >= 1
    assert "redrive Publisher [" in done.stderr

    def notified():
        body = cairn.request("GET", "/users/me/notifications?limit=100", token=alice)[2]
        return [n for n in body["notifications"] if n["order_id"] == poisoned] or None

    assert [n["kind"] for n in wait_for("the redriven order's notification", notified, timeout=60)]
    assert sqs.receive_message(QueueUrl=failed, VisibilityTimeout=0).get("Messages", []) == []
