"""Rebuild without downtime equals the live read model; audit recomputes from the store and finds
0 differences — and does find tampering."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from projection_support import (
    assert_accounts_match_store,
    assert_orders_match_store,
    chaotic_batches,
    next_order_event,
    seed_accounts,
    seed_orders,
    stream_of,
)

from cairn.events import NewEvent

ORDER_PROJECTIONS = ("order_view", "user_orders", "analytics")


def items_of(harness: Any, name: str, generation: int) -> dict[tuple[str, str], dict[str, Any]]:
    """A generation's items keyed without the generation prefix, minus write timestamps."""
    prefix = f"g{generation}#"
    found = {}
    for item in harness.dynamodb.scan(TableName=harness.tables[name], ConsistentRead=True)["Items"]:
        pk = item["pk"]["S"]
        if pk.startswith(prefix):
            found[(pk[len(prefix):], item["sk"]["S"])] = {k: v for k, v in item.items() if k not in ("pk", "updated_at")}
    return found


def deliver_new(harness: Any, rng: random.Random) -> None:
    records = harness.reader.new()
    orders = [r for r in records if stream_of(r).startswith("order-")]
    accounts = [r for r in records if stream_of(r).startswith("account-")]
    for batch in chaotic_batches(orders, rng, duplicate=0.3, drop=0.2):
        assert harness.orders(batch) == {"batchItemFailures": []}
    for batch in chaotic_batches(accounts, rng, duplicate=0.3, drop=0.2):
        assert harness.accounts(batch) == {"batchItemFailures": []}


def more_traffic(harness: Any, rng: random.Random, order_ids: list[str], new: int) -> None:
    """New orders, and a next event for some existing ones, delivered through the live consumer."""
    order_ids.extend(seed_orders(harness, rng, new, prefix=f"late{len(order_ids)}"))
    for order_id in rng.sample(order_ids, min(6, len(order_ids))):
        event = next_order_event(harness.orders_store, order_id)
        if event is not None:
            harness.orders_store.append(order_id, [NewEvent(event)], harness.orders_store.current_version(order_id))
    deliver_new(harness, rng)


@pytest.mark.parametrize("name", [*ORDER_PROJECTIONS, "account_view"])
def test_rebuild_equals_live_and_readers_switch(harness, name):
    from cairn.projections.generations import read_generations
    from cairn.projections.maintenance import Rebuilder, audit

    rng = random.Random(17)
    order_ids = seed_orders(harness, rng, 25)
    account_ids = seed_accounts(harness, rng, 10)
    deliver_new(harness, rng)
    live = items_of(harness, name, 1)
    assert live
    engine = harness.engine(name)
    progress = []
    result = Rebuilder(
        engine, segments=3, settle_seconds=0, drop_previous=False, on_progress=progress.append, sleep=lambda s: None,
        catch_up_timeout=5,
    ).run()
    assert (result.previous, result.generation, result.switched) == (1, 2, True)
    assert items_of(harness, name, 2) == live  # the rebuilt generation is the live one, item for item
    assert read_generations(harness.dynamodb, harness.tables[name]).active == 2
    assert progress and progress[-1].scanned == harness.dynamodb.scan(TableName=harness.events_table, Select="COUNT")["Count"]
    report = audit(engine)
    assert (report.generation, report.differences, report.behind) == (2, [], [])
    # readers now read generation 2, which is complete
    if name == "account_view":
        assert_accounts_match_store(harness, account_ids)
    else:
        assert_orders_match_store(harness, order_ids)


@pytest.mark.parametrize(
    "name", ["analytics", *(pytest.param(n, marks=pytest.mark.slow) for n in ("order_view", "user_orders"))]
)
def test_rebuild_while_the_live_consumer_keeps_writing(harness, name):
    from cairn.projections.generations import read_generations
    from cairn.projections.maintenance import Rebuilder, audit

    rng = random.Random(23)
    order_ids = seed_orders(harness, rng, 20)
    deliver_new(harness, rng)
    engine = harness.engine(name)

    # traffic in the middle of the scan too: after the first few items of each segment
    real_scan = engine.store.scan_segment
    injected = []
    traffic = threading.Lock()  # one client at a time: the segments run in parallel threads

    def scan_with_traffic(segment, total, **kwargs):
        for count, item in enumerate(real_scan(segment, total, **kwargs)):
            if count == 5:
                with traffic:
                    injected.append(segment)
                    more_traffic(harness, rng, order_ids, 3)
            yield item

    engine.store.scan_segment = scan_with_traffic

    def between(phase):
        if phase in ("announced", "scanned"):
            more_traffic(harness, rng, order_ids, 4)

    result = Rebuilder(
        engine, segments=2, settle_seconds=0, between_phases=between, sleep=lambda s: None, catch_up_timeout=5
    ).run()
    engine.store.scan_segment = real_scan  # (the audit below scans too: no traffic in it)
    assert injected and result.generation == 2 and result.dropped_items > 0
    generations = read_generations(harness.dynamodb, harness.tables[name])
    assert (generations.active, generations.building) == (2, None)
    assert items_of(harness, name, 1) == {}  # the old generation was dropped
    assert_orders_match_store(harness, order_ids)
    report = audit(engine)
    assert (report.differences, report.behind) == ([], [])
    # and after the switch the consumer writes generation 2 only
    more_traffic(harness, rng, order_ids, 2)
    assert items_of(harness, name, 1) == {}
    assert_orders_match_store(harness, order_ids)


def test_audit_finds_tampering(harness):
    from cairn.projections.maintenance import audit

    rng = random.Random(4)
    order_ids = seed_orders(harness, rng, 12)
    deliver_new(harness, rng)
    for name in ORDER_PROJECTIONS:
        assert audit(harness.engine(name)).differences == []

    # one analytics counter double-counted, as a non-idempotent consumer would
    table = harness.tables["analytics"]
    day = next(i for i in harness.dynamodb.scan(TableName=table)["Items"] if "orders_created" in i)
    harness.dynamodb.update_item(
        TableName=table, Key={"pk": day["pk"], "sk": day["sk"]}, UpdateExpression="ADD orders_created :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    differences = audit(harness.engine("analytics")).differences
    assert [(d.kind, d.pk, d.sk) for d in differences] == [("different", day["pk"]["S"], day["sk"]["S"])]
    assert differences[0].actual["orders_created"] == differences[0].expected["orders_created"] + 1

    # a stale order view, a lost user-orders entry, an item nobody wrote
    views = harness.tables["order_view"]
    victim = f"g1#s#{order_ids[0]}"
    harness.dynamodb.update_item(
        TableName=views, Key={"pk": {"S": victim}, "sk": {"S": "cp"}}, UpdateExpression="SET #s.#t = :x",
        ExpressionAttributeNames={"#s": "state", "#t": "status"}, ExpressionAttributeValues={":x": {"S": "LOST"}},
    )
    harness.dynamodb.put_item(TableName=views, Item={"pk": {"S": "g1#s#order-ghost"}, "sk": {"S": "x"}, "v": {"N": "1"}})
    lists = harness.tables["user_orders"]
    entry = next(i for i in harness.dynamodb.scan(TableName=lists)["Items"] if i["pk"]["S"].startswith("g1#u#"))
    harness.dynamodb.delete_item(TableName=lists, Key={"pk": entry["pk"], "sk": entry["sk"]})
    assert {(d.kind, d.pk) for d in audit(harness.engine("order_view")).differences} == {
        ("different", victim),
        ("unexpected", "g1#s#order-ghost"),
    }
    assert [(d.kind, d.pk, d.sk) for d in audit(harness.engine("user_orders")).differences] == [
        ("missing", entry["pk"]["S"], entry["sk"]["S"])
    ]
