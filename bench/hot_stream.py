"""Hot streams: 1, 8, 32 and 128 concurrent writers on ONE account stream (docs/scale.md, question 2).

Each writer is a separate warm Lambda instance (its own ``CommandRuntime`` and state cache) running
the real command path (``DynamoDBEventStore`` + S3 snapshots) against in-process moto. Every
DynamoDB request goes through one lock — the per-request atomicity DynamoDB gives and the local
runtime reproduces (docs/decisions.md: in-process moto is not atomic; the side-by-side bench and
the race tests serialize the same way). A writer's deposit carries a unique correlation id.

Reported per writer count ``W``: acknowledged commands/s (on moto, on this machine: a relative
figure, not DynamoDB's), conflict retries per acknowledged command (each one is a conditional
PutItem that failed + a tail Query: what it costs on DynamoDB, see docs/scale.md), commands that
exhausted the runtime's retry budget (``max_retries`` = 8, as deployed), and the check that matters:
every acknowledged correlation id is in the stream exactly once, and no refused one is
(``hot_stream_lost`` = acknowledged but missing + duplicated + refused but stored, summed: 0).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from moto import mock_aws

from bench.stream_length import recording_calls

GOALS = {"hot_stream_lost": "0"}

WRITERS = (1, 8, 32, 128)
COMMANDS = 128  # per writer count, split evenly between the writers (at least 1 each)
EVENTS_TABLE, IDEMPOTENCY_TABLE, BUCKET = "bench-hot-events", "bench-hot-idempotency", "bench-hot-snapshots"


class SerializedClient:
    """One lock around every call into in-process moto: DynamoDB's per-request atomicity."""

    def __init__(self, client: Any, lock: threading.Lock):
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "meta" or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


def run_writers(
    writers: int, commands: int, seed: int, wrap: Callable[[Any], Any] | None = None
) -> dict[str, float]:
    """``writers`` threads, ``commands`` deposits in all, on one fresh stream; checked afterwards.
    ``wrap`` wraps the DynamoDB client the writers use (tests: a client that loses a write)."""
    from accounts import domain
    from accounts.app import decider, registry
    from cairn.aws import client
    from cairn.commands import CommandContext, CommandRuntime, RetriesExhaustedError, StateCache
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn.store.dynamodb import DynamoDBEventStore

    rng = random.Random(seed)
    lock = threading.Lock()
    ddb = SerializedClient(client("dynamodb"), lock)
    writers_ddb = wrap(ddb) if wrap is not None else ddb
    s3 = SerializedClient(client("s3"), lock)
    stream_id = f"account-{uuid.UUID(int=rng.getrandbits(128))}"

    def runtime() -> Any:
        store = DynamoDBEventStore(registry, writers_ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        return CommandRuntime(store, decider, S3SnapshotStore(s3, BUCKET), StateCache())

    runtime().handle(stream_id, domain.OpenAccount(account_id=stream_id, owner_id="alice", currency="USD"))
    per_writer = max(1, commands // writers)
    ids = [[str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(per_writer)] for _ in range(writers)]
    acknowledged: list[list[str]] = [[] for _ in range(writers)]
    refused: list[list[str]] = [[] for _ in range(writers)]
    retries: list[int] = [0] * writers
    errors: list[BaseException] = []
    ready = threading.Barrier(writers + 1)
    start = threading.Barrier(writers + 1)

    def writer(n: int) -> None:
        instance = runtime()
        instance.current(stream_id)  # a warm instance: state cached before the race starts
        ready.wait()
        start.wait()
        for correlation_id in ids[n]:
            context = CommandContext(correlation_id=correlation_id, actor="alice")
            try:
                result = instance.handle(stream_id, domain.Deposit(amount=Decimal("1.00")), context=context)
            except RetriesExhaustedError:
                refused[n].append(correlation_id)
                continue
            except BaseException as exc:  # anything else is a bench failure, reported below
                errors.append(exc)
                return
            acknowledged[n].append(correlation_id)
            retries[n] += result.retries

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(writers)]
    for t in threads:
        t.start()
    ready.wait()  # every writer warm: only the race is recorded
    with recording_calls() as calls:
        start.wait()
        started = time.perf_counter()
        for t in threads:
            t.join(timeout=600)
        elapsed = time.perf_counter() - started
    rcu, wcu = _units(calls)
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"hot stream bench with {writers} writers failed: {errors[:3]!r}")

    stored = Counter(
        e.metadata.correlation_id for e in DynamoDBEventStore(registry, ddb, EVENTS_TABLE).read(stream_id, after=1)
    )
    acked = [c for batch in acknowledged for c in batch]
    refused_all = [c for batch in refused for c in batch]
    missing = sum(1 for c in acked if stored[c] == 0)
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    refused_but_stored = sum(1 for c in refused_all if stored[c] > 0)
    return {
        "acknowledged": float(len(acked)),
        "commands_per_s": len(acked) / elapsed,
        "retries_per_command": sum(retries) / max(1, len(acked)),
        "exhausted": float(len(refused_all)),
        "lost": float(missing + duplicated + refused_but_stored),
        "stored": float(sum(stored.values())),
        # request units the race cost (failed conditional writes consume WCU too), per acknowledgement
        "wcu_per_command": wcu / max(1, len(acked)),
        "rcu_per_command": rcu / max(1, len(acked)),
    }


def _units(calls: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> tuple[float, float]:
    """(RCU, WCU) of the recorded DynamoDB calls, from the sizes of the items they touched."""
    from bench.stream_length import _flat_size

    rcu = wcu = 0.0
    for operation, params, response in calls:
        if operation == "PutItem":
            wcu += -(-_flat_size(params["Item"]) // 1024)
        elif operation == "Query":
            total = sum(_flat_size(item) for item in response.get("Items", ()))
            rcu += max(1, -(-total // 4096))  # charged on whole items even when projected: close enough here
    return rcu, wcu


def run(writer_counts: tuple[int, ...] = WRITERS, commands: int = COMMANDS) -> dict[str, float]:
    from cairn.aws import client
    from cairn.store.dynamodb import create_tables

    results: dict[str, float] = {}
    lost = 0.0
    with mock_aws():
        create_tables(client("dynamodb"), EVENTS_TABLE, IDEMPOTENCY_TABLE, stream=False)
        client("s3").create_bucket(Bucket=BUCKET)
        for writers in writer_counts:
            figures = run_writers(writers, commands, seed=20261205 + writers)
            if figures["stored"] != figures["acknowledged"]:
                figures["lost"] += abs(figures["stored"] - figures["acknowledged"])  # a stray write
            lost += figures["lost"]
            prefix = f"hot_stream_w{writers}"
            results[f"{prefix}_commands_per_s_moto"] = figures["commands_per_s"]
            results[f"{prefix}_retries_per_command"] = figures["retries_per_command"]
            results[f"{prefix}_exhausted"] = figures["exhausted"]
            results[f"{prefix}_acknowledged"] = figures["acknowledged"]
            results[f"{prefix}_wcu_per_command"] = figures["wcu_per_command"]
            results[f"{prefix}_rcu_per_command"] = figures["rcu_per_command"]
    results["hot_stream_lost"] = lost
    return {k: round(v, 3) for k, v in results.items()}


if __name__ == "__main__":
    import sys

    from bench.__main__ import main

    sys.exit(main(["hot_stream"]))
