"""Verified snapshots (issue 11) and one definition of "the state at time T" (issue 17, defect 3).

A snapshot is used only if the store still holds the event it was taken at, with the hash it
recorded; otherwise (newer than the store, another history, a state that no longer restores) it
is "no snapshot": the stream is replayed, the rejection is counted, and the snapshotter replaces
it. Run against both stores: the DynamoDB store verifies inside its one tail Query.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.commands import CommandRuntime, StateCache
from cairn.events import NewEvent
from cairn.snapshots import InMemorySnapshotStore, Snapshot, SnapshotStore
from cairn.store import ConcurrencyError, EventStore, InMemoryEventStore
from cairn.store.dynamodb import DynamoDBEventStore
from tests.budget import examples
from tests.contract.ledger import Deposit, Deposited, Ledger, Open, Withdraw, build_registry, decider

STREAM = "ledger-1"


def runtime(store: EventStore, snapshots: SnapshotStore | None = None) -> CommandRuntime[Ledger]:
    rejected: list[str] = []
    rt = CommandRuntime(
        store, decider(), snapshots, StateCache(), sleep=lambda _: None, on_snapshot_rejected=lambda s, r: rejected.append(r)
    )
    rt.rejected = rejected  # type: ignore[attr-defined]
    return rt


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: Any) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore(build_registry())
    tables = request.getfixturevalue("event_tables")
    client = request.getfixturevalue("dynamodb_client")
    return DynamoDBEventStore(build_registry(), client, tables.events, tables.idempotency, page_size=3)


def cold(store: EventStore) -> EventStore:
    """The same storage through a new instance (a cold Lambda)."""
    if isinstance(store, DynamoDBEventStore):
        return DynamoDBEventStore(store.registry, store.client, store.events_table, store.idempotency_table, page_size=3)
    return store


def seed(store: EventStore, deposits: int) -> None:
    rt = runtime(store)
    rt.handle(STREAM, Open(owner="ann"))
    for i in range(deposits):
        rt.handle(STREAM, Deposit(amount=Decimal("100"), ref=f"d{i}"))


def test_a_snapshot_newer_than_the_store_is_ignored_and_replaced(store: EventStore) -> None:
    """The issue's scenario: the table was restored to an earlier point, the bucket kept a later
    snapshot (balance 500 at version 10). Without verification the withdrawal of 400 was accepted
    against the phantom balance and stored at version 11, leaving a gap."""
    snapshots = InMemorySnapshotStore()
    seed(store, 1)  # versions 1..2, balance 100
    real = list(store.read(STREAM))
    phantom = Snapshot(STREAM, 10, 1, {"opened": True, "owner": "ann", "currency": "USD", "balance": "500", "entries": 5}, "", "", hash=real[-1].hash)
    snapshots.put(phantom)
    rt = runtime(cold(store), snapshots)
    from tests.contract.ledger import LedgerError

    with pytest.raises(LedgerError):
        rt.handle(STREAM, Withdraw(amount=Decimal("400"), ref="w"))  # judged on the real balance
    assert rt.rejected  # counted
    result = rt.handle(STREAM, Withdraw(amount=Decimal("40"), ref="w2"))
    assert result.version == 3 and result.state.balance == Decimal("60")
    assert [e.version for e in store.read(STREAM)] == [1, 2, 3]
    replaced = runtime(cold(store), snapshots).take_snapshot(STREAM)
    assert replaced is not None and replaced.version == 3
    assert snapshots.get(STREAM, 1).version == 3  # the phantom is gone
    fresh = runtime(cold(store), snapshots)
    assert fresh.load(STREAM)[1].balance == Decimal("60") and not fresh.rejected


def test_a_snapshot_of_another_history_is_ignored(store: EventStore) -> None:
    snapshots = InMemorySnapshotStore()
    seed(store, 3)
    events = list(store.read(STREAM))
    forged = Snapshot(STREAM, 3, 1, {"opened": True, "owner": "ann", "currency": "USD", "balance": "999", "entries": 9}, "", "", hash=events[1].hash)
    snapshots.put(forged)
    rt = runtime(cold(store), snapshots)
    assert rt.load(STREAM) == (4, rt.decider.fold(rt.decider.initial_state(), [e.data for e in events]))
    assert len(rt.rejected) == 1
    assert rt.state_at(STREAM, up_to_version=4)[1].balance == Decimal("300")
    assert len(rt.rejected) == 2


@pytest.mark.parametrize(
    "state",
    [
        {"opened": True, "owner": "ann", "balance": "not money"},  # a state model changed without a bump
        {"unexpected": 1},
        "a string",
    ],
)
def test_a_snapshot_that_does_not_restore_is_no_snapshot(store: EventStore, state: Any) -> None:
    snapshots = InMemorySnapshotStore()
    seed(store, 2)
    head = list(store.read(STREAM))[-1]
    snapshots.put(Snapshot(STREAM, 3, 1, state, head.occurred_at, "", hash=head.hash))
    rt = runtime(cold(store), snapshots)
    assert rt.load(STREAM)[1].balance == Decimal("200")
    assert rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="x")).version == 4
    assert rt.state_at(STREAM, up_to_version=3)[1].balance == Decimal("200")
    snapshot = rt.take_snapshot(STREAM)  # never built on the broken one; replaces it
    assert snapshot is not None and snapshot.version == 4 and snapshot.state["balance"] == "201"
    assert snapshots.get(STREAM, 1).state["balance"] == "201"


def test_a_snapshot_without_a_hash_is_not_used(store: EventStore) -> None:
    snapshots = InMemorySnapshotStore()
    seed(store, 2)
    snapshots.put(Snapshot(STREAM, 3, 1, {"opened": True, "owner": "ann", "currency": "USD", "balance": "5", "entries": 1}, "", ""))
    rt = runtime(cold(store), snapshots)
    assert rt.load(STREAM)[1].balance == Decimal("200") and rt.rejected


def test_a_good_snapshot_is_used_and_records_the_hash(store: EventStore) -> None:
    snapshots = InMemorySnapshotStore()
    seed(store, 4)
    rt = runtime(store, snapshots)
    taken = rt.take_snapshot(STREAM)
    head = list(store.read(STREAM))[-1]
    assert taken is not None and (taken.version, taken.hash) == (5, head.hash)
    loader = runtime(cold(store), snapshots)
    assert loader.load(STREAM)[1].balance == Decimal("400") and not loader.rejected


def test_the_default_hook_emits_a_metric(capsys: Any) -> None:
    import json

    from cairn.commands.runtime import emit_snapshot_rejected

    emit_snapshot_rejected("order-1", "hash differs")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["SnapshotsRejected"] == [1.0] or line["SnapshotsRejected"] == 1.0
    assert line["aggregate"] == "order"


# -- the state at time T (issue 17, defect 3) -----------------------------------------------------------
_TIMES = [f"2026-01-01T00:00:00.{ms:03d}Z" for ms in range(0, 1000, 100)]


def test_the_issue_example() -> None:
    """.000, .100, .500, .300 and at=.400: v2 without a snapshot, v4 with one (before the fix)."""
    store = InMemoryEventStore(build_registry())
    times = ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.100Z", "2026-01-01T00:00:00.500Z", "2026-01-01T00:00:00.300Z"]
    for version, at in enumerate(times):
        store.append(STREAM, [NewEvent(data=Deposited(amount=Decimal("1"), ref=str(version), currency="USD"), occurred_at=at)], version)
    snapshots = InMemorySnapshotStore()
    with_snapshot = runtime(store, snapshots)
    with_snapshot.take_snapshot(STREAM)
    at = "2026-01-01T00:00:00.400Z"
    assert runtime(store).state_at(STREAM, up_to_time=at)[0] == with_snapshot.state_at(STREAM, up_to_time=at)[0] == 2


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.sampled_from(_TIMES), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=8),
    st.sampled_from(_TIMES),
)
def test_the_state_at_a_time_is_the_same_with_or_without_a_snapshot(times: list[str], snap_at: int, at: str) -> None:
    store = InMemoryEventStore(build_registry())
    for version, when in enumerate(times):
        store.append(STREAM, [NewEvent(data=Deposited(amount=Decimal(version + 1), ref=str(version), currency="USD"), occurred_at=when)], version)
    stored = [e.occurred_at for e in store.read(STREAM)]
    assert stored == sorted(stored)  # the store never writes an occurred_at below the previous one
    snapshots = InMemorySnapshotStore()
    snap_version = min(snap_at, len(times))
    if snap_version:
        prefix = list(store.read(STREAM, up_to_version=snap_version))
        state = decider().fold(decider().initial_state(), [e.data for e in prefix])
        snapshots.put(Snapshot(STREAM, snap_version, 1, decider().state_to_dict(state), prefix[-1].occurred_at, "", hash=prefix[-1].hash))

    def answer(rt: CommandRuntime[Ledger]) -> Any:
        try:
            version, state, last_at = rt.state_at(STREAM, up_to_time=at)
        except LookupError:
            return None
        return version, state.balance, last_at

    expected_version = sum(1 for t in stored if t <= at)
    plain, snapped = answer(runtime(store)), answer(runtime(store, snapshots))
    assert plain == snapped
    assert (plain[0] if plain else 0) == expected_version


def test_a_cold_writer_continues_the_clock(store: EventStore) -> None:
    from tests.contract.ledger import LedgerOpened

    store.append(STREAM, [NewEvent(data=LedgerOpened(owner="ann"), occurred_at="2999-01-01T00:00:00.000Z")], 0)
    runtime(cold(store)).handle(STREAM, Deposit(amount=Decimal("1"), ref="b"))
    assert [e.occurred_at for e in store.read(STREAM)] == ["2999-01-01T00:00:00.000Z"] * 2


def test_no_gap_through_the_runtime_with_if_match_beyond_the_head(store: EventStore) -> None:
    seed(store, 1)
    rt = runtime(cold(store))
    with pytest.raises(ConcurrencyError) as info:
        rt.handle(STREAM, Deposit(amount=Decimal("1"), ref="x"), expected_version=9)
    assert info.value.current_version == 2
    assert [e.version for e in store.read(STREAM)] == [1, 2]


def test_snapshot_fields_round_trip() -> None:
    snap = Snapshot(STREAM, 1, 1, {}, "", "", hash="ab" * 32)
    assert Snapshot.from_dict(snap.to_dict()) == snap
    assert Snapshot.from_dict({k: v for k, v in snap.to_dict().items() if k != "hash"}) == dataclasses.replace(snap, hash="")
