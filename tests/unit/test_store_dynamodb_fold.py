"""``DynamoDBEventStore.fold`` specifics beyond the contract: what the Query asks for, chunked
decoding across pages (equal to folding what ``read`` returns, upcasts included), and the named
errors for a bad event wherever it sits in a page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cairn.events import NewEvent, SchemaVersionError, UnknownEventTypeError
from cairn.store import CorruptEventError
from cairn.store.dynamodb import _FOLD_CHUNK, DynamoDBEventStore
from tests.contract.ledger import Deposited, DepositedV1, Noted, build_registry, build_v1_registry

STREAM = "ledger-7"
EVENTS = 2 * _FOLD_CHUNK + 37  # several chunks, the last one partial


def collect(seen: tuple[Any, ...], event: Any) -> tuple[Any, ...]:
    return (*seen, event)


def deposit(ref: str) -> NewEvent:
    return NewEvent(data=Deposited(amount=Decimal("1.50"), ref=ref, currency="EUR"))


@pytest.fixture(params=[None, 45], ids=["1MB-pages", "45-item-pages"])
def store(request: Any, dynamodb_client: Any, event_tables: Any) -> DynamoDBEventStore:
    """A stream of EVENTS events: v1 deposits (upcast on read) sprinkled among current ones."""
    store = DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events, page_size=request.param)
    old = DynamoDBEventStore(build_v1_registry(), dynamodb_client, event_tables.events)
    version = 0
    while version < EVENTS:
        if version % 61 == 0:
            old.append(STREAM, [NewEvent(data=DepositedV1(amount=Decimal("2"), ref=f"old-{version}"))], version)
            version += 1
        batch = [deposit(str(version + n)) if (version + n) % 7 else NewEvent(data=Noted(text="n")) for n in range(20)]
        batch = batch[: EVENTS - version]
        store.append(STREAM, batch, version)
        version += len(batch)
    return store


def damage(store: DynamoDBEventStore, version: int, **attributes: dict[str, str]) -> None:
    names = {f"#a{n}": name for n, name in enumerate(attributes)}
    values = {f":a{n}": value for n, value in enumerate(attributes.values())}
    store.client.update_item(
        TableName=store.events_table,
        Key={"stream_id": {"S": STREAM}, "version": {"N": str(version)}},
        UpdateExpression="SET " + ", ".join(f"#a{n} = :a{n}" for n in range(len(attributes))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def test_fold_equals_folding_what_is_read(store: DynamoDBEventStore) -> None:
    everything = tuple(e.data for e in store.read(STREAM))
    assert len(everything) == EVENTS
    assert everything[0] == Deposited(amount=Decimal("2"), ref="old-0", currency="USD")  # upcast
    assert store.fold(STREAM, (), collect) == (EVENTS, everything)
    for after in (1, _FOLD_CHUNK - 1, _FOLD_CHUNK, EVENTS - 3, EVENTS):
        assert store.fold(STREAM, (), collect, after=after) == (EVENTS, everything[after:])


def test_fold_queries_only_what_it_decodes(store: DynamoDBEventStore) -> None:
    requests: list[dict[str, Any]] = []
    store.client.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: requests.append(params))
    store.fold(STREAM, 0, lambda n, e: n + 1)
    assert requests and all(r["ConsistentRead"] for r in requests)
    for request in requests:
        projected = {request["ExpressionAttributeNames"].get(a.strip(), a.strip()) for a in request["ProjectionExpression"].split(",")}
        # hash and occurred_at: the last item read is the head the next append chains to
        assert projected == {"version", "type", "schema_version", "data", "hash", "occurred_at"}


@pytest.mark.parametrize("version", [1, _FOLD_CHUNK, _FOLD_CHUNK + 1, EVENTS])
def test_a_corrupt_event_is_named_wherever_it_is(store: DynamoDBEventStore, version: int) -> None:
    damage(store, version, data={"S": '{"amount": "not a number"'})
    with pytest.raises(CorruptEventError) as info:
        store.fold(STREAM, 0, lambda n, e: n + 1)
    assert (info.value.stream_id, info.value.version) == (STREAM, version)
    assert store.fold(STREAM, 0, lambda n, e: n + 1, after=version) == (EVENTS, EVENTS - version)


@pytest.mark.parametrize(
    "attributes",
    [
        {"data": {"N": "5"}},
        {"schema_version": {"N": "0.5"}},
        {"data": {"S": '{"amount": "-1", "ref": "x", "currency": "USD"}'}},
    ],
    ids=["data-not-a-string", "bad-schema-version", "invalid-payload"],
)
def test_malformed_items_are_corrupt_events(store: DynamoDBEventStore, attributes: dict[str, Any]) -> None:
    damage(store, _FOLD_CHUNK + 5, **attributes)
    with pytest.raises(CorruptEventError) as info:
        store.fold(STREAM, 0, lambda n, e: n + 1)
    assert (info.value.stream_id, info.value.version) == (STREAM, _FOLD_CHUNK + 5)


def test_registry_errors_keep_their_type_and_name_the_event(store: DynamoDBEventStore) -> None:
    damage(store, 3, type={"S": "Dropped"})
    with pytest.raises(UnknownEventTypeError) as unknown:
        store.fold(STREAM, 0, lambda n, e: n + 1)
    assert f"stream {STREAM!r}, version 3" in unknown.value.__notes__
    damage(store, 3, type={"S": "Deposited"}, schema_version={"N": "3"})
    with pytest.raises(SchemaVersionError) as newer:
        store.fold(STREAM, 0, lambda n, e: n + 1)
    assert f"stream {STREAM!r}, version 3" in newer.value.__notes__


def test_evolve_errors_propagate_unchanged(store: DynamoDBEventStore) -> None:
    def evolve(n: int, event: Any) -> int:
        if n == _FOLD_CHUNK + 2:
            raise RuntimeError("domain bug")
        return n + 1

    with pytest.raises(RuntimeError, match="domain bug"):
        store.fold(STREAM, 0, evolve)


def test_registry_decoders_follow_registrations() -> None:
    registry = build_registry()
    decoders = registry.decoders()
    assert registry.decoders() is decoders  # built once
    assert decoders["Deposited"][0] == 2
    assert decoders["Deposited"][1]('{"amount":"1.00","ref":"r","currency":"USD"}') == Deposited(
        amount=Decimal("1.00"), ref="r", currency="USD"
    )

    class Later(Noted):
        pass

    registry.register(Later)
    assert "Later" in registry.decoders() and "Later" not in decoders
