"""DynamoDB adapter specifics beyond the shared contract: calls per append, item layout,
stream-record decoding, SDK retries after a landed write, pagination by size, scans."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from botocore.stub import Stubber

from cairn.events import EventMetadata, NewEvent, SchemaVersionError, UnknownEventTypeError
from cairn.store import ConcurrencyError, CorruptEventError, EventStoreError, TransactionConflictError
from cairn.store.dynamodb import DynamoDBEventStore, envelope_from_item
from tests.contract.ledger import Deposited, LedgerOpened, Noted, build_registry

STREAM = "ledger-42"


def deposit(ref: str, amount: str = "10.00", **kw: Any) -> NewEvent:
    return NewEvent(data=Deposited(amount=Decimal(amount), ref=ref, currency="USD"), **kw)


@pytest.fixture
def store(dynamodb_client: Any, event_tables: Any) -> DynamoDBEventStore:
    return DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency)


def raw_item(store: DynamoDBEventStore, version: int, stream_id: str = STREAM) -> dict[str, Any]:
    return store.client.get_item(
        TableName=store.events_table,
        Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}},
        ConsistentRead=True,
    )["Item"]


# -- calls per append ----------------------------------------------------------------------------
def test_one_event_is_one_put_item(store: DynamoDBEventStore, call_log: Any) -> None:
    call_log.attach(store.client)
    store.append(STREAM, [deposit("a")], 0)
    assert call_log.calls == ["PutItem"]


def test_several_events_or_a_key_are_one_transaction(store: DynamoDBEventStore, call_log: Any) -> None:
    call_log.attach(store.client)
    store.append(STREAM, [deposit("a"), deposit("b")], 0)
    assert call_log.calls == ["TransactWriteItems"]
    call_log.clear()
    store.append(STREAM, [deposit("c")], 2, "key", fingerprint="f", answer={"v": 3})
    assert call_log.calls == ["TransactWriteItems"]


def test_conflict_costs_one_extra_query(store: DynamoDBEventStore, call_log: Any) -> None:
    store.append(STREAM, [deposit("a")], 0)
    other = DynamoDBEventStore(store.registry, store.client, store.events_table, store.idempotency_table)
    other.append(STREAM, [deposit("b")], 1)  # another instance wrote version 2
    call_log.attach(store.client)
    with pytest.raises(ConcurrencyError) as info:
        store.append(STREAM, [deposit("c")], 1)  # this instance still knows version 1 as the head
    assert info.value.current_version == 2
    assert call_log.calls == ["PutItem", "Query"]


def test_a_head_this_instance_never_saw_is_read_first(store: DynamoDBEventStore, call_log: Any) -> None:
    store.append(STREAM, [deposit("a"), deposit("b")], 0)
    call_log.attach(store.client)
    with pytest.raises(ConcurrencyError) as info:
        store.append(STREAM, [deposit("c")], 1)  # known head is 2: the claim is checked, nothing written
    assert info.value.current_version == 2
    assert call_log.calls == ["Query"]
    cold = DynamoDBEventStore(store.registry, store.client, store.events_table, store.idempotency_table)
    call_log.calls.clear()
    cold.append(STREAM, [deposit("c")], 2)  # a cold instance reads the head (hash) once
    cold.append(STREAM, [deposit("d")], 3)  # then chains from what it wrote: one PutItem
    assert call_log.calls == ["Query", "PutItem", "PutItem"]


def test_repeat_is_answered_from_the_cancellation_reason(store: DynamoDBEventStore, call_log: Any) -> None:
    store.append(STREAM, [deposit("a")], 0, "key", fingerprint="f", answer={"v": 1})
    call_log.attach(store.client)
    repeat = store.append(STREAM, [deposit("a")], 1, "key", fingerprint="f", answer={"v": 2})
    assert repeat.replayed and repeat.answer == {"v": 1}
    assert call_log.calls == ["TransactWriteItems"]  # the old marker came back with the failure


# -- layout ---------------------------------------------------------------------------------------
def test_event_item_is_compact(store: DynamoDBEventStore) -> None:
    meta = EventMetadata(correlation_id="c-1", actor="ann")
    store.append(STREAM, [deposit("a", "1.50", metadata=meta, event_id="e-1", occurred_at="2026-01-02T03:04:05.678Z")], 0)
    item = raw_item(store, 1)
    assert item == {
        "stream_id": {"S": STREAM},
        "version": {"N": "1"},
        "event_id": {"S": "e-1"},
        "type": {"S": "Deposited"},
        "schema_version": {"N": "2"},
        "occurred_at": {"S": "2026-01-02T03:04:05.678Z"},
        "data": {"S": '{"amount":"1.50","ref":"a","currency":"USD"}'},
        "metadata": {"S": '{"correlation_id":"c-1","actor":"ann"}'},  # nulls are left out
        "hash": {"S": item["hash"]["S"]},
        "prev_hash": {"S": "0" * 64},  # version 1 chains to the genesis value
    }
    assert re.fullmatch(r"[0-9a-f]{64}", item["hash"]["S"])


def test_marker_item(store: DynamoDBEventStore) -> None:
    before = int(time.time())
    store.append(STREAM, [deposit("a"), deposit("b")], 0, "key-9", fingerprint="fp", answer={"balance": "20.00"})
    item = store.client.get_item(TableName=store.idempotency_table, Key={"idempotency_key": {"S": "key-9"}})["Item"]
    assert set(item) == {
        "idempotency_key",
        "fingerprint",
        "stream_id",
        "first_version",
        "last_version",
        "answer",
        "created_at",
        "expires_at",
    }
    assert (item["first_version"]["N"], item["last_version"]["N"]) == ("1", "2")
    assert json.loads(item["answer"]["S"]) == {"balance": "20.00"}
    assert before + store.marker_ttl_seconds <= int(item["expires_at"]["N"]) <= int(time.time()) + store.marker_ttl_seconds


def test_expired_marker_no_longer_counts(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [deposit("a")], 0, "key", fingerprint="f", answer={"n": 1})
    store.client.update_item(
        TableName=store.idempotency_table,
        Key={"idempotency_key": {"S": "key"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 10)}},
    )
    assert store.get_idempotency_record("key") is None  # TTL deletion lags; we do not
    fresh = store.append(STREAM, [deposit("b")], 1, "key", fingerprint="other", answer={"n": 2})
    assert not fresh.replayed
    record = store.get_idempotency_record("key")
    assert record is not None and record.answer == {"n": 2} and record.first_version == 2


def test_idempotency_needs_a_table(dynamodb_client: Any, event_tables: Any) -> None:
    store = DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events)
    with pytest.raises(ValueError, match="idempotency_table"):
        store.append(STREAM, [deposit("a")], 0, "key", fingerprint="f")
    assert store.current_version(STREAM) == 0
    assert store.get_idempotency_record("key") is None


# -- decoding items and stream records --------------------------------------------------------------
def test_stream_new_image_decodes_like_a_query_item(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [NewEvent(data=LedgerOpened(owner="ann")), deposit("a")], 0)
    streams = __import__("cairn.aws", fromlist=["client"]).client("dynamodbstreams")
    arn = store.client.describe_table(TableName=store.events_table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    from_stream = [store.envelope_from_item(r["dynamodb"]["NewImage"]) for r in records]
    assert from_stream == list(store.read(STREAM))


def test_plain_items_decode_too(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [deposit("a", "2.25")], 0)
    item = raw_item(store, 1)
    plain = {k: TypeDeserializer().deserialize(v) for k, v in item.items()}  # Powertools-style image
    assert isinstance(plain["version"], Decimal)
    assert envelope_from_item(plain, store.registry) == envelope_from_item(item, store.registry)


@pytest.mark.parametrize(
    ("damage", "version_named"),
    [
        (lambda item: item.pop("data"), 3),
        (lambda item: item.update(data={"S": "[1, 2"}), 3),
        (lambda item: item.update(data={"S": '{"amount": "-1", "ref": "x", "currency": "USD"}'}), 3),
        (lambda item: item.update(data={"N": "5"}), 3),
        (lambda item: item.update(schema_version={"N": "two"}), 3),
        (lambda item: item.pop("version"), None),
    ],
    ids=["missing-data", "bad-json", "invalid-payload", "wrong-type", "bad-schema-version", "no-version"],
)
def test_corrupt_items_name_stream_and_version(
    store: DynamoDBEventStore, damage: Any, version_named: int | None
) -> None:
    store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 0)
    item = raw_item(store, 3)
    damage(item)
    with pytest.raises(CorruptEventError) as info:
        store.envelope_from_item(item)
    assert info.value.stream_id == STREAM
    assert info.value.version == version_named


def test_registry_errors_keep_their_type_and_name_the_event(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [deposit("a")], 0)
    item = raw_item(store, 1)
    with pytest.raises(UnknownEventTypeError) as unknown:
        store.envelope_from_item({**item, "type": {"S": "Dropped"}})
    assert f"stream {STREAM!r}, version 1" in unknown.value.__notes__
    with pytest.raises(SchemaVersionError) as newer:
        store.envelope_from_item({**item, "schema_version": {"N": "3"}})
    assert f"stream {STREAM!r}, version 1" in newer.value.__notes__


# -- SDK retries of writes that landed ----------------------------------------------------------------
def _retry_once_after_success(client: Any, operation: str) -> list[int]:
    """Make botocore retry ``operation`` once after its first attempt succeeded (a lost
    response, as after a timeout): the retry meets the write it already made."""
    forced: list[int] = []

    def needs_retry(attempts: int, response: Any = None, **_: Any) -> float | None:
        if attempts == 1 and response is not None and response[0].status_code == 200:
            forced.append(attempts)
            return 0.0
        return None

    client.meta.events.register_first(f"needs-retry.dynamodb.{operation}", needs_retry)
    return forced


def test_sdk_retry_of_a_landed_put_is_not_a_conflict(store: DynamoDBEventStore) -> None:
    forced = _retry_once_after_success(store.client, "PutItem")
    result = store.append(STREAM, [deposit("a")], 0)
    assert forced == [1]
    assert not result.replayed and result.version == 1
    assert [e.data.ref for e in store.read(STREAM)] == ["a"]


@pytest.mark.parametrize("with_key", [False, True])
def test_sdk_retry_of_a_landed_transaction_is_not_a_conflict(store: DynamoDBEventStore, with_key: bool) -> None:
    forced = _retry_once_after_success(store.client, "TransactWriteItems")
    key = "key" if with_key else None
    result = store.append(STREAM, [deposit("a"), deposit("b")], 0, key, fingerprint="f", answer={"ok": 1})
    assert forced == [1]
    assert not result.replayed and result.version == 2 and len(result.events) == 2
    assert [e.data.ref for e in store.read(STREAM)] == ["a", "b"]


def test_real_conflict_on_put_still_conflicts(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [deposit("a", event_id="first")], 0)
    with pytest.raises(ConcurrencyError):
        store.append(STREAM, [deposit("b", event_id="second")], 0)


# -- transaction cancellations other than a taken version ----------------------------------------------
def _cancelled(store: DynamoDBEventStore, codes: list[str], current: int) -> Stubber:
    stubber = Stubber(store.client)
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": c} for c in codes]},
    )
    if current >= 0:
        items = [{"version": {"N": str(current)}}] if current else []
        stubber.add_response("query", {"Items": items, "Count": len(items), "ScannedCount": len(items)})
    return stubber


def test_transaction_conflict_on_an_unmoved_stream_is_transient_not_a_version_mismatch(store: DynamoDBEventStore) -> None:
    """Issue 17, defect 5: it used to be ConcurrencyError "at version 4, expected 4" (a 412)."""
    store._learn(STREAM, 4, "a" * 64, "2026-01-01T00:00:00.000Z")  # a warm instance: head known
    with _cancelled(store, ["TransactionConflict", "None"], current=4):
        with pytest.raises(TransactionConflictError) as info:
            store.append(STREAM, [deposit("a"), deposit("b")], 4)
    assert not isinstance(info.value, ConcurrencyError) and info.value.version == 4


def test_transaction_conflict_on_a_moved_stream_is_a_concurrency_error(store: DynamoDBEventStore) -> None:
    store._learn(STREAM, 4, "a" * 64, "2026-01-01T00:00:00.000Z")  # a warm instance: head known
    with _cancelled(store, ["TransactionConflict", "None"], current=5):
        with pytest.raises(ConcurrencyError) as info:
            store.append(STREAM, [deposit("a"), deposit("b")], 4)
    assert info.value.current_version == 5


def test_other_cancellations_are_store_errors(store: DynamoDBEventStore) -> None:
    with _cancelled(store, ["ValidationError", "None"], current=-1):
        with pytest.raises(EventStoreError, match="ValidationError") as info:
            store.append(STREAM, [deposit("a"), deposit("b")], 0)
    assert not isinstance(info.value, ConcurrencyError)


# -- reading ---------------------------------------------------------------------------------------------
def test_pages_split_by_size_are_all_read(store: DynamoDBEventStore, call_log: Any) -> None:
    text = "y" * 40_000
    for start in range(0, 30, 10):
        store.append(STREAM, [NewEvent(data=Noted(text=text)) for _ in range(10)], start)
    call_log.attach(store.client)
    stored = list(store.read(STREAM))
    assert [e.version for e in stored] == list(range(1, 31))
    assert call_log.calls.count("Query") >= 2  # 1.2 MB does not fit DynamoDB's 1 MB page


def test_up_to_time_stops_without_decoding_later_items(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [deposit("a", occurred_at="2026-01-01T00:00:00.000Z")], 0)
    store.append(STREAM, [deposit("b", occurred_at="2026-02-01T00:00:00.000Z")], 1)
    store.client.update_item(
        TableName=store.events_table,
        Key={"stream_id": {"S": STREAM}, "version": {"N": "2"}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":d": {"S": "garbage"}},
    )
    assert [e.data.ref for e in store.read(STREAM, up_to_time="2026-01-15T00:00:00Z")] == ["a"]


def test_scan_segments_cover_every_event_once(dynamodb_client: Any, event_tables: Any) -> None:
    store = DynamoDBEventStore(
        build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency, page_size=5
    )
    expected = set()
    for n in range(12):
        stream = f"ledger-{n:03d}"
        store.append(stream, [deposit(f"{n}-{i}") for i in range(n % 4 + 1)], 0)
        expected |= {(stream, v) for v in range(1, n % 4 + 2)}
    seen = [(e.stream_id, e.version) for seg in range(3) for e in store.scan_segment(seg, 3)]
    assert len(seen) == len(expected) and set(seen) == expected
    raw = list(store.scan_all(raw=True))
    assert len(raw) == len(expected) and all("data" in item for item in raw)
    with pytest.raises(ValueError):
        list(store.scan_segment(3, 3))


def test_read_items_yields_raw_items(store: DynamoDBEventStore) -> None:
    store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 0)
    items = list(store.read_items(STREAM, after=1))
    assert [int(i["version"]["N"]) for i in items] == [2, 3]
