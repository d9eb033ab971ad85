"""At-least-once delivery: partial batch failures, whole-batch redelivery, writes whose response
was lost. Effects still happen exactly once."""

from __future__ import annotations

import random
from typing import Any

import pytest
from projection_support import (
    FlakyDynamoDB,
    assert_orders_match_store,
    drive_like_lambda,
    independent_analytics,
    seed_orders,
    stream_of,
    version_of,
)


def flaky_orders_consumer(harness: Any, monkeypatch: Any, flaky: FlakyDynamoDB) -> None:
    """The orders Lambda, its DynamoDB client replaced by ``flaky`` (same tables, same code)."""
    from cairn.projections import StreamConsumer
    from cairn.store.dynamodb import DynamoDBEventStore
    from orders import projections
    from orders.app import registry

    store = DynamoDBEventStore(registry, harness.dynamodb, events_table=harness.events_table)
    consumer = StreamConsumer.from_env(
        registry, {p: projections.TABLE_ENV[p.name] for p in projections.PROJECTIONS}, store, client=flaky
    )
    for engine in consumer.engines:
        engine._sleep = lambda seconds: None
    monkeypatch.setattr(projections, "consumer", lambda: consumer)


@pytest.mark.parametrize("seed", [3, 31])
def test_event_source_mapping_with_throttling_and_lost_responses(harness, monkeypatch, seed):
    rng = random.Random(seed)
    order_ids = seed_orders(harness, rng, 30)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    flaky = FlakyDynamoDB(harness.dynamodb, rng, throttle=0.25, lose_response=0.25)
    flaky_orders_consumer(harness, monkeypatch, flaky)
    invocations = drive_like_lambda(records, harness.orders, rng)
    assert flaky.throttled > 5 and flaky.lost > 5  # the storm really happened...
    assert flaky.shared_throttled and flaky.shared_lost  # ...to shared transactions (many streams) too
    assert invocations > len(records) / 25
    assert_orders_match_store(harness, order_ids)
    assert harness.parked_messages() == []  # transient trouble never parks


def test_whole_batch_redelivered_after_a_partial_failure(harness, monkeypatch):
    rng = random.Random(5)
    order_ids = seed_orders(harness, rng, 12)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    victim = order_ids[4]

    # the analytics table throttles every transaction advancing one stream's checkpoint there
    # (a shared transaction holding it too: its other streams then commit one by one)
    real = harness.dynamodb.transact_write_items

    def throttle_victim(**kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        puts = [op["Put"] for op in kwargs["TransactItems"] if "Put" in op]
        if any(
            put["TableName"] == harness.tables["analytics"] and put["Item"].get("stream_id", {}).get("S") == victim
            for put in puts
        ):
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(harness.dynamodb, "transact_write_items", throttle_victim)
    flaky_orders_consumer(harness, monkeypatch, harness.dynamodb)
    response = harness.orders(records)
    victim_records = [r for r in records if stream_of(r) == victim]
    lowest = min(victim_records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
    assert response == {"batchItemFailures": [{"itemIdentifier": lowest["dynamodb"]["SequenceNumber"]}]}

    from orders.read_models import DailyAnalytics, OrderViews

    days = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True)
    without_victim = independent_analytics(harness.orders_store, [o for o in order_ids if o != victim])
    assert {(d["date"], d["currency"]): d for d in days.days("2026-11-01", "2026-12-31")} == without_victim
    # the other projections applied the victim (their own checkpoints)
    view = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True).get(victim)
    assert view["version"] == max(version_of(r) for r in victim_records)

    # no attempt was counted for a throttle, nothing parked
    assert harness.parked_messages() == []
    monkeypatch.setattr(harness.dynamodb, "transact_write_items", real)
    for _ in range(2):  # the whole batch again, twice: only the victim's analytics move
        assert harness.orders(records) == {"batchItemFailures": []}
    assert_orders_match_store(harness, order_ids)


def test_a_batch_holding_only_a_later_part_of_a_stream(harness):
    """Lambda restarts a shard mid-stream after a failure; a fresh consumer (no checkpoint yet)
    sees version 3 first: it reads 1..2 from the store."""
    rng = random.Random(11)
    order_ids = seed_orders(harness, rng, 6)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    tails = [r for r in records if version_of(r) >= 2]
    assert harness.orders(tails) == {"batchItemFailures": []}
    delivered = sorted({stream_of(r) for r in tails})
    assert 0 < len(delivered) < len(order_ids)  # some orders have a single event: never delivered here
    assert_orders_match_store(harness, delivered)
    from orders.read_models import OrderViews

    views = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True)
    assert all(views.get(o) is None for o in order_ids if o not in delivered)
