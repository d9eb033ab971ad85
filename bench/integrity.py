"""Integrity benchmarks (issue 11): what the hash chain costs.

- ``chain_verify_overhead``: decode+fold of a 10,000-event account with the chain's links checked
  as it is read (``fold(verify_links=True)``: versions contiguous, each ``prev_hash`` the hash
  before it) vs without, as a fraction of the unverified fold (goal <= 0.25). Both fold the same
  pre-fetched Query pages (foundation's PagesClient), so only CPU is compared.
- ``chain_rehash_overhead``: the full check ``make verify`` and the verification routes run —
  every item's canonical content re-hashed (SHA-256) and linked — as a fraction of the same fold.
- ``calls_per_command_warm`` (goal 1) and ``wcu_per_command_warm``: a warm single-event command
  through CommandRuntime on moto (write units from the items' sizes: 1 per KB of a PutItem, 2 per
  KB per item of a transaction), and the same for a cold one (``..._cold``).
"""

from __future__ import annotations

import random
import time
import uuid
from decimal import Decimal
from typing import Any

from moto import mock_aws

GOALS = {
    "chain_verify_overhead": "<= 0.25",
    "calls_per_command_warm": "1",
    "wcu_per_command_warm": "1",
}

REPEATS = 15
EVENTS_TABLE, IDEMPOTENCY_TABLE, BUCKET = "bench-events", "bench-idempotency", "bench-snapshots"  # foundation's seeding helpers write there


class WriteMeter:
    """API calls and the write units they cost (from the items' sizes), via ``before-call`` hooks."""

    def __init__(self, *clients: Any):
        self.calls: list[str] = []
        self.wcu = 0.0
        for c in clients:
            service = c.meta.service_model.service_name
            c.meta.events.register(f"before-call.{service}.*", self._seen)
            c.meta.events.register(f"before-parameter-build.{service}.*", self._params)

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def _params(self, params: Any, model: Any, **_: Any) -> None:
        from cairn.store.base import item_size
        from cairn.store.dynamodb import _flat

        if model.name == "PutItem":
            self.wcu += -(-item_size(_flat(params["Item"])) // 1024)
        elif model.name == "TransactWriteItems":
            for op in params["TransactItems"]:
                item = op.get("Put", {}).get("Item")
                if item is not None:
                    self.wcu += 2 * -(-item_size(_flat(item)) // 1024)


def best(fn: Any, repeats: int = REPEATS) -> tuple[float, Any]:
    fastest, value = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, value


def run() -> dict[str, float]:
    from accounts import domain
    from accounts.app import decider, registry
    from bench.foundation import (
        EVENTS,
        PagesClient,
        RecordingClient,
        account_history,
        batch_write,
        seed_items,
    )
    from cairn.aws import client
    from cairn.commands import CommandRuntime, StateCache
    from cairn.integrity import ChainVerifier
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn.store.dynamodb import DynamoDBEventStore, create_tables

    results: dict[str, float] = {}
    rng = random.Random(20261205)
    with mock_aws():
        ddb, s3 = client("dynamodb"), client("s3")
        create_tables(ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        s3.create_bucket(Bucket=BUCKET)
        store = DynamoDBEventStore(registry, ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)

        # -- a warm and a cold single-event command: calls and write units ---------------------
        runtime = CommandRuntime(store, decider, S3SnapshotStore(s3, BUCKET), StateCache())
        accounts = [f"account-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(20)]
        for account_id in accounts:
            runtime.handle(account_id, domain.OpenAccount(account_id=account_id, owner_id="alice", currency="USD"))
        meter = WriteMeter(ddb, s3)
        for _ in range(5):
            for account_id in accounts:
                runtime.handle(account_id, domain.Deposit(amount=Decimal("1.00")))
        commands = 5 * len(accounts)
        results["calls_per_command_warm"] = len(meter.calls) / commands
        results["wcu_per_command_warm"] = meter.wcu / commands
        cold_store = DynamoDBEventStore(registry, ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        meter.calls.clear()
        meter.wcu = 0.0
        for account_id in accounts:  # a fresh Lambda instance for every command (no cache, no heads)
            CommandRuntime(cold_store, decider, S3SnapshotStore(s3, BUCKET), StateCache()).handle(
                account_id, domain.Deposit(amount=Decimal("1.00"))
            )
            cold_store._heads.clear()
        results["chain_calls_per_command_cold"] = len(meter.calls) / len(accounts)
        results["wcu_per_command_cold"] = meter.wcu / len(accounts)

        # -- decode+fold of 10,000 events with and without chain verification ------------------
        history = account_history(rng)
        stream_id = history[0].account_id
        items = seed_items(store, stream_id, history, rng)
        batch_write(ddb, items)
        expected = decider.fold(decider.initial_state(), history)
        recorder = RecordingClient(ddb)
        recording = DynamoDBEventStore(registry, recorder, EVENTS_TABLE)
        assert recording.fold(stream_id, decider.initial_state(), decider.evolve) == (EVENTS, expected)
        assert recording.fold(stream_id, decider.initial_state(), decider.evolve, verify_links=True) == (EVENTS, expected)
        full_pages = [list(recording.read_items(stream_id))]
        offline = DynamoDBEventStore(registry, PagesClient(recorder.responses), EVENTS_TABLE)

        def plain() -> Any:
            return offline.fold(stream_id, decider.initial_state(), decider.evolve)

        def linked() -> Any:
            return offline.fold(stream_id, decider.initial_state(), decider.evolve, verify_links=True)

        def rehash() -> Any:
            verifier = ChainVerifier(stream_id)
            feed = verifier.feed
            for page in full_pages:
                for item in page:
                    feed(item)
            return verifier.finish()

        fold_s, fold_value = best(plain)
        linked_s, linked_value = best(linked)
        fold_s2, _ = best(plain)  # alternate: the machine is shared
        fold_s = min(fold_s, fold_s2)
        rehash_s, verdict = best(rehash, repeats=5)
        assert fold_value == linked_value == (EVENTS, expected)
        assert verdict.intact and verdict.version == EVENTS
        results["chain_verify_overhead"] = max(linked_s - fold_s, 0.0) / fold_s
        results["chain_rehash_overhead"] = rehash_s / fold_s
        results["chain_rehash_events_per_s"] = EVENTS / rehash_s
    return {k: round(v, 3) for k, v in results.items()}
