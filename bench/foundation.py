"""Foundation benchmarks: AWS calls per command, decode+fold speed vs pyeventsourcing,
snapshot load speedup. Uses the real accounts domain (functions/accounts/domain.py) through
its composition root's registry and decider.

Everything AWS runs on in-process moto (``mock_aws``); calls are counted with botocore
``before-call`` hooks, i.e. API calls as the application makes them.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from moto import mock_aws

GOALS = {
    "calls_per_command_warm": "1",
    "calls_per_command_cold": "<= 3",
    "decode_fold_vs_pyes_ratio": ">= 10",
    "snapshot_load_speedup": ">= 50",
}

EVENTS = 10_000
TAIL = 10
REPEATS = 7
# the decode comparison is CPU-bound and short (~0.25 s a round): more rounds let the fastest run
# of each side come from a moment the shared machine left it alone
DECODE_REPEATS = 25
EVENTS_TABLE, IDEMPOTENCY_TABLE, BUCKET = "bench-events", "bench-idempotency", "bench-snapshots"


class CallCounter:
    """API calls made through the attached clients (botocore ``before-call`` hooks)."""

    def __init__(self, *clients: Any):
        self.calls: list[str] = []
        for c in clients:
            c.meta.events.register(f"before-call.{c.meta.service_model.service_name}.*", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)


class RecordingClient:
    """Passes ``query`` to the real DynamoDB client and keeps each response by its request."""

    def __init__(self, client: Any):
        self.client = client
        self.responses: dict[str, dict[str, Any]] = {}

    def query(self, **request: Any) -> dict[str, Any]:
        response = self.client.query(**request)
        self.responses[_request_key(request)] = response
        return response


class PagesClient:
    """Stands in for the DynamoDB client once the pages are fetched: ``query`` hands back the
    response the real client gave to the same request (recorded by :class:`RecordingClient`
    while the store made its own Queries), so only decode + fold is timed."""

    def __init__(self, responses: dict[str, dict[str, Any]]):
        self.responses = responses

    def query(self, **request: Any) -> dict[str, Any]:
        return self.responses[_request_key(request)]


def _request_key(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True)


def account_history(rng: random.Random) -> list[Any]:
    """AccountOpened + deposits/withdrawals with varied amounts (never below zero)."""
    from accounts import domain

    account_id = f"account-{uuid.UUID(int=rng.getrandbits(128))}"
    events: list[Any] = [domain.AccountOpened(account_id=account_id, owner_id="alice", currency="USD")]
    balance = Decimal("0.00")
    for _ in range(EVENTS - 1):
        amount = Decimal(rng.randint(1, 50_000)) / 100
        if rng.random() < 0.4 and amount <= balance:
            events.append(domain.MoneyWithdrawn(amount=amount))
            balance -= amount
        else:
            events.append(domain.MoneyDeposited(amount=amount))
            balance += amount
    return events


def seed_items(store: Any, stream_id: str, history: list[Any], rng: random.Random) -> list[dict[str, Any]]:
    """The items the store itself would write, each with its own command metadata."""
    from cairn.events import EventMetadata, NewEvent
    from cairn.store import Head
    from cairn.store.dynamodb import item_from_encoded

    items = []
    head = Head(0, "0" * 64, "")
    for version, event in enumerate(history):
        meta = EventMetadata(
            correlation_id=str(uuid.UUID(int=rng.getrandbits(128))),
            actor="alice",
            command_id=str(uuid.UUID(int=rng.getrandbits(128))),
        )
        (encoded,) = store.encode_batch(stream_id, [NewEvent(data=event, metadata=meta)], version, head)
        head = Head(encoded.version, encoded.hash, encoded.occurred_at)  # chained, as the store writes
        items.append(item_from_encoded(stream_id, encoded))
    return items


def batch_write(client: Any, items: list[dict[str, Any]]) -> None:
    """Seeding only (not timed, no conditions): 25 items per BatchWriteItem."""
    for start in range(0, len(items), 25):
        request = {EVENTS_TABLE: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def query_rcu(pages: list[list[dict[str, Any]]]) -> float:
    """Read capacity of strongly consistent Query pages: 1 RCU per 4 KB of items, per page."""
    from cairn.store.base import item_size
    from cairn.store.dynamodb import _flat

    return float(sum(-(-sum(item_size(_flat(i)) for i in page) // 4096) for page in pages))


# -- pyeventsourcing ------------------------------------------------------------------------------
def pyes_replay(history: list[Any]) -> Callable[[], Any]:
    """The same account history as a pyeventsourcing aggregate on its in-memory (POPO) store;
    returns the timed operation, ``repository.get`` (no snapshots, no aggregate cache)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Account(Aggregate):
        @event("Opened")
        def __init__(self, owner_id: str, currency: str):
            self.owner_id = owner_id
            self.currency = currency
            self.balance = Decimal("0.00")

        @event("Deposited")
        def deposit(self, amount: Decimal) -> None:
            self.balance += amount

        @event("Withdrawn")
        def withdraw(self, amount: Decimal) -> None:
            self.balance -= amount

    class Bank(Application):
        pass

    app = Bank(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    opened, *rest = history
    account = Account(owner_id=opened.owner_id, currency=opened.currency)
    for e in rest:
        if type(e).__name__ == "MoneyDeposited":
            account.deposit(e.amount)
        else:
            account.withdraw(e.amount)
    app.save(account)
    return lambda: app.repository.get(account.id)


def best_alternating(*fns: Callable[[], Any], repeats: int = REPEATS) -> list[tuple[float, Any]]:
    """Fastest run of each function, runs interleaved so machine load hits them alike."""
    fastest: list[tuple[float, Any]] = [(float("inf"), None)] * len(fns)
    for _ in range(repeats):
        for n, fn in enumerate(fns):
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
            if elapsed < fastest[n][0]:
                fastest[n] = (elapsed, result)
    return fastest


# -- the suite ------------------------------------------------------------------------------------
def run() -> dict[str, float]:
    from accounts import domain
    from accounts.app import decider, registry
    from cairn.aws import client
    from cairn.commands import CommandRuntime, StateCache
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn.store.dynamodb import DynamoDBEventStore, create_tables

    results: dict[str, float] = {}
    rng = random.Random(20261126)
    with mock_aws():
        ddb, s3 = client("dynamodb"), client("s3")
        create_tables(ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        s3.create_bucket(Bucket=BUCKET)
        store = DynamoDBEventStore(registry, ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        snapshots = S3SnapshotStore(s3, BUCKET)

        # -- AWS calls per command (DynamoDB store + S3 snapshots through CommandRuntime) --------
        runtime = CommandRuntime(store, decider, snapshots, StateCache())
        accounts = [f"account-{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(20)]
        for n, account_id in enumerate(accounts):
            runtime.handle(account_id, domain.OpenAccount(account_id=account_id, owner_id="alice", currency="USD"))
            for _ in range(5):
                runtime.handle(account_id, domain.Deposit(amount=Decimal("10.00")))
            if n % 2 == 0:
                runtime.take_snapshot(account_id)  # half the streams have a snapshot + tail
                runtime.handle(account_id, domain.Deposit(amount=Decimal("1.00")))
        counter = CallCounter(ddb, s3)
        commands = 0
        for _ in range(5):
            for account_id in accounts:
                runtime.handle(account_id, domain.Deposit(amount=Decimal("1.00")))
                commands += 1
        results["calls_per_command_warm"] = len(counter.calls) / commands
        counter.calls.clear()
        for account_id in accounts:
            runtime.cache.clear()  # a fresh Lambda instance for every command
            runtime.handle(account_id, domain.Deposit(amount=Decimal("1.00")))
        results["calls_per_command_cold"] = len(counter.calls) / len(accounts)
        counter.calls.clear()
        for account_id in accounts:
            runtime.cache.clear()
            runtime.handle(account_id, domain.Withdraw(amount=Decimal("1.00")), idempotency_key=f"k-{account_id}")
        results["calls_per_command_cold_idempotent"] = len(counter.calls) / len(accounts)

        # -- a 10,000-event account, seeded in moto ---------------------------------------------
        history = account_history(rng)
        stream_id = history[0].account_id
        items = seed_items(store, stream_id, history, rng)
        batch_write(ddb, items[: EVENTS - TAIL])
        runtime = CommandRuntime(store, decider, snapshots, StateCache())
        snapshot = runtime.take_snapshot(stream_id)
        assert snapshot is not None and snapshot.version == EVENTS - TAIL
        batch_write(ddb, items[EVENTS - TAIL :])
        expected = decider.fold(decider.initial_state(), history)

        # decode + fold from pages already fetched: the responses to the store's own Queries (a
        # real consistent Query, default 1 MB pages; fold asks for 4 attributes, read for all)
        recorder = RecordingClient(ddb)
        recording = DynamoDBEventStore(registry, recorder, EVENTS_TABLE)
        assert recording.fold(stream_id, decider.initial_state(), decider.evolve) == (EVENTS, expected)
        assert sum(1 for _ in recording.read(stream_id)) == EVENTS
        offline = DynamoDBEventStore(registry, PagesClient(recorder.responses), EVENTS_TABLE)
        replay_only = CommandRuntime(offline, decider, None, StateCache())
        (seconds, loaded), (pyes_seconds, aggregate), (read_seconds, envelopes) = best_alternating(
            lambda: replay_only.load(stream_id),
            pyes_replay(history),
            lambda: sum(1 for _ in offline.read(stream_id)),  # the audit/projection path
            repeats=DECODE_REPEATS,
        )
        assert loaded == (EVENTS, expected), "decode+fold must rebuild the exact state"
        assert aggregate.version == EVENTS and aggregate.balance == expected.balance
        assert envelopes == EVENTS
        results["decode_fold_events_per_s"] = EVENTS / seconds
        results["decode_envelopes_per_s"] = EVENTS / read_seconds
        results["pyes_replay_events_per_s"] = EVENTS / pyes_seconds
        results["decode_fold_vs_pyes_ratio"] = results["decode_fold_events_per_s"] / results["pyes_replay_events_per_s"]
        # read capacity is charged on whole items, projection or not: the pages ``read`` got
        full_pages = [
            response["Items"]
            for request, response in recorder.responses.items()
            if "ProjectionExpression" not in json.loads(request)
        ]
        assert sum(len(page) for page in full_pages) == EVENTS

        # -- snapshot + short tail vs full replay, both on moto ----------------------------------
        full = CommandRuntime(store, decider, None, StateCache())
        (full_seconds, loaded_full), (snap_seconds, loaded_snap) = best_alternating(
            lambda: full.load(stream_id), lambda: runtime.load(stream_id), repeats=4
        )
        assert loaded_full == loaded_snap == (EVENTS, expected)
        results["full_replay_ms_moto"] = full_seconds * 1000
        results["snapshot_load_ms_moto"] = snap_seconds * 1000
        results["snapshot_load_speedup"] = full_seconds / snap_seconds
        # what the same loads cost on DynamoDB (moto's Query walks the whole partition even for
        # a 10-item tail, so its timings understate the difference): consistent-read capacity
        results["full_replay_rcu"] = query_rcu(full_pages)
        results["snapshot_load_rcu"] = query_rcu([[i for i in items if int(i["version"]["N"]) > EVENTS - TAIL]])
    return {k: round(v, 3) for k, v in results.items()}
