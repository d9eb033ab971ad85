"""A poison record (an event the projection cannot decode) is parked, not retried forever."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e


def test_undecodable_event_parks_its_stream_and_the_rest_flows(cairn, staff):
    ddb = cairn.aws("dynamodb")
    poison_stream = f"order-{uuid.uuid4()}"
    ddb.put_item(
        TableName=cairn.outputs["EventsTableName"],
        Item={
            "stream_id": {"S": poison_stream}, "version": {"N": "1"}, "event_id": {"S": str(uuid.uuid4())},
            "type": {"S": "OrderCreated"}, "schema_version": {"N": "1"},
            "occurred_at": {"S": "2026-11-26T08:30:00Z"}, "data": {"S": "{not json"}, "metadata": {"S": "{}"},
        },
    )

    def order_view_parked():
        projections = cairn.request("GET", "/ops/projections", token=staff)[2]["projections"]
        parked = [p for p in projections if p["name"] == "order_view" and p["parked_streams"] >= 1]
        return parked or None

    wait_for("the order projection to park the poison stream", order_view_parked, timeout=90)

    sqs = cairn.aws("sqs")
    urls = sqs.list_queues(QueueNamePrefix="Cairn-OrdersProjectionParked").get("QueueUrls", [])
    assert urls, "the orders projection's parked queue exists"

    def parked_message():
        got = sqs.receive_message(QueueUrl=urls[0], MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        return [m for m in got if poison_stream in m["Body"]] or None

    message = wait_for("a parked-stream message", parked_message, timeout=30)
    assert json.loads(message[0]["Body"])

    # Other streams keep flowing past the poison one.
    alice = cairn.token(f"alice-{uuid.uuid4().hex[:6]}")
    status, _, created = cairn.request("POST", "/orders", {"items": [{"sku": "SKU-P", "quantity": 1, "unit_price": "1.00"}],
                                                          "currency": "USD"}, alice)
    assert status == 201
    cairn.wait_idle(timeout=90)
    assert cairn.request("GET", f"/orders/{created['order_id']}", token=alice)[2]["status"] == "CREATED"
