"""OrdersQueries (orders.queries.handler): Order View from the read model (filled by the real
projection Lambda from moto's stream), read-your-writes, time travel, audit trail, the caller's
orders, daily analytics; isolation and staff rules."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, Projector

STAFF = {"user": "sam", "groups": ["staff"]}


def create(api: Api, user: str = "alice", body: dict | None = None) -> str:
    reply = api.post("/orders", body or ORDER_BODY, user=user)
    assert reply.status == 201, reply.text
    return reply.json["order_id"]


def pay(api: Api, order_id: str, amount: str = ORDER_TOTAL, payment_id: str = "pay-1") -> Any:
    reply = api.post(f"/orders/{order_id}/payment", {"payment_id": payment_id, "amount": amount}, **STAFF)
    assert reply.status == 200, reply.text
    return reply


# -- GET /orders/{id} -----------------------------------------------------------------------------
def test_order_view_from_the_read_model(orders_api: Api, orders_queries: Api, order_projector: Projector):
    order_id = create(orders_api)
    pay(orders_api, order_id)
    orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "ABC123"}, **STAFF)
    assert order_projector.run() == 3
    reply = orders_queries.get(f"/orders/{order_id}")
    assert reply.status == 200, reply.text
    assert reply.headers["x-cairn-source"] == "read-model"
    assert reply.headers["etag"] == '"3"'
    view = reply.json
    assert {k: view[k] for k in ("order_id", "customer_id", "status", "currency", "total", "version", "tracking")} == {
        "order_id": order_id,
        "customer_id": "alice",
        "status": "SHIPPED",
        "currency": "USD",
        "total": ORDER_TOTAL,
        "version": 3,
        "tracking": "ABC123",
    }
    assert view["items"] == ORDER_BODY["items"]
    assert [(s["type"], s["version"]) for s in view["timeline"]] == [
        ("OrderCreated", 1),
        ("PaymentProcessed", 2),
        ("OrderShipped", 3),
    ]
    assert view["created_at"] == view["timeline"][0]["occurred_at"]
    assert view["updated_at"] == view["timeline"][-1]["occurred_at"]
    assert view["created_at"].endswith("Z")


def test_order_view_shows_pending_payment_until_its_outcome(
    orders_api: Api, orders_queries: Api, order_projector: Projector
):
    with_token = create(orders_api, body={**ORDER_BODY, "payment_token": "tok_visa"})
    without = create(orders_api)
    order_projector.run()
    assert orders_queries.get(f"/orders/{with_token}").json["pending"] == ["payment"]
    assert orders_queries.get(f"/orders/{without}").json["pending"] == []
    pay(orders_api, with_token)
    # the event-store fold (min_version) and the read model agree
    assert orders_queries.get(f"/orders/{with_token}", query={"min_version": "2"}).json["pending"] == []
    order_projector.run()
    reply = orders_queries.get(f"/orders/{with_token}")
    assert (reply.headers["x-cairn-source"], reply.json["pending"]) == ("read-model", [])
    # a cancelled order will not get a payment outcome: nothing is pending any more
    cancelled = create(orders_api, body={**ORDER_BODY, "payment_token": "tok_visa"})
    answer = orders_api.post(f"/orders/{cancelled}/cancellation", {"reason": "changed my mind"}, user="alice")
    assert (answer.status, answer.json["pending"]) == (200, [])
    order_projector.run()
    assert orders_queries.get(f"/orders/{cancelled}").json["pending"] == []


def test_read_your_writes_falls_back_to_the_event_store_when_the_view_lags(
    orders_api: Api, orders_queries: Api, order_projector: Projector
):
    order_id = create(orders_api)
    order_projector.run()  # the view is at version 1 ...
    paid = pay(orders_api, order_id)  # ... and the projection has not seen version 2
    stale = orders_queries.get(f"/orders/{order_id}")
    assert stale.headers["x-cairn-source"] == "read-model" and stale.json["version"] == 1
    fresh = orders_queries.get(f"/orders/{order_id}", query={"min_version": paid.json["version"]})
    assert fresh.status == 200
    assert fresh.headers["x-cairn-source"] == "event-store"
    assert fresh.json["version"] == 2 and fresh.json["status"] == "PAID"
    order_projector.run()
    caught_up = orders_queries.get(f"/orders/{order_id}", query={"min_version": 2})
    assert caught_up.headers["x-cairn-source"] == "read-model"
    assert caught_up.json == fresh.json  # the same view function on both paths


def test_min_version_beyond_the_stream_is_412(orders_api: Api, orders_queries: Api):
    order_id = create(orders_api)
    reply = orders_queries.get(f"/orders/{order_id}", query={"min_version": 5})
    assert reply.is_problem(412, "version-not-reached")
    assert reply.json["current_version"] == 1


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_min_version_must_be_a_positive_integer(orders_api: Api, orders_queries: Api, value: str):
    order_id = create(orders_api)
    reply = orders_queries.get(f"/orders/{order_id}", query={"min_version": value})
    assert reply.is_problem(422) and reply.json["errors"][0]["loc"] == ["query", "min_version"]


def test_other_users_order_is_404_staff_sees_it(orders_api: Api, orders_queries: Api, order_projector: Projector):
    order_id = create(orders_api, user="alice")
    order_projector.run()
    hidden = orders_queries.get(f"/orders/{order_id}", user="bob")
    missing = orders_queries.get("/orders/order-00000000-0000-4000-8000-000000000000", user="bob")
    assert hidden.is_problem(404, "not-found") and missing.is_problem(404, "not-found")
    assert orders_queries.get(f"/orders/{order_id}", user="bob", query={"min_version": 1}).is_problem(404)
    assert orders_queries.get(f"/orders/{order_id}", **STAFF).json["customer_id"] == "alice"


def test_queries_need_a_token(orders_queries: Api):
    assert orders_queries.get("/users/me/orders", user=None).is_problem(401)


# -- GET /orders/{id}/history -----------------------------------------------------------------------
def test_history_by_version(orders_api: Api, orders_queries: Api):
    order_id = create(orders_api)
    pay(orders_api, order_id)
    orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "r"}, user="alice")
    at_1 = orders_queries.get(f"/orders/{order_id}/history", query={"version": 1})
    at_2 = orders_queries.get(f"/orders/{order_id}/history", query={"version": 2})
    assert (at_1.json["status"], at_1.json["version"], at_1.json["total"]) == ("CREATED", 1, ORDER_TOTAL)
    assert (at_2.json["status"], at_2.json["version"]) == ("PAID", 2)
    assert at_2.headers["etag"] == '"2"'
    assert at_1.json["as_of"] <= at_2.json["as_of"]
    assert orders_queries.get(f"/orders/{order_id}/history", query={"version": 4}).is_problem(404)


def test_history_at_an_instant(orders_api: Api, orders_queries: Api):
    before = datetime.now(UTC) - timedelta(seconds=1)
    order_id = create(orders_api)
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    pay(orders_api, order_id)

    def at(instant: datetime) -> Any:
        text = instant.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return orders_queries.get(f"/orders/{order_id}/history", query={"at": text})

    assert at(before).is_problem(404)  # the order did not exist then
    assert at(middle).json["status"] == "CREATED"
    assert at(datetime.now(UTC)).json["status"] == "PAID"
    offset = middle.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00"
    assert orders_queries.get(f"/orders/{order_id}/history", query={"at": offset}).json["version"] == 1


def test_history_through_a_snapshot_and_its_tail(orders_api: Api, orders_queries: Api):
    from orders.app import runtime

    order_id = create(orders_api)
    pay(orders_api, order_id)
    snapshot = runtime().take_snapshot(order_id)
    assert snapshot is not None and snapshot.version == 2
    orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "Z9"}, **STAFF)
    # make the events before the snapshot unreadable: an answer at version 3 must come from
    # the snapshot plus the tail, never from a full replay
    reads: list[int] = []
    store = runtime().store
    real_read = store.read

    def spy(stream_id: str, after: int = 0, *args: Any, **kwargs: Any) -> Any:
        reads.append(after)
        return real_read(stream_id, after, *args, **kwargs)

    store.read = spy
    try:
        reply = orders_queries.get(f"/orders/{order_id}/history", query={"version": 3})
        older = orders_queries.get(f"/orders/{order_id}/history", query={"version": 1})
    finally:
        del store.read
    assert reply.json["status"] == "SHIPPED" and reply.json["tracking"] == "Z9"
    assert reads[0] == 1  # snapshot at 2: one read starting AT its event (its hash is checked), then the tail
    assert older.json["status"] == "CREATED"  # a snapshot past the point is not used
    assert reads[1] == 0


@pytest.mark.parametrize(
    "query",
    [{}, {"version": 1, "at": "2026-01-01T00:00:00Z"}, {"at": "yesterday"}, {"at": "2026-13-01T00:00:00Z"}, {"version": 0}],
)
def test_history_needs_exactly_one_valid_point(orders_api: Api, orders_queries: Api, query: dict):
    order_id = create(orders_api)
    assert orders_queries.get(f"/orders/{order_id}/history", query=query).is_problem(422, "validation-failed")


def test_history_of_another_users_order_is_404(orders_api: Api, orders_queries: Api):
    order_id = create(orders_api, user="alice")
    assert orders_queries.get(f"/orders/{order_id}/history", user="bob", query={"version": 1}).is_problem(404)
    assert orders_queries.get(f"/orders/{order_id}/history", query={"version": 1}, **STAFF).status == 200


# -- GET /orders/{id}/events ------------------------------------------------------------------------
def test_audit_trail_with_metadata_and_paging(orders_api: Api, orders_queries: Api):
    reply = orders_api.post("/orders", ORDER_BODY, headers={"X-Correlation-Id": "c-1"})
    order_id = reply.json["order_id"]
    pay(orders_api, order_id)
    orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "T"}, **STAFF)
    page = orders_queries.get(f"/orders/{order_id}/events", query={"limit": 2})
    assert page.status == 200
    events = page.json["events"]
    assert [e["version"] for e in events] == [1, 2] and page.json["next_after"] == 2
    first = events[0]
    assert set(first) >= {"event_id", "stream_id", "version", "type", "schema_version", "occurred_at", "data", "metadata"}
    assert first["type"] == "OrderCreated" and first["schema_version"] == 2 and first["stream_id"] == order_id
    assert first["data"]["total"] == ORDER_TOTAL and first["data"]["customer_id"] == "alice"
    assert first["metadata"]["correlation_id"] == "c-1" and first["metadata"]["actor"] == "alice"
    assert "causation_id" in first["metadata"]
    assert events[1]["metadata"]["actor"] == "staff"  # the owner sees that staff acted, not who (issue 12)
    rest = orders_queries.get(f"/orders/{order_id}/events", query={"after": 2, "limit": 2})
    assert [e["type"] for e in rest.json["events"]] == ["OrderShipped"] and rest.json["next_after"] is None
    everything = orders_queries.get(f"/orders/{order_id}/events")
    assert len(everything.json["events"]) == 3 and everything.json["next_after"] is None
    exact = orders_queries.get(f"/orders/{order_id}/events", query={"limit": 3})
    assert exact.json["next_after"] is None  # no empty extra page
    beyond = orders_queries.get(f"/orders/{order_id}/events", query={"after": 10})
    assert beyond.json == {"events": [], "next_after": None}


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 1001}, {"after": -1}, {"limit": "many"}])
def test_audit_trail_limits(orders_api: Api, orders_queries: Api, query: dict):
    order_id = create(orders_api)
    assert orders_queries.get(f"/orders/{order_id}/events", query=query).is_problem(422)


def test_audit_trail_isolation(orders_api: Api, orders_queries: Api):
    order_id = create(orders_api, user="alice")
    pay(orders_api, order_id)
    assert orders_queries.get(f"/orders/{order_id}/events", user="bob").is_problem(404)
    assert orders_queries.get(f"/orders/{order_id}/events", user="bob", query={"after": 1}).is_problem(404)
    assert orders_queries.get(f"/orders/{order_id}/events", **STAFF).status == 200
    assert orders_queries.get("/orders/order-00000000-0000-4000-8000-000000000000/events").is_problem(404)


# -- GET /users/me/orders -----------------------------------------------------------------------------
def test_my_orders_newest_first_with_cursor(orders_api: Api, orders_queries: Api, order_projector: Projector):
    mine = []
    for _ in range(5):
        mine.append(create(orders_api, user="alice"))
        time.sleep(0.002)  # distinct created_at
    create(orders_api, user="bob")
    pay(orders_api, mine[0])
    order_projector.run()
    first = orders_queries.get("/users/me/orders", query={"limit": 3})
    assert first.status == 200
    page1 = first.json["orders"]
    assert [o["order_id"] for o in page1] == mine[::-1][:3]
    assert set(page1[0]) >= {"order_id", "status", "total", "currency", "created_at", "version"}
    assert first.json["next_cursor"]
    second = orders_queries.get("/users/me/orders", query={"limit": 3, "cursor": first.json["next_cursor"]})
    page2 = second.json["orders"]
    assert [o["order_id"] for o in page2] == mine[::-1][3:]
    assert second.json["next_cursor"] is None
    assert page2[-1]["status"] == "PAID" and page2[-1]["version"] == 2
    bob = orders_queries.get("/users/me/orders", user="bob").json["orders"]
    assert len(bob) == 1 and bob[0]["order_id"] not in mine


@pytest.mark.parametrize("query", [{"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 101}])
def test_my_orders_bad_paging_is_422(orders_queries: Api, query: dict):
    assert orders_queries.get("/users/me/orders", query=query).is_problem(422, "validation-failed")


# -- GET /analytics/daily -----------------------------------------------------------------------------
def test_daily_analytics_for_staff(orders_api: Api, orders_queries: Api, order_projector: Projector):
    a = create(orders_api)
    b = create(orders_api, body={"items": [{"sku": "X", "quantity": 1, "unit_price": "10.00"}], "currency": "USD"})
    create(orders_api)
    c = create(orders_api, body={"items": [{"sku": "X", "quantity": 3, "unit_price": "5.00"}], "currency": "EUR"})
    pay(orders_api, a)
    pay(orders_api, b, amount="10.00")
    pay(orders_api, c, amount="15.00")
    orders_api.post(f"/orders/{b}/cancellation", {"reason": "r"}, **STAFF)
    order_projector.run()
    today = date.today()
    reply = orders_queries.get(
        "/analytics/daily", query={"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}, **STAFF
    )
    assert reply.status == 200, reply.text
    days = {(d["date"], d["currency"]): d for d in reply.json["days"]}
    usd = days[(today.isoformat(), "USD")]
    assert usd == {
        "date": today.isoformat(),
        "currency": "USD",
        "orders_created": 3,
        "orders_paid": 2,
        "orders_cancelled": 1,
        "revenue": "30.00",
        "average_order_value": "15.00",
        "orders_refunded": 0, "refunds": "0.00", "net_revenue": "30.00",
    }
    assert days[(today.isoformat(), "EUR")]["revenue"] == "15.00"


def test_analytics_is_staff_only(orders_queries: Api):
    reply = orders_queries.get("/analytics/daily", query={"from": "2026-01-01", "to": "2026-01-02"})
    assert reply.is_problem(403, "forbidden")
    assert orders_queries.get("/analytics/daily", query={"from": "bad"}).is_problem(403)  # before validation


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-01-02", "to": "2026-01-01"},
        {"from": "2025-01-01", "to": "2026-01-02"},  # 367 days
        {"from": "2026-02-30", "to": "2026-03-01"},
        {"from": "2026-01-01"},
    ],
)
def test_analytics_range_is_validated(orders_queries: Api, query: dict):
    assert orders_queries.get("/analytics/daily", query=query, **STAFF).is_problem(422)


def test_analytics_range_of_366_days_is_accepted(orders_queries: Api):
    reply = orders_queries.get("/analytics/daily", query={"from": "2024-01-01", "to": "2024-12-31"}, **STAFF)
    assert reply.status == 200 and reply.json == {"days": []}
