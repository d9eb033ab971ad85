"""Archive tier benchmarks (issue 13): what archiving saves, and what reading it back costs.

- ``archive_bytes_ratio``: storage bytes per event in DynamoDB (the item by DynamoDB's size rules
  + its 100-byte per-item overhead) ÷ bytes per event in a gzip segment (1,000 events each), for
  the 10,000-event account history of bench/foundation.py. Higher is better.
- ``archive_load_ratio``: load (fold) of that stream once archived — 9,999 events from ten
  segments, the head from DynamoDB — ÷ the same load from DynamoDB before archiving; both on
  in-process moto, same run, best of several, a new store instance (no cache) each time. Below 1:
  the archived stream loads faster (fewer, larger round trips; gzip is cheap).
- ``archive_cost_*``: the cost model of docs/archive.md computed from the measured bytes:
  1 billion events written evenly over 5 years, storage per month at the end and in total,
  without archiving (everything in DynamoDB Standard) and with it (the last 90 days in
  DynamoDB, the rest in S3 Glacier Instant Retrieval), plus the one-off cost of archiving
  (a delete per event, a PUT per segment). List prices, us-east-1, December 2026: ``PRICES``.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from moto import mock_aws

GOALS = {"archive_bytes_ratio": "> 3", "archive_load_ratio": "<= 2"}

REPEATS = 5
ARCHIVE_BUCKET = "bench-archive"
ITEM_OVERHEAD = 100  # bytes DynamoDB bills per item on top of its attributes
SEGMENT_EVENTS = 1000

# USD, us-east-1 list prices (the assumptions of the cost model; docs/archive.md)
PRICES = {
    "dynamodb_gb_month": 0.25,  # DynamoDB Standard table class storage
    "glacier_ir_gb_month": 0.004,  # S3 Glacier Instant Retrieval storage
    "s3_standard_gb_month": 0.023,  # manifests
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand write request unit (a delete of <= 1 KB)
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand read request unit (4 KB strongly consistent)
    "glacier_ir_put": 0.02 / 1000,  # PUT to Glacier IR
}
MODEL_EVENTS = 1_000_000_000
MODEL_MONTHS = 60
HOT_MONTHS = 3  # the archiver's default age: 90 days


def cost_model(ddb_bytes: float, segment_bytes: float) -> dict[str, float]:
    per_month = MODEL_EVENTS / MODEL_MONTHS
    gb = 1024**3
    without = with_ = 0.0
    last_without = last_with = 0.0
    for month in range(1, MODEL_MONTHS + 1):
        stored = per_month * month
        hot = min(stored, per_month * HOT_MONTHS)
        cold = stored - hot
        last_without = stored * ddb_bytes / gb * PRICES["dynamodb_gb_month"]
        last_with = hot * ddb_bytes / gb * PRICES["dynamodb_gb_month"] + cold * segment_bytes / gb * PRICES["glacier_ir_gb_month"]
        without += last_without
        with_ += last_with
    archived = MODEL_EVENTS - per_month * HOT_MONTHS
    units = -(-ddb_bytes // 1024)  # a delete costs the item's size in write units
    one_off = archived * (
        units * PRICES["dynamodb_write_unit"] + ddb_bytes / 4096 * PRICES["dynamodb_read_unit"]
    ) + archived / SEGMENT_EVENTS * PRICES["glacier_ir_put"]
    return {
        "archive_cost_month60_usd_without": last_without,
        "archive_cost_month60_usd_with": last_with,
        "archive_cost_5y_storage_usd_without": without,
        "archive_cost_5y_storage_usd_with": with_,
        "archive_cost_5y_archiving_usd": one_off,
    }


def run() -> dict[str, float]:
    from accounts.app import decider, registry
    from bench.foundation import (
        EVENTS,
        EVENTS_TABLE,
        IDEMPOTENCY_TABLE,
        account_history,
        batch_write,
        seed_items,
    )
    from cairn.archive.archiver import ArchivePolicy, Archiver
    from cairn.archive.s3 import S3ArchiveStore
    from cairn.archive.store import ArchivedEventStore
    from cairn.aws import client
    from cairn.store.base import item_size
    from cairn.store.dynamodb import DynamoDBEventStore, _flat, create_tables

    results: dict[str, float] = {}
    rng = random.Random(20261205)
    with mock_aws():
        ddb, s3 = client("dynamodb"), client("s3")
        create_tables(ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        s3.create_bucket(Bucket=ARCHIVE_BUCKET)
        store = DynamoDBEventStore(registry, ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        history = account_history(rng)
        stream_id = history[0].account_id
        items = seed_items(store, stream_id, history, rng)
        batch_write(ddb, items)
        ddb_bytes = sum(item_size(_flat(i)) + ITEM_OVERHEAD for i in items) / len(items)
        expected = (EVENTS, decider.fold(decider.initial_state(), history))

        def load(make: Any) -> Any:
            return make().fold(stream_id, decider.initial_state(), decider.evolve)

        def best(make: Any) -> float:
            fastest = float("inf")
            for _ in range(REPEATS):
                started = time.perf_counter()
                value = load(make)
                fastest = min(fastest, time.perf_counter() - started)
                assert value == expected
            return fastest

        from_dynamodb = best(lambda: DynamoDBEventStore(registry, ddb, EVENTS_TABLE))

        archive = S3ArchiveStore(s3, ARCHIVE_BUCKET, storage_class=None)  # moto: the class is metadata
        last = items[-1]
        policy = ArchivePolicy(older_than_days=None, require_snapshot=True, settle_seconds=0, segment_events=SEGMENT_EVENTS)
        report = Archiver(
            ddb,
            EVENTS_TABLE,
            archive,
            default=policy,
            snapshot_of=lambda s: (EVENTS, last["hash"]["S"]),
            now=lambda: datetime.now(UTC) + timedelta(days=1),
        ).archive_stream(stream_id)
        assert report.archived_through == EVENTS - 1 and report.items_deleted == EVENTS - 1
        manifest = archive.get_manifest(stream_id)
        assert manifest is not None
        segment_bytes = sum(s.size for s in manifest.segments) / manifest.archived_through

        def tiered() -> ArchivedEventStore:
            return ArchivedEventStore(registry, ddb, EVENTS_TABLE, archive=archive, segment_cache_size=0)

        from_segments = best(tiered)

        results["archive_ddb_bytes_per_event"] = ddb_bytes
        results["archive_segment_bytes_per_event"] = segment_bytes
        results["archive_bytes_ratio"] = ddb_bytes / segment_bytes
        results["archive_load_ms_dynamodb"] = from_dynamodb * 1000
        results["archive_load_ms_segments"] = from_segments * 1000
        results["archive_load_ratio"] = from_segments / from_dynamodb
        results.update(cost_model(ddb_bytes, segment_bytes))
    return {k: round(v, 3) for k, v in results.items()}
