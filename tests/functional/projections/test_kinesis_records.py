"""The fan-out path of issue 18: the same changes delivered the Kinesis Data Streams for DynamoDB
way (base64 JSON, Kinesis sequence numbers, several shards, duplicates with new sequence numbers,
any order) fold to the same read models, and a failed stream is reported by its Kinesis record."""

from __future__ import annotations

import base64
import random
from typing import Any

from projection_support import (
    assert_accounts_match_store,
    assert_orders_match_store,
    chaotic_batches,
    seed_accounts,
    seed_orders,
    stream_of,
    version_of,
)

SHARDS = 3
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/cairn-events"


class KinesisShards:
    """Gives each change a Kinesis record on the shard of its partition key (sequence numbers grow
    per shard, as Kinesis assigns them); a duplicate published again gets a new sequence number."""

    def __init__(self) -> None:
        self.next = [0] * SHARDS

    def record(self, stream_record: dict[str, Any], table: str) -> dict[str, Any]:
        from cairn.projections.kinesis import kinesis_record

        shard = sum(stream_of(stream_record).encode()) % SHARDS
        self.next[shard] += 1
        sequence = f"4959{shard:04d}{self.next[shard]:030d}"
        return kinesis_record(stream_record, sequence_number=sequence, table_name=table, stream_arn=ARN, shard=shard)


def as_kinesis(batches: list[list[dict[str, Any]]], table: str) -> list[list[dict[str, Any]]]:
    shards = KinesisShards()
    return [[shards.record(r, table) for r in batch] for batch in batches]


def test_orders_and_accounts_from_kinesis_records_fold_to_the_store(harness):
    from accounts import projections as account_projections

    rng = random.Random(18)
    order_ids = seed_orders(harness, rng, 12)
    account_ids = seed_accounts(harness, rng, 8)
    records = [r for r in harness.reader.new() if r["eventName"] == "INSERT"]
    orders = [r for r in records if stream_of(r).startswith("order-")]
    accounts = [r for r in records if stream_of(r).startswith("account-")]
    # orders through the deployed handler, accounts through the consumer's handle (both take either source)
    for batch in as_kinesis(chaotic_batches(orders, rng, duplicate=0.3, drop=0.3), harness.events_table):
        assert harness.orders(batch) == {"batchItemFailures": []}
    for batch in as_kinesis(chaotic_batches(accounts, rng, duplicate=0.3, drop=0.3), harness.events_table):
        assert account_projections.consumer().handle({"Records": batch}) == {"batchItemFailures": []}
    assert_orders_match_store(harness, order_ids)
    assert_accounts_match_store(harness, account_ids)


def test_a_failed_stream_is_reported_by_its_kinesis_sequence_number(harness):
    from cairn.projections.kinesis import dynamodb_records
    from orders import projections as order_projections

    rng = random.Random(19)
    order_ids = seed_orders(harness, rng, 6)
    victim = next(o for o in order_ids if harness.orders_store.current_version(o) >= 2)
    records = [r for r in harness.reader.new() if r["eventName"] == "INSERT" and stream_of(r).startswith("order-")]
    for record in records:  # the victim's second event does not decode
        if stream_of(record) == victim and version_of(record) == 2:
            record["dynamodb"]["NewImage"]["data"] = {"S": '{"payment_id": 42'}
    (batch,) = as_kinesis([records], harness.events_table)
    expected = next(
        k["kinesis"]["sequenceNumber"]
        for k, r in zip(batch, dynamodb_records(batch), strict=True)
        if stream_of(r) == victim and version_of(r) == 2
    )
    response = order_projections.consumer().handle({"Records": batch})
    assert response == {"batchItemFailures": [{"itemIdentifier": expected}]}
    # the other streams were applied despite the failure; the victim stopped before version 2
    from orders.read_models import OrderViews, order_view_from_events

    views = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True)
    for order_id in order_ids:
        events = list(harness.orders_store.read(order_id))
        if order_id == victim:
            assert views.get(order_id)["version"] == 1
        else:
            assert views.get(order_id) == order_view_from_events(events), order_id


def test_records_that_are_not_dynamodb_changes_are_skipped_not_fatal():
    from cairn.projections.kinesis import dynamodb_records

    junk = {"kinesis": {"sequenceNumber": "1", "data": base64.b64encode(b"not json").decode()}, "eventID": "x"}
    (converted,) = dynamodb_records([junk])
    assert converted["eventName"] is None and converted["dynamodb"]["SequenceNumber"] == "1"


def test_the_snapshotter_takes_its_snapshots_from_kinesis_records(harness, snapshot_bucket, monkeypatch):
    from projection_support import FakeContext

    from cairn_platform import snapshotter
    from orders import app as orders_app

    monkeypatch.setenv("SNAPSHOT_BUCKET", snapshot_bucket)
    monkeypatch.setenv("SNAPSHOT_EVERY", "order=2")
    caches = (orders_app.runtime, snapshotter._runtime)
    for cached in caches:
        cached.cache_clear()
    try:
        rng = random.Random(20)
        order_ids = seed_orders(harness, rng, 8)
        records = [r for r in harness.reader.new() if r["eventName"] == "INSERT" and stream_of(r).startswith("order-")]
        for batch in as_kinesis(chaotic_batches(records, rng, duplicate=0.3, drop=0.0), harness.events_table):
            assert snapshotter.handler({"Records": batch}, FakeContext(function_name="Snapshotter")) == {
                "batchItemFailures": []
            }
        runtime = orders_app.runtime()
        for order_id in order_ids:
            head = harness.orders_store.current_version(order_id)
            snapshot = runtime.snapshots.get(order_id, orders_app.decider.state_schema_version)
            assert (snapshot is not None) == (head >= 2), order_id
    finally:
        for cached in caches:
            cached.cache_clear()


def test_lag_is_measured_in_seconds_from_kinesis_records():
    """Kinesis for DynamoDB writes ApproximateCreationDateTime in milliseconds; the converted
    record is in seconds, or LagSeconds would always read 0 (now - milliseconds < 0)."""
    from cairn.lag import batch_lag_seconds
    from cairn.projections.kinesis import dynamodb_records, kinesis_record

    created = 1_700_000_000
    stream_record = {"eventID": "e1", "eventName": "INSERT", "dynamodb": {
        "ApproximateCreationDateTime": created, "Keys": {"stream_id": {"S": "order-1"}, "version": {"N": "1"}},
        "NewImage": {"stream_id": {"S": "order-1"}, "version": {"N": "1"}}, "SequenceNumber": "1"}}
    record = kinesis_record(stream_record, sequence_number="49", table_name="events", stream_arn=ARN)
    [converted] = dynamodb_records([record])
    assert converted["dynamodb"]["ApproximateCreationDateTime"] == created
    assert batch_lag_seconds([converted], now=created + 42) == 42
