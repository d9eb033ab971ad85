"""The seed's order story over HTTP: create, pay, ship, deliver; read models, time travel, audit."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from decimal import Decimal

import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SKU-E2E-1", "quantity": 2, "unit_price": "9.99"}, {"sku": "SKU-E2E-2", "quantity": 1, "unit_price": "5.00"}]


def _instant_after_now() -> str:
    """A whole-second instant after everything done so far, and wait until it has passed."""
    t = math.ceil(time.time())
    while time.time() < t + 0.05:
        time.sleep(0.05)
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_order_lifecycle(cairn, staff):
    alice = cairn.token(f"alice-{uuid.uuid4().hex[:6]}")
    bob = cairn.token(f"bob-{uuid.uuid4().hex[:6]}")
    before_creation = _instant_after_now()
    correlation = f"e2e-{uuid.uuid4()}"

    status, headers, created = cairn.request("POST", "/orders", {"items": ITEMS, "currency": "USD"}, alice,
                                             {"X-Correlation-Id": correlation})
    assert status == 201, created
    order_id = created["order_id"]
    assert created["version"] == 1 and created["status"] == "CREATED" and created["total"] == "24.98"
    assert headers["Location"] == f"/orders/{order_id}"
    assert headers["ETag"] == '"1"' and headers["X-Correlation-Id"] == correlation
    after_creation = _instant_after_now()

    # Staff-only steps: the owner is refused, a wrong amount is a business rule violation.
    assert cairn.request("POST", f"/orders/{order_id}/payment", {"payment_id": "p1", "amount": "24.98"}, alice)[0] == 403
    status, _, problem = cairn.request("POST", f"/orders/{order_id}/payment", {"payment_id": "p1", "amount": "1.00"}, staff)
    assert status == 409 and problem["status"] == 409
    status, _, paid = cairn.request("POST", f"/orders/{order_id}/payment", {"payment_id": "p1", "amount": "24.98"}, staff)
    assert (status, paid["status"], paid["version"]) == (200, "PAID", 2)
    after_payment = _instant_after_now()
    status, _, shipped = cairn.request("POST", f"/orders/{order_id}/shipment", {"tracking": "TRACK123"}, staff)
    assert (status, shipped["status"], shipped["version"]) == (200, "SHIPPED", 3)
    status, _, problem = cairn.request("POST", f"/orders/{order_id}/cancellation", {"reason": "late"}, alice)
    assert status == 409 and problem["type"].endswith("/invalid-transition")
    status, headers, delivered = cairn.request("POST", f"/orders/{order_id}/delivery", {}, staff)
    assert (status, delivered["status"], delivered["version"]) == (200, "DELIVERED", 4)
    assert headers["ETag"] == '"4"'

    # Read-your-writes, then the read model itself once the projection caught up.
    status, headers, view = cairn.request("GET", f"/orders/{order_id}?min_version=4", token=alice)
    assert status == 200 and view["status"] == "DELIVERED" and view["version"] == 4
    assert headers["ETag"] == '"4"'
    cairn.wait_idle()
    status, _, view = cairn.request("GET", f"/orders/{order_id}", token=alice)
    assert status == 200
    assert (view["status"], view["version"], view["total"], view["tracking"]) == ("DELIVERED", 4, "24.98", "TRACK123")
    assert [t["type"] for t in view["timeline"]] == ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"]
    assert view["customer_id"] and view["currency"] == "USD" and len(view["items"]) == 2

    # Time travel: by version and by instant; before it existed -> 404.
    status, _, v2 = cairn.request("GET", f"/orders/{order_id}/history?version=2", token=alice)
    assert (status, v2["status"], v2["version"]) == (200, "PAID", 2)
    status, _, then = cairn.request("GET", f"/orders/{order_id}/history?at={after_creation}", token=alice)
    assert (status, then["status"], then["version"]) == (200, "CREATED", 1)
    status, _, then = cairn.request("GET", f"/orders/{order_id}/history?at={after_payment}", token=alice)
    assert (status, then["status"]) == (200, "PAID")
    assert cairn.request("GET", f"/orders/{order_id}/history?at={before_creation}", token=alice)[0] == 404

    # Audit trail: every event, in order, with the request's correlation id.
    status, _, page = cairn.request("GET", f"/orders/{order_id}/events", token=alice)
    assert status == 200 and page["next_after"] is None
    events = page["events"]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    assert [e["type"] for e in events] == ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"]
    assert events[0]["metadata"]["correlation_id"] == correlation and events[0]["stream_id"] == order_id
    status, _, page = cairn.request("GET", f"/orders/{order_id}/events?after=2&limit=1", token=alice)
    assert [e["version"] for e in page["events"]] == [3] and page["next_after"] == 3

    # Isolation: another user does not learn it exists; lists are per user.
    assert cairn.request("GET", f"/orders/{order_id}", token=bob)[0] == 404
    assert cairn.request("GET", f"/orders/{order_id}/events", token=bob)[0] == 404
    mine = cairn.request("GET", "/users/me/orders", token=alice)[2]["orders"]
    assert [o["order_id"] for o in mine] == [order_id] and mine[0]["status"] == "DELIVERED"
    assert cairn.request("GET", "/users/me/orders", token=bob)[2]["orders"] == []

    # Analytics (staff): today's row counts this order and its revenue.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert cairn.request("GET", f"/analytics/daily?from={today}&to={today}", token=alice)[0] == 403

    def todays_row():
        rows = cairn.request("GET", f"/analytics/daily?from={today}&to={today}", token=staff)[2]["days"]
        row = next((d for d in rows if d["currency"] == "USD"), None)
        return row if row and row["orders_paid"] >= 1 else None

    row = wait_for("analytics", todays_row)
    assert row["orders_created"] >= 1 and Decimal(row["revenue"]) >= Decimal("24.98")


def test_cancel_before_shipping_and_validation(cairn, staff):
    alice = cairn.token(f"alice-{uuid.uuid4().hex[:6]}")
    status, _, created = cairn.request("POST", "/orders", {"items": ITEMS, "currency": "USD"}, alice)
    assert status == 201
    order_id = created["order_id"]
    status, _, cancelled = cairn.request("POST", f"/orders/{order_id}/cancellation", {"reason": "changed mind"}, alice)
    assert (status, cancelled["status"], cancelled["version"]) == (200, "CANCELLED", 2)
    assert cairn.request("POST", f"/orders/{order_id}/shipment", {"tracking": "X"}, staff)[0] == 409
    status, _, problem = cairn.request("POST", "/orders", {"items": [], "currency": "USD"}, alice)
    assert status == 422 and problem["errors"]
    assert cairn.request("POST", "/orders", raw=b"{not json", token=alice)[0] == 400
    assert cairn.request("POST", "/orders", {"items": ITEMS, "currency": "USD", "pad": "x" * 70000}, alice)[0] == 413
