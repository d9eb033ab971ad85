"""The event-driven flow over the local runtime (``make dev``): real HTTP, real template wiring.

An order with ``tok_visa`` becomes PAID by itself, with the causation chain in its audit trail;
``tok_declined`` ends PAYMENT_FAILED with its stock released; notifications arrive exactly once,
also with the runtime's stream chaos (shuffled shards, duplicated deliveries) switched on.

Uses the e2e suite's runtime (``tests/e2e/conftest.py``: ``cairn``, ``staff``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

FLOW_TIMEOUT = 60.0


def wait_for(what: str, probe: Callable[[], Any], timeout: float = FLOW_TIMEOUT) -> Any:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


# -- helpers ------------------------------------------------------------------------------------
def place_order(cairn, token: str, token_name: str | None, sku: str, quantity: int = 2) -> tuple[str, str]:
    correlation = f"e2e-{uuid.uuid4()}"
    body: dict[str, Any] = {"items": [{"sku": sku, "quantity": quantity, "unit_price": "9.99"}], "currency": "USD"}
    if token_name:
        body["payment_token"] = token_name
    status, headers, answer = cairn.request("POST", "/orders", body, token, {"X-Correlation-Id": correlation})
    assert status == 201, answer
    assert answer["status"] == "CREATED"  # answered before any payment happened
    return answer["order_id"], correlation


def order_status(cairn, token: str, order_id: str) -> str:
    status, _, body = cairn.request("GET", f"/orders/{order_id}", token=token)
    assert status == 200, body
    return body["status"]


def audit_trail(cairn, token: str, order_id: str) -> list[dict[str, Any]]:
    status, _, body = cairn.request("GET", f"/orders/{order_id}/events", token=token)
    assert status == 200, body
    return body["events"]


def stream(cairn, stream_id: str) -> list[dict[str, Any]]:
    """A stream straight from the events table (the payment service's streams have no HTTP API)."""
    ddb = cairn.aws("dynamodb")
    items = ddb.query(
        TableName=cairn.outputs["EventsTableName"],
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ConsistentRead=True,
    )["Items"]
    return [
        {"event_id": i["event_id"]["S"], "type": i["type"]["S"], "metadata": json.loads(i["metadata"]["S"])}
        for i in items
    ]


def reserved(cairn, staff: str, sku: str) -> int:
    status, _, body = cairn.request("GET", f"/inventory/{sku}", token=staff)
    assert status == 200, body
    return body["reserved"]


def notifications_of(cairn, token: str, order_id: str) -> list[str]:
    status, _, body = cairn.request("GET", "/users/me/notifications?limit=100", token=token)
    assert status == 200, body
    return sorted(n["kind"] for n in body["notifications"] if n["order_id"] == order_id)


# -- the flow -----------------------------------------------------------------------------------
def test_tok_visa_becomes_paid_by_itself_with_the_causation_chain(cairn, staff):
    from integration import integration_event_id
    from payments.domain import payment_id_for, stream_id_for

    user = f"e2e-{uuid.uuid4().hex[:8]}"
    customer = cairn.token(user)
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    order_id, correlation = place_order(cairn, customer, "tok_visa", sku)

    wait_for("PAID", lambda: order_status(cairn, customer, order_id) == "PAID")
    events = audit_trail(cairn, customer, order_id)
    assert [e["type"] for e in events] == ["OrderCreated", "PaymentProcessed"]
    created, paid = events
    assert created["metadata"]["correlation_id"] == correlation
    assert paid["metadata"]["correlation_id"] == correlation
    assert paid["metadata"]["actor"] == "payments"

    # PaymentProcessed <- integration PaymentCaptured <- PaymentSucceeded <- integration OrderCreated
    payment = {e["type"]: e for e in stream(cairn, stream_id_for(payment_id_for(order_id)))}
    succeeded, requested = payment["PaymentSucceeded"], payment["PaymentRequested"]
    assert paid["metadata"]["causation_id"] == integration_event_id(succeeded["event_id"], "PaymentCaptured", 1)
    assert succeeded["metadata"]["causation_id"] == integration_event_id(created["event_id"], "OrderCreated", 1)
    assert requested["metadata"]["causation_id"] == succeeded["metadata"]["causation_id"]
    assert {e["metadata"]["correlation_id"] for e in payment.values()} == {correlation}

    wait_for("the reservation", lambda: reserved(cairn, staff, sku) == 2)
    wait_for(
        "two notifications",
        lambda: notifications_of(cairn, customer, order_id) == ["order_created", "payment_processed"],
    )


def test_tok_declined_fails_payment_and_releases_stock(cairn, staff):
    user = f"e2e-{uuid.uuid4().hex[:8]}"
    customer = cairn.token(user)
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    keep, _ = place_order(cairn, customer, None, sku, quantity=3)  # an open order holding stock
    wait_for("the first reservation", lambda: reserved(cairn, staff, sku) == 3)
    order_id, _ = place_order(cairn, customer, "tok_declined", sku, quantity=5)

    wait_for("PAYMENT_FAILED", lambda: order_status(cairn, customer, order_id) == "PAYMENT_FAILED")
    events = audit_trail(cairn, customer, order_id)
    assert [e["type"] for e in events] == ["OrderCreated", "PaymentFailed"]
    assert events[1]["data"]["reason"] == "card_declined"
    # reserved on OrderCreated, released on PaymentFailed: only the open order holds stock
    wait_for("the release", lambda: cairn.request("GET", f"/inventory/{sku}", token=staff)[2]["version"] == 3)
    assert reserved(cairn, staff, sku) == 3
    assert order_status(cairn, customer, keep) == "CREATED"  # no token: it waits for staff
    wait_for("the order_created notification", lambda: notifications_of(cairn, customer, order_id) == ["order_created"])
    time.sleep(2)
    assert notifications_of(cairn, customer, order_id) == ["order_created"]  # no payment notification


def test_notifications_exactly_once_under_duplicated_and_shuffled_delivery(cairn, staff):
    cairn.chaos(shuffle=True, duplicate=0.6, seed=7)
    try:
        user = f"e2e-{uuid.uuid4().hex[:8]}"
        customer = cairn.token(user)
        order_id, _ = place_order(cairn, customer, "tok_visa", f"E2E-{uuid.uuid4().hex[:8]}")
        wait_for("PAID", lambda: order_status(cairn, customer, order_id) == "PAID")
        status, _, body = cairn.request("POST", f"/orders/{order_id}/shipment", {"tracking": "1Z999"}, staff)
        assert status == 200, body
        status, _, body = cairn.request("POST", f"/orders/{order_id}/delivery", {}, staff)
        assert status == 200, body
        expected = ["order_created", "order_delivered", "order_shipped", "payment_processed"]
        wait_for("four notifications", lambda: notifications_of(cairn, customer, order_id) == expected)
        time.sleep(3)  # let late duplicates arrive
        assert notifications_of(cairn, customer, order_id) == expected
        assert [e["type"] for e in audit_trail(cairn, customer, order_id)] == [
            "OrderCreated",
            "PaymentProcessed",
            "OrderShipped",
            "OrderDelivered",
        ]
        assert cairn.chaos()["duplicates_sent"] > 0  # the chaos really re-delivered stream records
    finally:
        cairn.chaos(shuffle=False, duplicate=0.0)
