"""The orders Lambda commits many streams and its three projections in shared transactions: the
analytics day counters that streams of one day and currency share are merged ADDs there, and
they stay exact — on the first delivery, on redelivery, and when a shared transaction loses a race."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from projection_support import (
    BASE_TIME,
    assert_orders_match_store,
    independent_analytics,
    stamp,
    stream_of,
)

from cairn.events import NewEvent
from orders import domain as orders_domain


class Spy:
    """harness.dynamodb, recording every TransactWriteItems; ``race(items)``, when set, runs once
    before the first transaction it returns True for (the racer has committed by then)."""

    def __init__(self, real: Any):
        self._real = real
        self.transactions: list[list[dict[str, Any]]] = []
        self.race: Any = None
        self.raced: list[dict[str, Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions.append(kwargs["TransactItems"])
        if self.race is not None and self.race(kwargs["TransactItems"]):
            self.race, self.raced = None, kwargs["TransactItems"]
        return self._real.transact_write_items(**kwargs)


def spied_orders_consumer(harness: Any, monkeypatch: Any) -> Spy:
    from cairn.projections import StreamConsumer
    from cairn.store.dynamodb import DynamoDBEventStore
    from orders import projections
    from orders.app import registry

    spy = Spy(harness.dynamodb)
    store = DynamoDBEventStore(registry, harness.dynamodb, events_table=harness.events_table)
    consumer = StreamConsumer.from_env(
        registry, {p: projections.TABLE_ENV[p.name] for p in projections.PROJECTIONS}, store, client=spy
    )
    monkeypatch.setattr(projections, "consumer", lambda: consumer)
    return spy


def same_day_orders(harness: Any, rng: random.Random, count: int) -> list[str]:
    """Orders created and mostly paid (some cancelled) on one UTC day, nearly all in USD."""
    ids = []
    for i in range(count):
        order_id = f"order-day-{i:03d}-{rng.randrange(16**6):06x}"
        line = orders_domain.OrderLine(sku="SKU-1", quantity=rng.randint(1, 3), unit_price=rng.choice(["9.99", "12.50"]))
        total = orders_domain.order_total([line])
        currency = "EUR" if i % 10 == 9 else "USD"
        moment = BASE_TIME + timedelta(minutes=5 * i)
        events = [
            orders_domain.OrderCreated(order_id=order_id, customer_id=f"user-{i % 4}", items=[line], currency=currency, total=total)
        ]
        if i % 7 == 3:
            events.append(orders_domain.OrderCancelled(reason="changed my mind"))
        else:
            events.append(orders_domain.PaymentProcessed(payment_id=f"pay-{order_id}", amount=total))
        history = [NewEvent(e, occurred_at=stamp(moment + timedelta(minutes=j))) for j, e in enumerate(events)]
        harness.orders_store.append(order_id, history, 0)
        ids.append(order_id)
    return ids


def analytics_rows(harness: Any) -> dict[tuple[str, str], dict[str, Any]]:
    from orders.read_models import DailyAnalytics

    rows = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True).days("2026-11-01", "2026-12-31")
    return {(r["date"], r["currency"]): r for r in rows}


def analytics_updates(harness: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        op["Update"] for op in items
        if "Update" in op and op["Update"]["TableName"] == harness.tables["analytics"]
        and op["Update"]["Key"]["pk"]["S"].startswith("g1#m#")  # the day items (not the stats)
    ]


def checkpoints(items: list[dict[str, Any]], table: str) -> list[str]:
    return [
        op["Put"]["Item"]["stream_id"]["S"] for op in items
        if "Put" in op and op["Put"]["TableName"] == table and op["Put"]["Item"]["sk"] == {"S": "cp"}
    ]


def test_day_counters_shared_by_many_streams_are_exact_in_shared_transactions(harness, monkeypatch):
    rng = random.Random(42)
    order_ids = same_day_orders(harness, rng, 40)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    spy = spied_orders_consumer(harness, monkeypatch)
    assert harness.orders(records) == {"batchItemFailures": []}

    # 40 streams x 3 projections in a few shared transactions, each item once in each
    assert 1 < len(spy.transactions) <= 6
    analytics = harness.tables["analytics"]
    merged = 0
    for items in spy.transactions:
        assert len(items) <= 100
        keys = [(op[k]["TableName"], str(op[k].get("Key") or {n: op[k]["Item"][n] for n in ("pk", "sk")})) for op in items for k in op]
        assert len(keys) == len(set(keys))
        streams = checkpoints(items, analytics)
        for update in analytics_updates(harness, items):
            names = update["ExpressionAttributeNames"]
            values = update["ExpressionAttributeValues"]
            created = next((int(values[f":{n[1:]}"]["N"]) for n, v in names.items() if v == "orders_created"), 0)
            merged += created > 1  # one ADD carrying several streams' creations
            assert created <= len(streams)
    assert merged >= 2
    assert sorted(s for items in spy.transactions for s in checkpoints(items, analytics)) == sorted(order_ids)
    assert analytics_rows(harness) == independent_analytics(harness.orders_store, order_ids)
    assert_orders_match_store(harness, order_ids)

    # the same records again, shuffled and repeated: all duplicates, nothing written
    before = len(spy.transactions)
    again = records * 2
    rng.shuffle(again)
    assert harness.orders(again) == {"batchItemFailures": []}
    assert len(spy.transactions) == before
    assert analytics_rows(harness) == independent_analytics(harness.orders_store, order_ids)


def test_a_shared_transaction_losing_a_race_keeps_day_counters_exact(harness, monkeypatch):
    """A duplicate delivery of some of the streams commits first (as a concurrent invocation
    would): the shared transaction is cancelled and every stream is applied exactly once."""
    rng = random.Random(7)
    order_ids = same_day_orders(harness, rng, 30)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    raced = set(order_ids[::4])
    spy = spied_orders_consumer(harness, monkeypatch)
    from orders import projections

    consumer = projections.consumer()

    def concurrent(items: list[dict[str, Any]]) -> bool:
        """Before the first shared transaction advancing analytics checkpoints of raced streams:
        a racing invocation (a real consumer on the same tables, not spied) applies those."""
        if len(raced & set(checkpoints(items, harness.tables["analytics"]))) < 2:
            return False
        from cairn.projections import StreamConsumer

        racer = StreamConsumer(consumer.registry, [
            type(e)(e.projection, harness.dynamodb, e.table, e.store, parking=e.parking) for e in consumer.engines
        ])
        _, failures = racer.process([r for r in records if stream_of(r) in raced])
        assert failures == {}
        return True

    spy.race = concurrent
    assert harness.orders(records) == {"batchItemFailures": []}
    assert spy.raced is not None  # the race hit a shared transaction, which was then cancelled:
    cancelled = spy.transactions.index(spy.raced)
    retried = {s for items in spy.transactions[cancelled + 1 :] for s in checkpoints(items, harness.tables["analytics"])}
    assert set(checkpoints(spy.raced, harness.tables["analytics"])) <= retried  # its streams went one by one
    assert analytics_rows(harness) == independent_analytics(harness.orders_store, order_ids)
    assert_orders_match_store(harness, order_ids)
    from cairn.projections import projection_status

    for status in projection_status(harness.dynamodb, {n: harness.tables[n] for n in ("order_view", "user_orders", "analytics")}):
        assert (status["streams"], status["events_applied"]) == (30, 60), status["name"]
