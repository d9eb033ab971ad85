"""Poison records park their stream only; the others flow. Unpark after a fix replays the stream."""

from __future__ import annotations

import random
from typing import Any

import pytest
from projection_support import (
    assert_orders_match_store,
    drive_like_lambda,
    independent_analytics,
    next_order_event,
    seed_orders,
    stream_of,
    version_of,
)

from cairn.events import NewEvent


def corrupt(harness: Any, stream_id: str, version: int) -> None:
    """Overwrite a stored event with a payload no code can decode (and it is what the stream saw)."""
    item = harness.dynamodb.get_item(
        TableName=harness.events_table, Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}}
    )["Item"]
    item["data"] = {"S": '{"payment_id": 42'}
    harness.dynamodb.put_item(TableName=harness.events_table, Item=item)


def inserts(harness: Any) -> list[dict[str, Any]]:
    return [r for r in harness.reader.new() if r["eventName"] == "INSERT" and stream_of(r).startswith("order-")]


def status(harness: Any) -> dict[str, dict[str, Any]]:
    from cairn.projections import projection_status

    names = ("order_view", "user_orders", "analytics")
    return {s["name"]: s for s in projection_status(harness.dynamodb, {n: harness.tables[n] for n in names})}


def test_corrupt_event_parks_its_stream_in_every_projection_and_unpark_after_repair(harness):
    from cairn.projections.maintenance import UnparkError, audit, unpark

    rng = random.Random(21)
    order_ids = seed_orders(harness, rng, 15)
    victim = next(
        o for o in order_ids
        if harness.orders_store.current_version(o) >= 3 and next_order_event(harness.orders_store, o) is not None
    )
    corrupt(harness, victim, 2)  # a MODIFY record; the INSERT record stays decodable...
    records = inserts(harness)
    for record in records:  # ...so make the stream's record carry the corrupt image too
        if stream_of(record) == victim and version_of(record) == 2:
            record["dynamodb"]["NewImage"]["data"] = {"S": '{"payment_id": 42'}
    drive_like_lambda(records, harness.orders, rng)

    others = [o for o in order_ids if o != victim]
    from orders.read_models import DailyAnalytics

    rows = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True).days("2026-11-01", "2026-12-31")
    assert {(r["date"], r["currency"]): r for r in rows} == independent_analytics(
        harness.orders_store, order_ids, up_to={victim: 1}
    )
    messages = harness.parked_messages()
    assert {(m["projection"], m["stream_id"], m["version"]) for m in messages} == {
        (name, victim, 2) for name in ("order_view", "user_orders", "analytics")
    }
    head = harness.orders_store.current_version(victim)
    report = status(harness)
    for name in ("order_view", "user_orders", "analytics"):
        assert report[name]["parked_streams"] == 1
        assert report[name]["lag_events"] == head - 1  # versions 2..head known and not applied
        assert report[name]["parked"][0]["stream_id"] == victim
        assert report[name]["streams"] == len(order_ids)
        assert report[name]["events_applied"] == sum(harness.orders_store.current_version(o) for o in others) + 1

    from orders.read_models import OrderViews

    views = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True)
    assert views.get(victim)["version"] == 1
    for order_id in others:
        assert views.get(order_id)["version"] == harness.orders_store.current_version(order_id)

    # audit: the read model equals the fold of the store up to each checkpoint (parked included)
    for name in ("order_view", "user_orders", "analytics"):
        assert audit(harness.engine(name)).differences == []

    # unpark without a fix: still failing, still parked
    with pytest.raises(UnparkError):
        unpark(harness.engine("order_view"), victim)
    assert status(harness)["order_view"]["parked_streams"] == 1

    # the fix: the event is repaired in the store (e.g. an upcaster deployed); unpark replays
    payment = harness.dynamodb.get_item(
        TableName=harness.events_table, Key={"stream_id": {"S": victim}, "version": {"N": "2"}}
    )["Item"]
    total = views.get(victim)["total"]
    payment["data"] = {"S": f'{{"payment_id":"pay-{victim}","amount":"{total}"}}'}
    payment["type"] = {"S": "PaymentProcessed"}
    harness.dynamodb.put_item(TableName=harness.events_table, Item=payment)
    for name in ("order_view", "user_orders", "analytics"):
        result = unpark(harness.engine(name), victim)
        assert result.was_parked and result.applied == head - 1
    assert_orders_match_store(harness, order_ids)
    report = status(harness)
    for name in ("order_view", "user_orders", "analytics"):
        assert report[name]["parked_streams"] == 0 and report[name]["lag_events"] == 0
        assert audit(harness.engine(name)).differences == []
    # and the stream flows again: its next event is applied by the consumer
    event = next_order_event(harness.orders_store, victim)
    assert event is not None
    harness.orders_store.append(victim, [NewEvent(event)], head)
    assert harness.orders(inserts(harness)) == {"batchItemFailures": []}
    assert views.get(victim)["version"] == head + 1
    assert_orders_match_store(harness, order_ids)


def test_projection_bug_parks_only_in_that_projection_then_unpark_after_the_fix(harness, monkeypatch):
    from cairn.projections.maintenance import unpark
    from orders.projections import AnalyticsProjection

    rng = random.Random(8)
    order_ids = seed_orders(harness, rng, 10)
    paid = [o for o in order_ids if any(e.type == "PaymentProcessed" for e in harness.orders_store.read(o))]
    victim = next(o for o in paid if next_order_event(harness.orders_store, o) is not None)
    original = AnalyticsProjection.apply

    def buggy(self, stream_id, state, events, writes):
        if stream_id == victim and any(e.type == "PaymentProcessed" for e in events):
            raise ZeroDivisionError("a bug in the analytics projection")
        return original(self, stream_id, state, events, writes)

    monkeypatch.setattr(AnalyticsProjection, "apply", buggy)
    records = inserts(harness)
    drive_like_lambda(records, harness.orders, rng, max_batch=8)

    messages = harness.parked_messages()
    assert [(m["projection"], m["stream_id"]) for m in messages] == [("analytics", victim)]
    assert "ZeroDivisionError" in messages[0]["error"]
    parked_at = messages[0]["version"]
    assert next(e for e in harness.orders_store.read(victim) if e.type == "PaymentProcessed").version == parked_at

    # the other projections have the victim complete; analytics has everything but its payment onwards
    from orders.read_models import DailyAnalytics, OrderViews

    view = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True).get(victim)
    assert view["version"] == harness.orders_store.current_version(victim)
    rows = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True).days("2026-11-01", "2026-12-31")
    expected = independent_analytics(harness.orders_store, order_ids, up_to={victim: parked_at - 1})
    assert {(r["date"], r["currency"]): r for r in rows} == expected

    # a later event of the parked stream is recorded as parked and skipped
    current = harness.orders_store.current_version(victim)
    harness.orders_store.append(victim, [NewEvent(next_order_event(harness.orders_store, victim))], current)
    assert harness.orders(inserts(harness)) == {"batchItemFailures": []}
    assert harness.engine("analytics").parking.get(victim).head == current + 1
    assert status(harness)["analytics"]["lag_events"] == current + 1 - parked_at + 1

    # fix deployed: unpark replays the stream, analytics exact again
    monkeypatch.setattr(AnalyticsProjection, "apply", original)
    unpark(harness.engine("analytics"), victim)
    assert_orders_match_store(harness, order_ids)
