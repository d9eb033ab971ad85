"""Does a command get slower as its stream grows? Cost of a command on streams of 10 to 100,000
events, with the snapshot policy on (docs/scale.md, question 1).

What is measured, per stream length ``L`` (one account stream grown in place, so one run):

- **calls**: AWS round trips of one command through the real adapters (``CommandRuntime`` on
  ``DynamoDBEventStore`` + ``S3SnapshotStore``, in-process moto), counted at botocore's
  ``_make_api_call`` (every client, every call). ``cold``: a fresh Lambda instance (no cached
  state: snapshot GET + tail Query + conditional PutItem); ``warm``: the state is cached (PutItem).
- **units**: DynamoDB request units from the sizes of the items the calls touched, as DynamoDB
  charges them (docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations):
  a strongly consistent Query page costs 1 RCU per 4 KB of the *whole* items it returned, summed
  per page and rounded up (the fold's ProjectionExpression does not reduce it); a page that
  returns nothing is counted as 1 RCU (assumption: the minimum read charge); a write costs 1 WCU
  per KB of each item, rounded up per item, twice inside a transaction.
- **time**: the cold command on the in-memory store (no I/O: what the code itself costs as the
  stream grows), and on moto (reported, not judged: moto's Query walks the whole partition, so
  its time grows with ``L`` where DynamoDB's B-tree seek does not).

The snapshot policy is the deployed one (``SNAPSHOT_EVERY`` account=100 in
cdk_app/stacks/cairn_stack.py): the snapshotter has taken a snapshot at the last multiple of 100
(it runs off the command path), so the tail a cold command reads is ``L mod 100`` events. The
worst phase of the cycle (a 99-event tail) is measured too, against a 99-event stream.

Bounded: the streams are seeded with BatchWriteItem (25 items a call, no conditions: moto's
TransactWriteItems deep-copies tables); only item sizes are kept (an ``array``), items are
generated a chunk at a time. 100,000 events hold ~0.3 GB in moto; the run takes minutes.
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
import uuid
from array import array
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from moto import mock_aws

GOALS = {"cold_units_ratio_100k": "<= 1.5", "cold_calls_ratio_100k": "<= 1.5"}

LENGTHS = (10, 1_000, 10_000, 100_000)
SNAPSHOT_EVERY = 100  # account=100 in cdk_app/stacks/cairn_stack.py (asserted by tests/infrastructure)
EVENTS_TABLE, IDEMPOTENCY_TABLE, BUCKET = "bench-len-events", "bench-len-idempotency", "bench-len-snapshots"
MEMORY_REPEATS = 5
MOTO_REPEATS = 2
_LABEL = {10: "10", 1_000: "1k", 10_000: "10k", 100_000: "100k"}


def label(length: int) -> str:
    return _LABEL.get(length, str(length))


@contextlib.contextmanager
def recording_calls() -> Iterator[list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """Every botocore call in this process while the block runs: (operation, params, response)."""
    from botocore.client import BaseClient

    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def recorded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        try:
            response = original(self, operation_name, api_params)
        except Exception as exc:  # a 404 on the snapshot GET is still a round trip
            calls.append((operation_name, api_params, getattr(exc, "response", {}) or {}))
            raise
        calls.append((operation_name, api_params, response))
        return response

    BaseClient._make_api_call = recorded  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def _flat_size(item: dict[str, Any]) -> int:
    from cairn.store.base import item_size
    from cairn.store.dynamodb import _flat

    return item_size(_flat(item))


def units(calls: list[tuple[str, dict[str, Any], dict[str, Any]]], sizes: dict[str, array]) -> tuple[float, float]:
    """(RCU, WCU) of the DynamoDB calls, from the whole items' sizes (see the module docstring)."""
    rcu = wcu = 0.0
    for operation, params, response in calls:
        if operation == "Query":
            stream = params["ExpressionAttributeValues"][":s"]["S"]
            total = sum(sizes[stream][int(item["version"]["N"]) - 1] for item in response.get("Items", ()))
            rcu += max(1, -(-total // 4096))
        elif operation == "GetItem":
            item = response.get("Item")
            rcu += max(1, -(-_flat_size(item) // 4096)) if item else 1
        elif operation == "PutItem":
            wcu += -(-_flat_size(params["Item"]) // 1024)
        elif operation == "TransactWriteItems":
            wcu += sum(2 * -(-_flat_size(op["Put"]["Item"]) // 1024) for op in params["TransactItems"])
    return rcu, wcu


class Seeder:
    """Grows one account stream with realistic deposits/withdrawals, a chunk at a time."""

    def __init__(self, store: Any, stream_id: str, rng: random.Random):
        from accounts import domain

        self.domain = domain
        self.store = store
        self.stream_id = stream_id
        self.rng = rng
        self.balance = Decimal("0.00")

    def events(self, first_version: int, count: int) -> list[Any]:
        d, rng = self.domain, self.rng
        out: list[Any] = []
        for version in range(first_version, first_version + count):
            if version == 1:
                out.append(d.AccountOpened(account_id=self.stream_id, owner_id="alice", currency="USD"))
                continue
            amount = Decimal(rng.randint(1, 50_000)) / 100
            if rng.random() < 0.4 and amount <= self.balance:
                out.append(d.MoneyWithdrawn(amount=amount))
                self.balance -= amount
            else:
                out.append(d.MoneyDeposited(amount=amount))
                self.balance += amount
        return out

    def encoded(self, first_version: int, count: int) -> list[Any]:
        """The events as the store encodes them, each with its own command metadata."""
        from cairn.events import EventMetadata, NewEvent

        rng = self.rng
        out = []
        for offset, event in enumerate(self.events(first_version, count)):
            meta = EventMetadata(
                correlation_id=str(uuid.UUID(int=rng.getrandbits(128))),
                actor="alice",
                command_id=str(uuid.UUID(int=rng.getrandbits(128))),
            )
            out.extend(self.store.encode_batch(self.stream_id, [NewEvent(data=event, metadata=meta)], first_version + offset - 1))
        return out


def seed_moto(client: Any, seeder: Seeder, sizes: array, up_to: int) -> None:
    """BatchWriteItem the stream from its current length to ``up_to`` events (no conditions)."""
    from cairn.store.dynamodb import item_from_encoded

    while len(sizes) < up_to:
        count = min(25, up_to - len(sizes))
        encoded = seeder.encoded(len(sizes) + 1, count)
        request = {EVENTS_TABLE: [{"PutRequest": {"Item": item_from_encoded(seeder.stream_id, e)}} for e in encoded]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        sizes.extend(e.item_size(seeder.stream_id) for e in encoded)


def seed_memory(store: Any, seeder: Seeder, up_to: int) -> None:
    from cairn.events import NewEvent

    while (current := store.current_version(seeder.stream_id)) < up_to:
        count = min(99, up_to - current)
        store.append(seeder.stream_id, [NewEvent(data=e) for e in seeder.events(current + 1, count)], current)


def _policy_snapshot(runtime: Any, stream_id: str, length: int) -> None:
    """What the snapshotter would have left: a snapshot at the last multiple of SNAPSHOT_EVERY."""
    if length >= SNAPSHOT_EVERY and length % SNAPSHOT_EVERY == 0:
        snapshot = runtime.take_snapshot(stream_id)
        assert snapshot is not None and snapshot.version == length


def _command(domain: Any) -> Any:
    return domain.Deposit(amount=Decimal("1.00"))


def measure_moto(lengths: tuple[int, ...], rng: random.Random, worst_phase: bool = True) -> dict[str, dict[int, float]]:
    """Calls, units and moto time of a cold and a warm command at each length (+ worst phase)."""
    from accounts import domain
    from accounts.app import decider, registry
    from cairn.aws import client
    from cairn.commands import CommandRuntime, StateCache
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn.store.dynamodb import DynamoDBEventStore, create_tables

    figures: dict[str, dict[int, float]] = {}
    with mock_aws():
        ddb, s3 = client("dynamodb"), client("s3")
        create_tables(ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE, stream=False)
        s3.create_bucket(Bucket=BUCKET)
        store = DynamoDBEventStore(registry, ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        runtime = CommandRuntime(store, decider, S3SnapshotStore(s3, BUCKET), StateCache())
        stream_id = f"account-{uuid.UUID(int=rng.getrandbits(128))}"
        seeder = Seeder(store, stream_id, rng)
        sizes: dict[str, array] = {stream_id: array("I")}

        def measure(key: int, stream: str, length: int) -> None:
            """Seed ``stream`` to ``length``, then cold commands (timed) and one warm command."""
            seed_moto(ddb, seeders[stream], sizes[stream], length)
            _policy_snapshot(runtime, stream, length)
            best = float("inf")
            for attempt in range(MOTO_REPEATS):
                runtime.cache.clear()  # a fresh Lambda instance
                with recording_calls() as calls:
                    started = time.perf_counter()
                    result = runtime.handle(stream, _command(domain))
                    elapsed = time.perf_counter() - started
                assert result.version == len(sizes[stream]) + 1
                sizes[stream].append(_event_size(store, stream))
                best = min(best, elapsed)
                if attempt == 0:  # the first: the tail is exactly L mod SNAPSHOT_EVERY
                    rcu, wcu = units(calls, sizes)
                    figures.setdefault("cold_calls", {})[key] = len(calls)
                    figures.setdefault("cold_rcu", {})[key] = rcu
                    figures.setdefault("cold_wcu", {})[key] = wcu
            figures.setdefault("cold_ms_moto", {})[key] = best * 1000
            with recording_calls() as calls:
                runtime.handle(stream, _command(domain))
            sizes[stream].append(_event_size(store, stream))
            rcu, wcu = units(calls, sizes)
            figures.setdefault("warm_calls", {})[key] = len(calls)
            figures.setdefault("warm_rcu", {})[key] = rcu
            figures.setdefault("warm_wcu", {})[key] = wcu

        seeders = {stream_id: seeder}
        # warm-up (lazy imports, botocore's first-call caches): not reported
        warm_id = f"account-{uuid.UUID(int=rng.getrandbits(128))}"
        seeders[warm_id] = Seeder(store, warm_id, rng)
        sizes[warm_id] = array("I")
        measure(-3, warm_id, 10)
        for length in lengths:
            measure(length, stream_id, length)
        if not worst_phase:
            return figures
        # the worst phase of the snapshot cycle: a tail of SNAPSHOT_EVERY - 1 events, on the
        # longest stream and on a stream that short (no snapshot)
        worst_long = (max(lengths) // SNAPSHOT_EVERY) * SNAPSHOT_EVERY + SNAPSHOT_EVERY - 1
        measure(-1, stream_id, worst_long)
        short_id = f"account-{uuid.UUID(int=rng.getrandbits(128))}"
        seeders[short_id] = Seeder(store, short_id, rng)
        sizes[short_id] = array("I")
        measure(-2, short_id, SNAPSHOT_EVERY - 1)
        figures["items_in_table"] = {0: float(sum(len(s) for s in sizes.values()))}
    return figures


def _event_size(store: Any, stream_id: str) -> int:
    """Size of the event item the last command wrote (read back once, outside the counted block)."""
    version = store.current_version(stream_id)
    item = store.client.get_item(
        TableName=store.events_table,
        Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}},
        ConsistentRead=True,
    )["Item"]
    return _flat_size(item)


def measure_memory(lengths: tuple[int, ...], rng: random.Random) -> dict[int, float]:
    """Best cold-command time (ms) on the in-memory store at each length: the code's own cost."""
    from accounts import domain
    from accounts.app import decider, registry
    from cairn.commands import CommandRuntime, StateCache
    from cairn.snapshots.memory import InMemorySnapshotStore
    from cairn.store.memory import InMemoryEventStore

    store = InMemoryEventStore(registry)
    runtime = CommandRuntime(store, decider, InMemorySnapshotStore(), StateCache())
    stream_id = f"account-{uuid.UUID(int=rng.getrandbits(128))}"
    seeder = Seeder(store, stream_id, rng)
    out: dict[int, float] = {}
    warm = Seeder(store, f"account-{uuid.UUID(int=rng.getrandbits(128))}", rng)  # warm-up, not reported
    seed_memory(store, warm, 10)
    runtime.handle(warm.stream_id, _command(domain))
    for length in lengths:
        seed_memory(store, seeder, length)
        _policy_snapshot(runtime, stream_id, length)
        best = float("inf")
        for _ in range(MEMORY_REPEATS):
            runtime.cache.clear()
            started = time.perf_counter()
            runtime.handle(stream_id, _command(domain))
            best = min(best, time.perf_counter() - started)
        out[length] = best * 1000
    return out


def run(lengths: tuple[int, ...] = LENGTHS, *, worst_phase: bool = True) -> dict[str, float]:
    rng = random.Random(20261205)
    base = lengths[0]
    gc.collect()
    moto = measure_moto(lengths, rng, worst_phase)
    memory = measure_memory(lengths, random.Random(20261205))
    gc.collect()
    results: dict[str, float] = {}
    for length in lengths:
        tag = label(length)
        cold_units = moto["cold_rcu"][length] + moto["cold_wcu"][length]
        results[f"stream_len_{tag}_cold_calls"] = moto["cold_calls"][length]
        results[f"stream_len_{tag}_cold_rcu"] = moto["cold_rcu"][length]
        results[f"stream_len_{tag}_cold_wcu"] = moto["cold_wcu"][length]
        results[f"stream_len_{tag}_warm_calls"] = moto["warm_calls"][length]
        results[f"stream_len_{tag}_warm_units"] = moto["warm_rcu"][length] + moto["warm_wcu"][length]
        results[f"stream_len_{tag}_cold_ms_moto"] = moto["cold_ms_moto"][length]
        results[f"stream_len_{tag}_cold_ms_memory"] = memory[length]
        if length != base:
            base_units = moto["cold_rcu"][base] + moto["cold_wcu"][base]
            results[f"cold_units_ratio_{tag}"] = cold_units / base_units
            results[f"cold_calls_ratio_{tag}"] = moto["cold_calls"][length] / moto["cold_calls"][base]
            results[f"warm_units_ratio_{tag}"] = results[f"stream_len_{tag}_warm_units"] / (
                moto["warm_rcu"][base] + moto["warm_wcu"][base]
            )
            results[f"cold_ms_memory_ratio_{tag}"] = memory[length] / memory[base]
            results[f"cold_ms_moto_ratio_{tag}"] = moto["cold_ms_moto"][length] / moto["cold_ms_moto"][base]
    if not worst_phase:
        return {k: round(v, 3) for k, v in results.items()}
    worst_long = moto["cold_rcu"][-1] + moto["cold_wcu"][-1]
    worst_short = moto["cold_rcu"][-2] + moto["cold_wcu"][-2]
    results["stream_len_worst_phase_cold_units"] = worst_long
    results["stream_len_worst_phase_cold_calls"] = moto["cold_calls"][-1]
    results["cold_units_ratio_worst_phase"] = worst_long / worst_short
    results["cold_calls_ratio_worst_phase"] = moto["cold_calls"][-1] / moto["cold_calls"][-2]
    return {k: round(v, 3) for k, v in results.items()}


if __name__ == "__main__":
    import sys

    from bench.__main__ import main

    sys.exit(main(["stream_length"]))
