"""16+ threads race through CommandRuntime on one stream: nothing lost, nothing duplicated.

Each thread is its own "Lambda instance" (its own runtime and cache) sharing one store. Mixed
commands: single deposits (PutItem), multi-event deposits (TransactWriteItems), idempotent
commands whose key is sent twice (marker in the same transaction). Checked afterwards:
versions are exactly 1..N, every acknowledged command's events are present exactly once, no
event exists that no acknowledged command produced, the balance is the sum.

DynamoDB on in-process moto runs through ``SerializedClient``: moto does not make a conditional
write atomic under concurrent requests (proven in test_store_moto_atomicity.py), so the double
puts one lock around each call, giving the per-item atomicity DynamoDB itself guarantees. The
runtime and store code paths are unchanged; threads still interleave between calls (load,
decide, append, conflict, catch-up), which is where the races this test is about happen.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from cairn.commands import CommandRuntime, StateCache
from cairn.store import EventStore, InMemoryEventStore
from cairn.store.dynamodb import DynamoDBEventStore
from tests.contract.ledger import Deposit, Deposited, DepositMany, Open, build_registry, decider

THREADS = 16
COMMANDS_PER_THREAD = 6
STREAM = "ledger-race"


class SerializedClient:
    """Test double: one lock around every call into in-process moto (see module docstring)."""

    def __init__(self, client: Any):
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "meta" or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def slow_decider() -> Any:
    """The ledger decider, with decide taking a moment (as real work does), so threads that
    loaded the same version really do meet at the conditional write."""
    base = decider()

    def decide(command: Any, state: Any) -> Any:
        time.sleep(0.0002)
        return base.decide(command, state)

    return dataclasses.replace(base, decide=decide)


def race(store: EventStore) -> None:
    CommandRuntime(store, decider()).handle(STREAM, Open(owner="race"))
    barrier = threading.Barrier(THREADS)
    acknowledged: list[tuple[str, Decimal, int]] = []  # (ref, amount, events) per success
    replays: list[str] = []
    retries: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        rt = CommandRuntime(store, slow_decider(), None, StateCache(), max_retries=500, base_delay=0.0005, max_delay=0.005)
        barrier.wait()
        for i in range(COMMANDS_PER_THREAD):
            ref = f"t{n}-c{i}"
            try:
                if i % 3 == 0:
                    command: Any = DepositMany(amounts=(Decimal("1"), Decimal("2"), Decimal("3")), ref=ref)
                    amount, count = Decimal("6"), 3
                else:
                    command, amount, count = Deposit(amount=Decimal(n + 1), ref=ref), Decimal(n + 1), 1
                if i % 3 == 2:  # idempotent, and the client sends it twice
                    for attempt in range(2):
                        result = rt.handle(STREAM, command, idempotency_key=ref, fingerprint=ref)
                        retries.append(result.retries)
                        if attempt == 0:
                            assert not result.replayed
                            with lock:
                                acknowledged.append((ref, amount, count))
                        else:
                            assert result.replayed
                            with lock:
                                replays.append(ref)
                        rt.cache.clear()  # the repeat lands on a cold instance
                else:
                    retries.append(rt.handle(STREAM, command).retries)
                    with lock:
                        acknowledged.append((ref, amount, count))
            except BaseException as exc:  # pragma: no cover - reported below
                with lock:
                    failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert sum(retries) > 0  # the writers did collide (typically dozens of times)
    assert len(acknowledged) == THREADS * COMMANDS_PER_THREAD
    assert len(replays) == THREADS * (COMMANDS_PER_THREAD // 3)

    events = list(store.read(STREAM))
    total_events = 1 + sum(count for _, _, count in acknowledged)
    assert [e.version for e in events] == list(range(1, total_events + 1))
    stored_refs = Counter(e.data.ref.split("#")[0] for e in events if isinstance(e.data, Deposited))
    expected_refs = Counter({ref: count for ref, _, count in acknowledged})
    assert stored_refs == expected_refs  # each acknowledged command exactly once, nothing else
    balance = CommandRuntime(store, decider()).load(STREAM)[1].balance
    assert balance == sum(amount for _, amount, _ in acknowledged)


def test_race_on_the_memory_store() -> None:
    race(InMemoryEventStore(build_registry()))


@pytest.mark.slow
def test_race_on_dynamodb_on_moto(dynamodb_client: Any, event_tables: Any) -> None:
    store = DynamoDBEventStore(
        build_registry(), SerializedClient(dynamodb_client), event_tables.events, event_tables.idempotency
    )
    race(store)
