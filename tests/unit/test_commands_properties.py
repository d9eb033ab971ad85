"""Hypothesis properties of the fold: a snapshot + its tail always equals the full fold."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cairn.commands import CommandRuntime
from cairn.events import NewEvent
from cairn.snapshots import InMemorySnapshotStore
from cairn.store import InMemoryEventStore
from tests.budget import examples
from tests.contract.ledger import (
    Deposited,
    LedgerOpened,
    Noted,
    Withdrawn,
    build_registry,
    decider,
)

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2)
refs = st.text(min_size=1, max_size=12)
events = st.one_of(
    st.builds(Deposited, amount=amounts, ref=refs, currency=st.just("USD")),
    st.builds(Withdrawn, amount=amounts, ref=refs),
    st.builds(Noted, text=st.text(max_size=30)),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[BaseModel], list[int], int]:
    """(events, batch sizes, snapshot point): events after an opening, appended in batches."""
    body = draw(st.lists(events, max_size=40))
    history: list[BaseModel] = [LedgerOpened(owner=draw(st.text(min_size=1, max_size=8))), *body]
    sizes: list[int] = []
    left = len(history)
    while left:
        size = draw(st.integers(min_value=1, max_value=min(left, 7)))
        sizes.append(size)
        left -= size
    cut = draw(st.integers(min_value=0, max_value=len(sizes)))  # snapshot after this many batches
    return history, sizes, cut


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_snapshot_plus_tail_equals_full_fold(case: tuple[list[BaseModel], list[int], int]) -> None:
    history, sizes, cut = case
    store = InMemoryEventStore(build_registry())
    snapshots = InMemorySnapshotStore()
    with_snapshots = CommandRuntime(store, decider(), snapshots)
    version = 0
    for n, size in enumerate(sizes):
        if n == cut:
            with_snapshots.take_snapshot("s")
        batch = history[version : version + size]
        store.append("s", [NewEvent(data=e) for e in batch], version)
        version += size
    if cut == len(sizes):
        with_snapshots.take_snapshot("s")

    full_fold = decider().fold(decider().initial_state(), history)
    assert CommandRuntime(store, decider()).load("s") == (len(history), full_fold)
    assert with_snapshots.load("s") == (len(history), full_fold)
    stored = snapshots.get("s", 1)
    if stored is None:
        assert cut == 0  # taken on the empty stream: nothing to store
        return
    assert stored.version == sum(sizes[:cut])
    # the snapshot itself is exactly the fold of its prefix, through a JSON round trip
    prefix = decider().fold(decider().initial_state(), history[: stored.version])
    assert decider().restore(stored.state) == prefix


@settings(max_examples=examples(100), deadline=None)
@given(histories(), st.data())
def test_time_travel_matches_prefix_fold(case: tuple[list[BaseModel], list[int], int], data: st.DataObject) -> None:
    history, _, _ = case
    store = InMemoryEventStore(build_registry())
    snapshots = InMemorySnapshotStore()
    rt = CommandRuntime(store, decider(), snapshots)
    for i, event in enumerate(history):
        store.append("s", [NewEvent(data=event, occurred_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z")], i)
    rt.take_snapshot("s")  # at the head: must never leak into an earlier point
    point = data.draw(st.integers(min_value=1, max_value=len(history)))
    expected = decider().fold(decider().initial_state(), history[:point])
    assert rt.state_at("s", up_to_version=point)[:2] == (point, expected)
    at = f"2026-01-01T00:{(point - 1) // 60:02d}:{(point - 1) % 60:02d}.500Z"
    assert rt.state_at("s", up_to_time=at)[:2] == (point, expected)
