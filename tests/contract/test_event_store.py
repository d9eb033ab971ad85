"""One contract for every EventStore (like pyeventsourcing's AggregateRecorderTestCase).

``EventStoreContract`` holds the tests; each adapter subclasses it and provides the ``store``
fixture plus a ``corrupt`` hook that damages one stored event the way its backend could.
"""

from __future__ import annotations

import copy
import inspect
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cairn.events import EventMetadata, EventRegistry, NewEvent
from cairn.store import (
    ConcurrencyError,
    CorruptEventError,
    EventStore,
    EventTooLargeError,
    IdempotencyKeyReuseError,
    InMemoryEventStore,
    TooManyEventsError,
)
from cairn.store.base import MAX_ITEM_BYTES
from cairn.store.dynamodb import DynamoDBEventStore
from tests.contract.ledger import (
    Deposited,
    DepositedV1,
    LedgerOpened,
    Noted,
    build_registry,
    build_v1_registry,
)

STREAM = "ledger-0001"


def deposit(ref: str, amount: str = "10.00", **kw: Any) -> NewEvent:
    return NewEvent(data=Deposited(amount=Decimal(amount), ref=ref, currency="USD"), **kw)


def versions(store: EventStore, stream_id: str = STREAM, **kw: Any) -> list[int]:
    return [e.version for e in store.read(stream_id, **kw)]


def refs(store: EventStore, stream_id: str = STREAM) -> list[str]:
    return [e.data.ref for e in store.read(stream_id) if isinstance(e.data, Deposited)]


def note_of_item_size(size: int, stream_id: str = STREAM) -> NewEvent:
    """A Noted event whose stored item is exactly ``size`` bytes (DynamoDB's rules)."""
    from cairn.store.base import EncodedEvent

    def item_bytes(text: str) -> int:
        data_json = Noted(text=text).model_dump_json()
        enc = EncodedEvent("e" * 36, 1, "Noted", 1, "2026-01-01T00:00:00.000Z", data_json, "{}", None)  # type: ignore[arg-type]
        return enc.item_size(stream_id)

    text = "x" * (size - item_bytes(""))
    assert item_bytes(text) == size
    return NewEvent(data=Noted(text=text), event_id="e" * 36, occurred_at="2026-01-01T00:00:00.000Z")


class EventStoreContract:
    """Subclasses provide ``store`` (with ``build_registry()``) and ``corrupt``."""

    @pytest.fixture
    def store(self) -> EventStore:
        raise NotImplementedError

    def corrupt(self, store: EventStore, stream_id: str, version: int) -> None:
        """Overwrite the stored payload of one event with undecodable bytes."""
        raise NotImplementedError

    @staticmethod
    def with_registry(store: EventStore, registry: EventRegistry) -> EventStore:
        """The same storage seen through another deploy's registry."""
        other = copy.copy(store)
        other.registry = registry
        return other

    # -- versions and conflicts -----------------------------------------------------------------
    def test_empty_stream(self, store: EventStore) -> None:
        assert store.current_version(STREAM) == 0
        assert list(store.read(STREAM)) == []

    def test_versions_are_contiguous_from_one(self, store: EventStore) -> None:
        r1 = store.append(STREAM, [NewEvent(data=LedgerOpened(owner="ann"))], 0)
        r2 = store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 1)
        r3 = store.append(STREAM, [deposit("d")], 4)
        assert (r1.first_version, r1.last_version) == (1, 1)
        assert (r2.first_version, r2.last_version, r2.version) == (2, 4, 4)
        assert [e.version for e in r2.events] == [2, 3, 4]
        assert (r3.first_version, r3.last_version) == (5, 5)
        assert not r3.replayed
        assert versions(store) == [1, 2, 3, 4, 5]
        assert store.current_version(STREAM) == 5

    def test_round_trip_keeps_every_field(self, store: EventStore) -> None:
        meta = EventMetadata(correlation_id="corr-1", causation_id="cause-1", actor="ann", command_id="cmd-1")
        store.append(
            STREAM,
            [deposit("a", "12.34", metadata=meta, event_id="evt-1", occurred_at="2026-03-01T10:00:00.123Z")],
            0,
        )
        (event,) = store.read(STREAM)
        assert event.event_id == "evt-1"
        assert event.stream_id == STREAM
        assert event.version == 1
        assert event.type == "Deposited"
        assert event.schema_version == 2
        assert event.occurred_at == "2026-03-01T10:00:00.123Z"
        assert event.data == Deposited(amount=Decimal("12.34"), ref="a", currency="USD")
        assert isinstance(event.data.amount, Decimal)
        assert event.metadata == meta

    def test_generated_ids_and_times(self, store: EventStore) -> None:
        result = store.append(STREAM, [deposit("a"), deposit("b")], 0)
        stored = list(store.read(STREAM))
        assert [e.event_id for e in stored] == [e.event_id for e in result.events]
        assert len({e.event_id for e in stored}) == 2
        assert all(e.occurred_at.endswith("Z") and len(e.occurred_at) == 24 for e in stored)
        assert stored[0].metadata == EventMetadata()

    def test_streams_are_independent(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a")], 0)
        store.append("ledger-0002", [deposit("b"), deposit("c")], 0)
        assert refs(store) == ["a"]
        assert refs(store, "ledger-0002") == ["b", "c"]

    def test_conflict_carries_current_version(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 0)
        with pytest.raises(ConcurrencyError) as info:
            store.append(STREAM, [deposit("late")], 1)
        assert info.value.current_version == 3
        assert info.value.expected_version == 1
        assert info.value.stream_id == STREAM
        with pytest.raises(ConcurrencyError) as info:
            store.append(STREAM, [deposit("late")], 0)
        assert info.value.current_version == 3
        assert refs(store) == ["a", "b", "c"]

    def test_conflicting_batch_writes_nothing(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 0)
        # versions 3..5: 3 is taken, 4 and 5 are free; none of them may be written
        with pytest.raises(ConcurrencyError) as info:
            store.append(STREAM, [deposit("x"), deposit("y"), deposit("z")], 2)
        assert info.value.current_version == 3
        assert refs(store) == ["a", "b", "c"]
        assert store.current_version(STREAM) == 3
        store.append(STREAM, [deposit("d")], 3)
        assert versions(store) == [1, 2, 3, 4]

    def test_conflicting_idempotent_append_writes_no_marker(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a")], 0)
        with pytest.raises(ConcurrencyError):
            store.append(STREAM, [deposit("x")], 0, "key-1", fingerprint="f1", answer={"ok": True})
        assert store.get_idempotency_record("key-1") is None
        result = store.append(STREAM, [deposit("x")], 1, "key-1", fingerprint="f1", answer={"ok": True})
        assert not result.replayed
        assert refs(store) == ["a", "x"]

    def test_bad_arguments(self, store: EventStore) -> None:
        with pytest.raises(ValueError):
            store.append(STREAM, [], 0)
        with pytest.raises(ValueError):
            store.append(STREAM, [deposit("a")], -1)
        with pytest.raises(ValueError):
            store.append("", [deposit("a")], 0)
        assert store.current_version(STREAM) == 0

    # -- contiguity and the chain (issue 11) ------------------------------------------------------
    def reopen(self, store: EventStore) -> EventStore:
        """The same storage through a new store instance (a cold Lambda): knows no heads."""
        return store

    def items(self, store: EventStore, stream_id: str = STREAM) -> list[dict[str, Any]]:
        """The stored items of a stream as plain values (what a verifier reads)."""
        raise NotImplementedError

    @pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
    def test_expected_version_beyond_the_head_is_refused(self, store: EventStore, cold: bool) -> None:
        store.append(STREAM, [deposit("a"), deposit("b")], 0)
        writer = self.reopen(store) if cold else store
        for beyond in (3, 10):
            with pytest.raises(ConcurrencyError) as info:
                writer.append(STREAM, [deposit("gap")], beyond)
            assert info.value.current_version == 2
        with pytest.raises(ConcurrencyError) as info:
            writer.append("ledger-empty", [deposit("gap")], 1)
        assert info.value.current_version == 0
        assert versions(store) == [1, 2]
        assert versions(store, "ledger-empty") == []
        writer.append(STREAM, [deposit("c")], 2)  # the head itself is fine
        assert versions(store) == [1, 2, 3]

    def test_beyond_the_head_with_a_used_key_answers_the_first_time(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a")], 0, "key-1", fingerprint="fp", answer={"v": 1})
        repeat = self.reopen(store).append(STREAM, [deposit("a")], 7, "key-1", fingerprint="fp", answer={"v": 1})
        assert repeat.replayed and repeat.answer == {"v": 1}
        with pytest.raises(IdempotencyKeyReuseError):
            self.reopen(store).append(STREAM, [deposit("z")], 7, "key-1", fingerprint="other")
        assert versions(store) == [1]

    def test_every_event_is_chained(self, store: EventStore) -> None:
        from cairn.integrity import GENESIS, event_hash, verify_items

        store.append(STREAM, [NewEvent(data=LedgerOpened(owner="ann"))], 0)
        store.append(STREAM, [deposit("a"), deposit("b")], 1)
        self.reopen(store).append(STREAM, [deposit("c")], 3)
        events = list(store.read(STREAM))
        assert events[0].prev_hash == GENESIS
        for before, after in zip(events, events[1:], strict=False):
            assert after.prev_hash == before.hash
        items = self.items(store)
        for event, item in zip(events, items, strict=True):
            assert event.hash == item["hash"] == event_hash(
                STREAM,
                item["version"],
                item["event_id"],
                item["type"],
                item["schema_version"],
                item["occurred_at"],
                item["data"],
                item["metadata"],
                item["prev_hash"],
            )
        assert len({e.hash for e in events}) == 4
        result = verify_items(STREAM, items)
        assert result.intact and result.version == 4 and result.head_hash == events[-1].hash
        assert events[-1].to_dict()["hash"] == events[-1].hash
        assert events[-1].to_dict()["prev_hash"] == events[-2].hash

    def test_occurred_at_never_goes_backwards(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a", occurred_at="2026-03-01T10:00:00.500Z")], 0)
        self.reopen(store).append(
            STREAM,
            [deposit("b", occurred_at="2026-03-01T10:00:00.300Z"), deposit("c", occurred_at="2026-03-01T10:00:00.900Z")],
            1,
        )
        store.append(STREAM, [deposit("d", occurred_at="2026-03-01T10:00:00.100Z")], 3)
        times = [e.occurred_at for e in store.read(STREAM)]
        assert times == [
            "2026-03-01T10:00:00.500Z",
            "2026-03-01T10:00:00.500Z",
            "2026-03-01T10:00:00.900Z",
            "2026-03-01T10:00:00.900Z",
        ]

    def test_fold_from_an_anchor(self, store: EventStore) -> None:
        from cairn.store import AnchorMismatchError

        store.append(STREAM, [deposit(str(i)) for i in range(6)], 0)
        events = list(store.read(STREAM))

        def count(n: int, _: Any) -> int:
            return n + 1

        reader = self.reopen(store)
        assert reader.fold(STREAM, 0, count, after=3, anchor=events[2].hash) == (6, 3)
        assert reader.fold(STREAM, 0, count, after=6, anchor=events[5].hash) == (6, 0)
        with pytest.raises(AnchorMismatchError):
            reader.fold(STREAM, 0, count, after=3, anchor=events[3].hash)  # another event's hash
        with pytest.raises(AnchorMismatchError):
            reader.fold(STREAM, 0, count, after=10, anchor=events[5].hash)  # a snapshot newer than the store
        with pytest.raises(AnchorMismatchError):
            reader.fold("ledger-none", 0, count, after=1, anchor=events[0].hash)

    def remove(self, store: EventStore, stream_id: str, version: int) -> None:
        """Delete one stored event behind the store's back."""
        raise NotImplementedError

    def test_fold_can_verify_the_chain_links(self, store: EventStore) -> None:
        store.append(STREAM, [deposit(str(i)) for i in range(9)], 0)
        events = list(store.read(STREAM))

        def count(n: int, _: Any) -> int:
            return n + 1

        assert store.fold(STREAM, 0, count, verify_links=True) == (9, 9)
        assert store.fold(STREAM, 0, count, after=4, anchor=events[3].hash, verify_links=True) == (9, 5)
        self.remove(store, STREAM, 6)
        with pytest.raises(CorruptEventError) as info:
            store.fold(STREAM, 0, count, verify_links=True)
        assert info.value.version == 6

    # -- reading ----------------------------------------------------------------------------------
    def test_read_ranges(self, store: EventStore) -> None:
        store.append(STREAM, [deposit(str(i)) for i in range(1, 11)], 0)
        assert versions(store) == list(range(1, 11))
        assert versions(store, after=4) == [5, 6, 7, 8, 9, 10]
        assert versions(store, up_to_version=3) == [1, 2, 3]
        assert versions(store, after=2, up_to_version=5) == [3, 4, 5]
        assert versions(store, after=5, up_to_version=5) == []
        assert versions(store, after=7, up_to_version=3) == []
        assert versions(store, after=10) == []
        assert versions(store, up_to_version=99) == list(range(1, 11))

    def test_read_up_to_time(self, store: EventStore) -> None:
        times = [f"2026-03-0{d}T12:00:00.000Z" for d in range(1, 6)]
        store.append(STREAM, [deposit(str(i), occurred_at=t) for i, t in enumerate(times, 1)], 0)
        assert versions(store, up_to_time="2026-03-03T12:00:00Z") == [1, 2, 3]
        assert versions(store, up_to_time="2026-03-03T11:59:59.999Z") == [1, 2]
        assert versions(store, up_to_time="2026-03-03T14:00:00+02:00") == [1, 2, 3]  # offsets normalised
        assert versions(store, up_to_time=datetime(2026, 3, 4, 12, tzinfo=UTC)) == [1, 2, 3, 4]
        assert versions(store, up_to_time="2026-02-01T00:00:00Z") == []
        assert versions(store, after=1, up_to_version=4, up_to_time="2026-03-09T00:00:00Z") == [2, 3, 4]

    def test_read_streams_lazily(self, store: EventStore) -> None:
        store.append(STREAM, [deposit(str(i)) for i in range(1, 31)], 0)
        reader = store.read(STREAM)
        assert inspect.isgenerator(reader)
        first = next(reader)
        assert first.version == 1
        # events appended while a reader is open never break it
        store.append(STREAM, [deposit("late")], 30)
        rest = [e.version for e in reader]
        assert rest[:29] == list(range(2, 31))

    def test_many_events_read_in_order(self, store: EventStore) -> None:
        expected = 0
        for batch in range(5):
            events = [deposit(f"{batch}-{i}") for i in range(40)]
            store.append(STREAM, events, expected)
            expected += len(events)
        stored = list(store.read(STREAM))
        assert [e.version for e in stored] == list(range(1, 201))
        assert [e.data.ref for e in stored][:3] == ["0-0", "0-1", "0-2"]
        assert versions(store, after=150, up_to_version=160) == list(range(151, 161))

    def test_upcasting_on_read(self, store: EventStore) -> None:
        old = self.with_registry(store, build_v1_registry())
        old.append(STREAM, [NewEvent(data=DepositedV1(amount=Decimal("5.50"), ref="old"))], 0)
        store.append(STREAM, [deposit("new", "1.25")], 1)
        first, second = store.read(STREAM)
        assert first.schema_version == 1  # stored events are never rewritten
        assert first.data == Deposited(amount=Decimal("5.50"), ref="old", currency="USD")
        assert second.schema_version == 2
        assert second.data == Deposited(amount=Decimal("1.25"), ref="new", currency="USD")

    def test_fold_equals_folding_what_is_read(self, store: EventStore) -> None:
        old = self.with_registry(store, build_v1_registry())
        old.append(STREAM, [NewEvent(data=DepositedV1(amount=Decimal("5"), ref="old"))], 0)
        store.append(STREAM, [deposit(str(i)) for i in range(12)], 1)
        store.append(STREAM, [NewEvent(data=Noted(text="n"))], 13)

        def evolve(seen: tuple[Any, ...], event: Any) -> tuple[Any, ...]:
            return (*seen, event)

        everything = tuple(e.data for e in store.read(STREAM))
        assert store.fold(STREAM, (), evolve) == (14, everything)
        assert everything[0] == Deposited(amount=Decimal("5"), ref="old", currency="USD")  # upcast
        assert store.fold(STREAM, ("x",), evolve, after=9) == (14, ("x", *everything[9:]))
        assert store.fold(STREAM, "same", evolve, after=14) == (14, "same")
        assert store.fold("ledger-none", "same", evolve) == (0, "same")

    def test_fold_names_a_corrupt_event(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 0)
        self.corrupt(store, STREAM, 2)
        with pytest.raises(CorruptEventError) as info:
            store.fold(STREAM, 0, lambda n, e: n + 1)
        assert (info.value.stream_id, info.value.version) == (STREAM, 2)
        assert store.fold(STREAM, 0, lambda n, e: n + 1, after=2) == (3, 1)

    # -- idempotency ------------------------------------------------------------------------------
    def test_idempotent_repeat_returns_first_answer_and_writes_nothing(self, store: EventStore) -> None:
        store.append(STREAM, [NewEvent(data=LedgerOpened(owner="ann"))], 0)
        answer = {"version": 3, "balance": "20.00", "items": [1, 2]}
        first = store.append(STREAM, [deposit("a"), deposit("b")], 1, "key-1", fingerprint="fp", answer=answer)
        assert not first.replayed
        assert first.answer == answer
        # a repeat decided on newer state still finds the marker: nothing is written
        repeat = store.append(STREAM, [deposit("a2")], 3, "key-1", fingerprint="fp", answer={"other": 1})
        assert repeat.replayed
        assert repeat.answer == answer
        assert (repeat.stream_id, repeat.first_version, repeat.last_version) == (STREAM, 2, 3)
        assert repeat.events == ()
        # also at the original expected version (the events' versions are taken)
        again = store.append(STREAM, [deposit("a")], 1, "key-1", fingerprint="fp", answer=answer)
        assert again.replayed and again.answer == answer
        # the marker answers for the stream it was written with
        elsewhere = store.append("ledger-other", [deposit("z")], 0, "key-1", fingerprint="fp")
        assert elsewhere.replayed and elsewhere.stream_id == STREAM and elsewhere.last_version == 3
        assert store.current_version("ledger-other") == 0
        assert refs(store) == ["a", "b"]
        record = store.get_idempotency_record("key-1")
        assert record is not None
        assert (record.key, record.fingerprint, record.stream_id) == ("key-1", "fp", STREAM)
        assert (record.first_version, record.last_version) == (2, 3)
        assert record.answer == answer
        assert record.created_at.endswith("Z")

    def test_single_event_idempotent_and_without_answer(self, store: EventStore) -> None:
        first = store.append(STREAM, [deposit("a")], 0, "key-2", fingerprint="fp")
        assert not first.replayed and first.answer is None
        repeat = store.append(STREAM, [deposit("a")], 1, "key-2", fingerprint="fp")
        assert repeat.replayed and repeat.answer is None
        assert (repeat.first_version, repeat.last_version) == (1, 1)
        assert refs(store) == ["a"]

    def test_idempotency_key_reuse_with_other_request_fails(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a")], 0, "key-3", fingerprint="fp-1", answer={"n": 1})
        with pytest.raises(IdempotencyKeyReuseError) as info:
            store.append(STREAM, [deposit("b")], 1, "key-3", fingerprint="fp-2", answer={"n": 2})
        assert info.value.key == "key-3"
        with pytest.raises(IdempotencyKeyReuseError):
            store.append("ledger-other", [deposit("c")], 0, "key-3", fingerprint="fp-2")
        assert refs(store) == ["a"]
        assert store.current_version("ledger-other") == 0

    def test_idempotency_keys_are_independent(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a")], 0, "k-a", fingerprint="same")
        second = store.append(STREAM, [deposit("b")], 1, "k-b", fingerprint="same")
        assert not second.replayed
        assert store.get_idempotency_record("unknown") is None
        assert refs(store) == ["a", "b"]

    def test_answer_must_be_json_ready(self, store: EventStore) -> None:
        with pytest.raises(ValueError):
            store.append(STREAM, [deposit("a")], 0, "k", fingerprint="f", answer={"x": object()})
        assert store.current_version(STREAM) == 0

    # -- limits -----------------------------------------------------------------------------------
    def test_event_at_the_item_limit_is_stored(self, store: EventStore) -> None:
        # moto refuses items over 405,000 bytes although DynamoDB takes 409,600 (400 KB):
        # stay under both here; test_event_over_the_item_limit_is_refused covers the edge
        event = note_of_item_size(400_000)
        store.append(STREAM, [event], 0)
        (stored,) = store.read(STREAM)
        assert len(stored.data.text) > 399_000

    def test_event_over_the_item_limit_is_refused(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a")], 0)
        with pytest.raises(EventTooLargeError, match="Noted"):
            store.append(STREAM, [deposit("b"), note_of_item_size(MAX_ITEM_BYTES + 1)], 1)
        with pytest.raises(EventTooLargeError):
            store.append(STREAM, [note_of_item_size(MAX_ITEM_BYTES + 1)], 1, "key", fingerprint="f")
        assert refs(store) == ["a"]
        assert store.current_version(STREAM) == 1
        assert store.get_idempotency_record("key") is None

    def test_batch_over_the_transaction_limit_is_refused(self, store: EventStore) -> None:
        big = [note_of_item_size(390_000) for _ in range(11)]  # 4.29 MB > 4 MiB
        with pytest.raises(EventTooLargeError, match="transaction"):
            store.append(STREAM, big, 0)
        assert store.current_version(STREAM) == 0

    def test_too_many_events_are_refused(self, store: EventStore) -> None:
        with pytest.raises(TooManyEventsError):
            store.append(STREAM, [deposit(str(i)) for i in range(100)], 0)
        assert store.current_version(STREAM) == 0
        # 99 events + the idempotency marker fill one transaction exactly
        result = store.append(STREAM, [deposit(str(i)) for i in range(99)], 0, "big", fingerprint="f")
        assert (result.first_version, result.last_version) == (1, 99)
        assert versions(store) == list(range(1, 100))

    # -- damage -----------------------------------------------------------------------------------
    def test_corrupt_event_names_stream_and_version(self, store: EventStore) -> None:
        store.append(STREAM, [deposit("a"), deposit("b"), deposit("c")], 0)
        self.corrupt(store, STREAM, 2)
        reader = store.read(STREAM)
        assert next(reader).version == 1
        with pytest.raises(CorruptEventError) as info:
            next(reader)
        assert info.value.stream_id == STREAM
        assert info.value.version == 2
        assert STREAM in str(info.value) and "version 2" in str(info.value)
        assert versions(store, after=2) == [3]


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> EventStore:
        return InMemoryEventStore(build_registry())

    def items(self, store: EventStore, stream_id: str = STREAM) -> list[dict[str, Any]]:
        assert isinstance(store, InMemoryEventStore)
        return store.raw_items(stream_id)

    def remove(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, InMemoryEventStore)
        del store._streams[stream_id][version - 1]

    def corrupt(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, InMemoryEventStore)
        store._streams[stream_id][version - 1].data_json = '{"amount": "not a number"'


class TestDynamoDBEventStore(EventStoreContract):
    """On in-process moto, with 4-item pages so every multi-event read paginates."""

    @pytest.fixture
    def store(self, dynamodb_client: Any, event_tables: Any) -> EventStore:
        return DynamoDBEventStore(
            build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency, page_size=4
        )

    def reopen(self, store: EventStore) -> EventStore:
        assert isinstance(store, DynamoDBEventStore)
        return DynamoDBEventStore(
            store.registry, store.client, store.events_table, store.idempotency_table, page_size=store.page_size
        )

    def items(self, store: EventStore, stream_id: str = STREAM) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        assert isinstance(store, DynamoDBEventStore)
        plain = TypeDeserializer()
        return [
            {k: (int(v) if k in ("version", "schema_version") else v) for k, v in ((k, plain.deserialize(v)) for k, v in i.items())}
            for i in store.read_items(stream_id)
        ]

    def remove(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, DynamoDBEventStore)
        store.client.delete_item(
            TableName=store.events_table, Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}}
        )

    def corrupt(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, DynamoDBEventStore)
        store.client.update_item(
            TableName=store.events_table,
            Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}},
            UpdateExpression="SET #d = :d",
            ExpressionAttributeNames={"#d": "data"},
            ExpressionAttributeValues={":d": {"S": '{"amount": "not a number"'}},
        )


class TestArchivedEventStore(TestDynamoDBEventStore):
    """The archive tier's store honours the whole contract (nothing archived: it must behave exactly
    as the DynamoDB store, holes included)."""

    @pytest.fixture
    def store(self, dynamodb_client: Any, event_tables: Any, s3_client: Any) -> EventStore:
        from cairn.archive import ArchivedEventStore, S3ArchiveStore

        s3_client.create_bucket(Bucket="cairn-archive")
        return ArchivedEventStore(
            build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency, page_size=4,
            archive=S3ArchiveStore(s3_client, "cairn-archive"),
        )

    def reopen(self, store: EventStore) -> EventStore:
        from cairn.archive import ArchivedEventStore

        assert isinstance(store, ArchivedEventStore)
        return ArchivedEventStore(
            store.registry, store.client, store.events_table, store.idempotency_table, page_size=store.page_size,
            archive=store.archive,
        )
