"""CommandRuntime: load (cache | snapshot + tail) -> decide -> conditional append, retries,
If-Match, idempotency (including a crash after the write), stale caches, time travel."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from cairn.commands import (
    CommandContext,
    CommandRuntime,
    RetriesExhaustedError,
    StateCache,
    StreamNotFoundError,
)
from cairn.events import EventEnvelope, NewEvent
from cairn.snapshots import InMemorySnapshotStore, Snapshot, SnapshotError, SnapshotStore
from cairn.snapshots.s3 import S3SnapshotStore
from cairn.store import (
    AppendResult,
    ConcurrencyError,
    EventStore,
    IdempotencyKeyReuseError,
    IdempotencyRecord,
    InMemoryEventStore,
)
from cairn.store.dynamodb import DynamoDBEventStore
from tests.contract.ledger import (
    Deposit,
    Deposited,
    DepositMany,
    Ledger,
    LedgerError,
    Note,
    Open,
    Withdraw,
    build_registry,
    decider,
)

STREAM = "ledger-1"


def answer(state: Ledger, version: int) -> dict[str, Any]:
    return {"version": version, "balance": str(state.balance)}


class SpyStore(EventStore):
    """Wraps a store and records each call (which methods, which read ranges)."""

    def __init__(self, inner: EventStore):
        super().__init__(inner.registry)
        self.inner = inner
        self.calls: list[tuple[str, Any]] = []

    def append(self, stream_id: str, events: Sequence[NewEvent], expected_version: int, idempotency_key: str | None = None, **kw: Any) -> AppendResult:
        self.calls.append(("append", expected_version))
        return self.inner.append(stream_id, events, expected_version, idempotency_key, **kw)

    def read(self, stream_id: str, after: int = 0, up_to_version: int | None = None, up_to_time: str | None = None) -> Iterator[EventEnvelope]:
        self.calls.append(("read", after))
        return self.inner.read(stream_id, after, up_to_version, up_to_time)

    def current_version(self, stream_id: str) -> int:
        self.calls.append(("current_version", stream_id))
        return self.inner.current_version(stream_id)

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        self.calls.append(("get_idempotency_record", key))
        return self.inner.get_idempotency_record(key)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def memory() -> InMemoryEventStore:
    return InMemoryEventStore(build_registry())


def runtime(store: EventStore, snapshots: SnapshotStore | None = None, **kw: Any) -> CommandRuntime[Ledger]:
    delays: list[float] = []
    rt = CommandRuntime(store, decider(), snapshots, StateCache(), sleep=delays.append, **kw)
    rt.delays = delays  # type: ignore[attr-defined]
    return rt


def opened(store: EventStore, balance: str = "0") -> None:
    rt = runtime(store)
    rt.handle(STREAM, Open(owner="ann"))
    if Decimal(balance):
        rt.handle(STREAM, Deposit(amount=Decimal(balance), ref="seed"))


# -- the basic path ------------------------------------------------------------------------------
def test_commands_append_events_and_fold_state(memory: InMemoryEventStore) -> None:
    rt = runtime(memory)
    ctx = CommandContext(correlation_id="corr", causation_id="cause", actor="ann", command_id="cmd-1")
    r1 = rt.handle(STREAM, Open(owner="ann"), context=ctx)
    r2 = rt.handle(STREAM, DepositMany(amounts=(Decimal("1.50"), Decimal("2.50")), ref="m"))
    assert (r1.version, r2.version) == (1, 3)
    assert r2.state == Ledger(opened=True, owner="ann", balance=Decimal("4.00"), entries=2)
    assert [e.version for e in r2.events] == [2, 3]
    first = next(memory.read(STREAM))
    assert (first.metadata.correlation_id, first.metadata.causation_id) == ("corr", "cause")
    assert (first.metadata.actor, first.metadata.command_id) == ("ann", "cmd-1")
    assert rt.load(STREAM) == (3, r2.state)


def test_domain_errors_propagate(memory: InMemoryEventStore) -> None:
    rt = runtime(memory)
    with pytest.raises(LedgerError, match="not opened"):
        rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="x"))
    assert memory.current_version(STREAM) == 0


def test_no_events_means_no_write(memory: InMemoryEventStore) -> None:
    opened(memory)
    spy = SpyStore(memory)
    rt = runtime(spy)
    rt.decider = dataclasses.replace(rt.decider, decide=lambda c, s: [])
    result = rt.handle(STREAM, Note(text="nothing"), answer=answer)
    assert result.version == 1 and result.events == () and result.answer == {"version": 1, "balance": "0"}
    assert "append" not in spy.names()


# -- warm path and calls per command against moto --------------------------------------------------
@pytest.fixture
def aws_runtime(dynamodb_client: Any, event_tables: Any, s3_client: Any, snapshot_bucket: str) -> CommandRuntime[Ledger]:
    store = DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency)
    return runtime(store, S3SnapshotStore(s3_client, snapshot_bucket))


def test_warm_command_is_one_call_and_cold_is_three(aws_runtime: CommandRuntime[Ledger], call_log: Any) -> None:
    rt = aws_runtime
    rt.handle(STREAM, Open(owner="ann"))
    for i in range(5):
        rt.handle(STREAM, Deposit(amount=Decimal("1"), ref=f"d{i}"))
    rt.take_snapshot(STREAM)
    rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="tail"))
    call_log.attach(rt.store.client, rt.snapshots.client)  # type: ignore[union-attr]
    rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="warm"))
    assert call_log.calls == ["PutItem"]
    call_log.clear()
    rt.cache.clear()  # a new Lambda instance
    result = rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="cold"))
    assert call_log.calls == ["GetObject", "Query", "PutItem"]
    assert result.version == 9 and result.state.balance == Decimal("8")


# -- conflicts -------------------------------------------------------------------------------------
def test_conflict_reads_only_the_tail_and_re_decides(memory: InMemoryEventStore) -> None:
    opened(memory, "10")
    spy = SpyStore(memory)
    a, b = runtime(spy), runtime(memory)
    a.current(STREAM)  # warm, version 2
    b.handle(STREAM, Deposit(amount=Decimal("5"), ref="b"))  # stream at 3: a's cache is stale
    spy.calls.clear()
    result = a.handle(STREAM, Withdraw(amount=Decimal("3"), ref="a"), answer=answer)
    assert result.retries == 1 and result.version == 4
    assert result.answer == {"version": 4, "balance": "12"}  # decided again on 15, not on 10
    assert spy.calls == [("append", 2), ("read", 2), ("append", 3)]
    assert len(a.delays) == 1 and 0 <= a.delays[0] <= a.base_delay  # type: ignore[attr-defined]


def test_stale_cache_rejection_is_rechecked_on_fresh_state(memory: InMemoryEventStore) -> None:
    opened(memory)
    spy = SpyStore(memory)
    a, b = runtime(spy), runtime(memory)
    a.current(STREAM)  # cached balance 0
    b.handle(STREAM, Deposit(amount=Decimal("50"), ref="b"))
    spy.calls.clear()
    result = a.handle(STREAM, Withdraw(amount=Decimal("30"), ref="a"))  # 30 > 0 on the stale state
    assert result.version == 3 and result.state.balance == Decimal("20")
    assert spy.calls == [("read", 1), ("append", 2)]
    with pytest.raises(LedgerError, match="insufficient"):  # a real rejection stays one
        a.handle(STREAM, Withdraw(amount=Decimal("30"), ref="a2"))


def test_rejection_on_fresh_state_reads_nothing_more(memory: InMemoryEventStore) -> None:
    opened(memory)
    spy = SpyStore(memory)
    rt = runtime(spy)
    with pytest.raises(LedgerError):
        rt.handle(STREAM, Withdraw(amount=Decimal("1"), ref="x"))
    assert spy.names() == ["read"]  # the cold load; no second read, no write


class AlwaysConflicts(InMemoryEventStore):
    def append(self, stream_id: str, events: Sequence[NewEvent], expected_version: int, *a: Any, **kw: Any) -> AppendResult:
        raise ConcurrencyError(stream_id, expected_version, expected_version + 1)


def test_retries_are_bounded_with_jittered_backoff() -> None:
    store = AlwaysConflicts(build_registry())
    rt = runtime(store, max_retries=4, base_delay=0.01, max_delay=0.03)
    rt.cache.put(STREAM, 1, Ledger(opened=True, owner="ann"))
    with pytest.raises(RetriesExhaustedError) as info:
        rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="x"))
    assert isinstance(info.value, ConcurrencyError)
    assert len(rt.delays) == 4  # type: ignore[attr-defined]
    caps = [0.01, 0.02, 0.03, 0.03]
    assert all(0 <= d <= cap for d, cap in zip(rt.delays, caps, strict=True))  # type: ignore[attr-defined]
    assert rt.cache.get(STREAM) is None


# -- If-Match ----------------------------------------------------------------------------------------
def test_if_match_conflict_is_never_retried(memory: InMemoryEventStore) -> None:
    opened(memory, "10")
    spy = SpyStore(memory)
    a, b = runtime(spy), runtime(memory)
    a.current(STREAM)  # cached at 2
    b.handle(STREAM, Deposit(amount=Decimal("1"), ref="b"))  # now 3
    spy.calls.clear()
    with pytest.raises(ConcurrencyError) as info:
        a.handle(STREAM, Deposit(amount=Decimal("1"), ref="a"), expected_version=2)
    assert info.value.current_version == 3 and info.value.expected_version == 2
    assert spy.names().count("append") == 1
    assert a.delays == []  # type: ignore[attr-defined]
    assert a.cache.get(STREAM) is None
    assert memory.current_version(STREAM) == 3


def test_if_match_on_an_older_version_fails_without_writing(memory: InMemoryEventStore) -> None:
    opened(memory, "10")
    spy = SpyStore(memory)
    rt = runtime(spy)
    with pytest.raises(ConcurrencyError) as info:
        rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="x"), expected_version=1)
    assert info.value.current_version == 2
    assert "append" not in spy.names()


def test_if_match_ahead_of_the_cache_catches_up(memory: InMemoryEventStore) -> None:
    opened(memory, "10")
    a, b = runtime(memory), runtime(memory)
    a.current(STREAM)  # cached at 2
    b.handle(STREAM, Deposit(amount=Decimal("1"), ref="b"))  # the client saw version 3
    result = a.handle(STREAM, Deposit(amount=Decimal("1"), ref="a"), expected_version=3)
    assert result.version == 4 and result.retries == 0


# -- idempotency -------------------------------------------------------------------------------------
def test_idempotent_repeat_returns_the_first_answer(memory: InMemoryEventStore) -> None:
    opened(memory, "10")
    rt = runtime(memory)
    first = rt.handle(STREAM, Withdraw(amount=Decimal("10"), ref="w"), idempotency_key="k1", fingerprint="f", answer=answer)
    assert first.answer == {"version": 3, "balance": "0"} and not first.replayed
    # the repeat would now be rejected (balance 0): the marker answers instead
    repeat = runtime(memory).handle(
        STREAM, Withdraw(amount=Decimal("10"), ref="w"), idempotency_key="k1", fingerprint="f", answer=answer
    )
    assert repeat.replayed and repeat.answer == first.answer and repeat.version == 3 and repeat.state is None
    # the repeat decided on fresh state still appends nothing
    rt.handle(STREAM, Deposit(amount=Decimal("5"), ref="d"))
    again = rt.handle(STREAM, Withdraw(amount=Decimal("10"), ref="w"), idempotency_key="k1", fingerprint="f", answer=answer)
    assert again.replayed and again.answer == first.answer
    assert memory.current_version(STREAM) == 4
    with pytest.raises(IdempotencyKeyReuseError):
        rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="other"), idempotency_key="k1", fingerprint="g", answer=answer)
    assert memory.current_version(STREAM) == 4


def test_if_match_repeat_of_a_succeeded_command_replays(memory: InMemoryEventStore) -> None:
    opened(memory)
    rt = runtime(memory)
    first = rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="d"), expected_version=1, idempotency_key="k", fingerprint="f", answer=answer)
    repeat = runtime(memory).handle(
        STREAM, Deposit(amount=Decimal("1"), ref="d"), expected_version=1, idempotency_key="k", fingerprint="f", answer=answer
    )
    assert repeat.replayed and repeat.answer == first.answer


def test_crash_after_the_transaction_then_retry_returns_the_first_answer(
    dynamodb_client: Any, event_tables: Any
) -> None:
    """The write commits, then the process dies before answering (the response never reaches
    the handler). The client retries with the same key: the first answer, nothing appended."""
    store = DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency)
    opened(store, "10")
    crashes: list[str] = []

    def crash_after_commit(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if not crashes and http_response.status_code == 200:
            crashes.append(model.name)
            raise RuntimeError("instance died after the write")

    dynamodb_client.meta.events.register("after-call.dynamodb.TransactWriteItems", crash_after_commit)
    rt = runtime(store)
    rt.current(STREAM)
    command = Withdraw(amount=Decimal("4"), ref="w1")
    with pytest.raises(RuntimeError, match="died"):
        rt.handle(STREAM, command, idempotency_key="key-1", fingerprint="fp", answer=answer)
    assert crashes == ["TransactWriteItems"]
    assert store.current_version(STREAM) == 3  # it did commit
    assert rt.cache.get(STREAM) is None  # unknown outcome: the cache is dropped
    for retry_runtime in (rt, runtime(store)):  # same instance, or another one
        retry = retry_runtime.handle(STREAM, command, idempotency_key="key-1", fingerprint="fp", answer=answer)
        assert retry.replayed
        assert retry.answer == {"version": 3, "balance": "6"}
    assert [e.data.ref for e in store.read(STREAM) if hasattr(e.data, "ref")] == ["seed", "w1"]


# -- snapshots ---------------------------------------------------------------------------------------
def test_load_uses_snapshot_and_reads_only_the_tail(memory: InMemoryEventStore) -> None:
    snapshots = InMemorySnapshotStore()
    writer = runtime(memory, snapshots)
    writer.handle(STREAM, Open(owner="ann"))
    for i in range(10):
        writer.handle(STREAM, Deposit(amount=Decimal("1"), ref=str(i)))
    taken = writer.take_snapshot(STREAM)
    assert taken is not None and taken.version == 11
    writer.handle(STREAM, Deposit(amount=Decimal("1"), ref="tail"))
    spy = SpyStore(memory)
    version, state = runtime(spy, snapshots).load(STREAM)
    assert spy.calls == [("read", 10)]  # one read, starting AT the snapshot's event (its hash is checked)
    assert (version, state) == runtime(memory).load(STREAM)
    assert state.balance == Decimal("11")


class BrokenSnapshots(SnapshotStore):
    def get(self, stream_id: str, state_schema_version: int) -> Snapshot | None:
        raise SnapshotError("S3 is down")

    def put(self, snapshot: Snapshot, *, replace: bool = False) -> None:
        raise SnapshotError("S3 is down")


def test_broken_snapshots_fall_back_to_replay(memory: InMemoryEventStore) -> None:
    opened(memory, "7")
    rt = runtime(memory, BrokenSnapshots())
    assert rt.load(STREAM)[1].balance == Decimal("7")
    assert rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="x")).version == 3


def test_snapshot_of_another_state_version_is_not_used(memory: InMemoryEventStore) -> None:
    snapshots = InMemorySnapshotStore()
    opened(memory, "7")
    bogus = Snapshot(STREAM, 2, 2, {"opened": True, "owner": "evil", "balance": "999", "entries": 1}, "", "")
    snapshots.put(bogus)  # written by a newer state model
    version, state = runtime(memory, snapshots).load(STREAM)
    assert (version, state.owner, state.balance) == (2, "ann", Decimal("7"))


def test_take_snapshot_edge_cases(memory: InMemoryEventStore) -> None:
    snapshots = InMemorySnapshotStore()
    rt = runtime(memory, snapshots)
    assert rt.take_snapshot(STREAM) is None  # empty stream
    opened(memory, "3")
    first = rt.take_snapshot(STREAM)
    assert first is not None and first.version == 2 and first.state["balance"] == "3"
    assert rt.take_snapshot(STREAM) == first  # nothing new: the same snapshot, no write
    with pytest.raises(SnapshotError):
        runtime(memory).take_snapshot(STREAM)


# -- time travel --------------------------------------------------------------------------------------
def test_state_at_version_and_time(memory: InMemoryEventStore) -> None:
    snapshots = InMemorySnapshotStore()
    for day, event in enumerate(
        [Deposited(amount=Decimal(n), ref=str(n), currency="USD") for n in (1, 2, 4, 8)], start=2
    ):
        memory.append(STREAM, [NewEvent(data=event, occurred_at=f"2026-03-0{day}T00:00:00.000Z")], day - 2)
    rt = runtime(memory, snapshots)
    rt.take_snapshot(STREAM)  # at version 4: must not be used for earlier points
    assert rt.state_at(STREAM, up_to_version=2)[:2] == (2, Ledger(balance=Decimal("3"), entries=2))
    version, state, at = rt.state_at(STREAM, up_to_time="2026-03-04T12:00:00Z")
    assert (version, state.balance, at) == (3, Decimal("7"), "2026-03-04T00:00:00.000Z")
    assert rt.state_at(STREAM)[1].balance == Decimal("15")
    with pytest.raises(StreamNotFoundError):
        rt.state_at(STREAM, up_to_time="2026-01-01T00:00:00Z")
    with pytest.raises(StreamNotFoundError):
        rt.state_at("ledger-none")


def test_current_honours_min_version(memory: InMemoryEventStore) -> None:
    opened(memory, "1")
    a, b = runtime(memory), runtime(memory)
    assert a.current(STREAM)[0] == 2
    b.handle(STREAM, Deposit(amount=Decimal("1"), ref="b"))
    assert a.current(STREAM)[0] == 2  # cached is fine when nothing newer is asked for
    assert a.current(STREAM, min_version=3)[0] == 3


def test_answer_mapping_is_kept(memory: InMemoryEventStore) -> None:
    opened(memory)
    result = runtime(memory).handle(STREAM, Deposit(amount=Decimal("2"), ref="x"), answer=answer)
    assert isinstance(result.answer, Mapping) and result.answer["balance"] == "2"
