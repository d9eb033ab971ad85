"""Snapshotter: every N events of a stream (N per aggregate type), folded like the command side."""

from __future__ import annotations

import random
from typing import Any

import pytest
from projection_support import (
    BASE_TIME,
    FakeContext,
    account_history,
    append_in_chunks,
    chaotic_batches,
    seed_orders,
    stream_of,
    version_of,
)

from cairn.events import NewEvent


@pytest.fixture
def snapshotter(harness, snapshot_bucket, monkeypatch) -> Any:
    from accounts import app as accounts_app
    from cairn_platform import snapshotter
    from orders import app as orders_app

    monkeypatch.setenv("SNAPSHOT_BUCKET", snapshot_bucket)
    monkeypatch.setenv("SNAPSHOT_EVERY", "order=2,account=3")
    caches = (orders_app.runtime, accounts_app.runtime, snapshotter._runtime)
    for cached in caches:
        cached.cache_clear()
    yield snapshotter
    for cached in caches:
        cached.cache_clear()


def snapshot_of(stream_id: str) -> Any:
    from accounts import app as accounts_app
    from orders import app as orders_app

    app = orders_app if stream_id.startswith("order-") else accounts_app
    runtime = app.runtime()
    return runtime.snapshots.get(stream_id, app.decider.state_schema_version), runtime, app.decider


def test_parse_every():
    from cairn_platform.snapshotter import parse_every

    assert parse_every("order=50, account=100") == {"order": 50, "account": 100}
    assert parse_every("") == {}
    for bad in ("order", "order=0", "order=x", "=5"):
        with pytest.raises(ValueError):
            parse_every(bad)


def test_snapshots_every_n_events_in_any_delivery_order(harness, snapshotter):
    rng = random.Random(12)
    order_ids = seed_orders(harness, rng, 12)
    account_ids = []
    for i in range(6):
        account_id = f"account-snap-{i}"
        append_in_chunks(harness.accounts_store, account_id, account_history(rng, account_id, "owner", BASE_TIME), rng)
        account_ids.append(account_id)
    records = harness.reader.new()
    taken = 0
    for batch in chaotic_batches(records, rng, duplicate=0.4, drop=0.0):
        assert snapshotter.handler({"Records": batch}, FakeContext(function_name="Snapshotter")) == {"batchItemFailures": []}
        taken += snapshotter.process(batch, {"order": 2, "account": 3})[0]  # a redelivery: nothing new
    assert taken == 0

    every = {"order": 2, "account": 3}
    for stream_id in order_ids + account_ids:
        n = every[stream_id.split("-")[0]]
        store = harness.orders_store if stream_id.startswith("order-") else harness.accounts_store
        head = store.current_version(stream_id)
        snapshot, runtime, decider = snapshot_of(stream_id)
        if head < n:
            assert snapshot is None, stream_id
            continue
        assert snapshot is not None, stream_id
        assert head // n * n <= snapshot.version <= head
        events = list(store.read(stream_id, up_to_version=snapshot.version))
        state = decider.fold(decider.initial_state(), [e.data for e in events])
        assert snapshot.state == decider.state_to_dict(state)  # the command side's own fold
        assert snapshot.last_occurred_at == events[-1].occurred_at
        assert runtime.load(stream_id) == (head, decider.fold(decider.initial_state(), [e.data for e in store.read(stream_id)]))


def test_transient_failure_is_retried_and_corrupt_stream_skipped(harness, snapshotter, monkeypatch):
    from botocore.exceptions import ClientError

    rng = random.Random(1)
    order_ids = seed_orders(harness, rng, 6)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    due = [o for o in order_ids if any(version_of(r) == 2 for r in records if stream_of(r) == o)]
    throttled, corrupt = due[0], due[1]
    item = harness.dynamodb.get_item(TableName=harness.events_table, Key={"stream_id": {"S": corrupt}, "version": {"N": "1"}})["Item"]
    item["data"] = {"S": "{broken"}
    harness.dynamodb.put_item(TableName=harness.events_table, Item=item)

    runtime = snapshot_of(throttled)[1]
    s3 = runtime.snapshots.client
    real_put = s3.put_object

    def put_object(**kwargs):  # S3 throttles this stream's key (the store wraps it in SnapshotError)
        if throttled in kwargs["Key"]:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "PutObject")
        return real_put(**kwargs)

    monkeypatch.setattr(s3, "put_object", put_object)
    taken, failures = snapshotter.process(records, {"order": 2})
    lowest = min((r for r in records if stream_of(r) == throttled), key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
    assert list(failures) == [lowest["dynamodb"]["SequenceNumber"]]
    assert taken == len(due) - 2
    assert snapshot_of(corrupt)[0] is None


def test_scheduled_sweep_snapshots_only_streams_that_grew(harness, snapshotter):
    rng = random.Random(31)
    order_ids = seed_orders(harness, rng, 6)
    heads = {o: harness.orders_store.current_version(o) for o in order_ids}
    grown = next(o for o in order_ids if next_event(harness, o) is not None)
    fresh = next(o for o in order_ids if o != grown)
    untouched = [o for o in order_ids if o not in (grown, fresh)]
    assert snapshotter.snapshot_now(fresh) == heads[fresh]
    snapshotter.snapshot_now(grown)
    harness.orders_store.append(grown, [NewEvent(next_event(harness, grown))], heads[grown])
    assert snapshotter.stream_heads(harness.dynamodb, harness.events_table, ["order"])[grown] == heads[grown] + 1

    counts = snapshotter.scheduled_handler({"source": "aws.events"}, FakeContext(function_name="ScheduledSnapshots"))
    assert counts == {"taken": 1 + len(untouched), "current": 1, "failed": 0, "left": 0}
    for stream_id in order_ids:
        snapshot, _, _ = snapshot_of(stream_id)
        assert snapshot.version == harness.orders_store.current_version(stream_id)
    again = snapshotter.scheduled_handler({}, FakeContext(function_name="ScheduledSnapshots"))
    assert again["taken"] == 0 and again["current"] == len(order_ids)


def test_sweep_stops_before_the_time_is_up(harness, snapshotter):
    order_ids = seed_orders(harness, random.Random(32), 3)
    heads = snapshotter.stream_heads(harness.dynamodb, harness.events_table, ["order"])
    budget = iter([100.0, 100.0, 1.0])
    counts = snapshotter.snapshot_grown(heads, snapshotter._runtime, time_left=lambda: next(budget))
    assert counts["taken"] == 2 and counts["left"] == 1 and len(order_ids) == 3


def test_snapshot_now_refuses_unknown_streams(harness, snapshotter):
    with pytest.raises(snapshotter.UnknownStreamError):
        snapshotter.snapshot_now("widget-1")
    with pytest.raises(snapshotter.UnknownStreamError):
        snapshotter.snapshot_now("order-does-not-exist")


def next_event(harness: Any, stream_id: str) -> Any:
    """The payload of an event the order accepts next (None when final)."""
    from projection_support import next_order_event

    return next_order_event(harness.orders_store, stream_id)


def test_snapshot_cli(harness, snapshotter, snapshot_bucket, capsys):
    import json

    from cairn_tools.__main__ import main

    order_ids = seed_orders(harness, random.Random(33), 2)
    assert main(["snapshot", order_ids[0], "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["snapshots"]
    assert row == {"stream_id": order_ids[0], "version": harness.orders_store.current_version(order_ids[0]), "error": None}
    assert main(["snapshot", "widget-9"]) == 1
    assert "widget-9" in capsys.readouterr().out
    assert main(["snapshot", "--grown", "--json"]) == 0
    captured = capsys.readouterr()
    [sweep] = json.loads(captured.out)["sweeps"]
    assert sweep["taken"] == 1 and sweep["current"] == 1
    assert "snapshot --grown [" in captured.err and "2/2 streams" in captured.err
