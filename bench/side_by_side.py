"""Cairn next to the ``eventsourcing`` library (pyES 9.3) on the same bank-account workload.

Both sides get the same aggregate (open, deposit, withdraw that may not overdraw) and the same
command sequence, on the same backends:

- in memory: Cairn's ``InMemoryEventStore`` + ``CommandRuntime`` vs pyES on its POPO recorder;
- DynamoDB: Cairn's ``DynamoDBEventStore`` (+ S3 snapshots, the state cache of a warm Lambda)
  vs pyES on ``eventsourcing-dynamodb`` 0.1.0, both on ONE moto server: the local runtime's
  (``local.cloud.MotoServer``, HTTP on 127.0.0.1, DynamoDB requests serialized so conditional
  writes are atomic as on DynamoDB — plain moto is not, see tests/unit/test_store_moto_atomicity.py).

Metrics: sequential commands/s (best of ``REPEATS``), AWS calls per command (botocore
``before-call`` hooks on each library's own clients), and acknowledged vs recorded under
``WRITERS`` concurrent writer threads on one account: each writer is a separate "instance"
(own runtime/application, own client, own cache), each deposit carries a unique reference
(Cairn: the command id in the event metadata; pyES: an event attribute), and afterwards every
acknowledged reference is looked up in the store: ``lost`` = acknowledged but not stored,
``duplicated`` = stored more than once, ``rejected`` = the library raised (not acknowledged).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

GOALS = {
    "side_cairn_ddb_concurrent_lost": "0",
    "side_cairn_mem_concurrent_lost": "0",
}

ACCOUNTS = 10
COMMANDS_DDB = 200  # per repeat, opens included (10 accounts: streams of up to 20 events)
COMMANDS_MEM = 1000  # streams of up to 100 events
REPEATS = 2
WRITERS = 8
PER_WRITER = 15
PYES_CACHED = {"AGGREGATE_CACHE_MAXSIZE": "1000"}  # pyES's aggregate cache (fast-forwarded on get)
EVENTS_TABLE, IDEMPOTENCY_TABLE, BUCKET, PYES_TABLE = "side-events", "side-idempotency", "side-snapshots", "side-pyes"
DEPOSIT, WITHDRAWAL = Decimal("10.00"), Decimal("3.00")


class CallCounter:
    """API calls made through the given clients (botocore ``before-call`` hooks)."""

    def __init__(self, *clients: Any):
        self.calls: list[str] = []
        for c in clients:
            c.meta.events.register(f"before-call.{c.meta.service_model.service_name}.*", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)


def _plan(count: int) -> list[tuple[int, str]]:
    """(account index, "open" | "deposit" | "withdraw"): opens first, then round-robin."""
    steps = [(n, "open") for n in range(ACCOUNTS)]
    k = 0
    while len(steps) < count:
        steps.append((k % ACCOUNTS, "deposit" if (k // ACCOUNTS) % 2 == 0 else "withdraw"))
        k += 1
    return steps


def _best_rate(run_once: Callable[[], int]) -> float:
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        commands = run_once()
        best = max(best, commands / (time.perf_counter() - started))
    return best


# -- Cairn --------------------------------------------------------------------------------------
class CairnBank:
    """The accounts context's decider behind a CommandRuntime (what accounts.api runs)."""

    def __init__(self, runtime: Any):
        from accounts import domain

        self.domain = domain
        self.runtime = runtime

    def open(self) -> str:
        account_id = f"account-{uuid.uuid4()}"
        self.runtime.handle(account_id, self.domain.OpenAccount(account_id=account_id, owner_id="alice", currency="USD"))
        return account_id

    def deposit(self, account_id: str, amount: Decimal, ref: str | None = None) -> None:
        from cairn.commands import CommandContext

        context = CommandContext(actor="alice", command_id=ref or str(uuid.uuid4()))
        self.runtime.handle(account_id, self.domain.Deposit(amount=amount), context=context)

    def withdraw(self, account_id: str, amount: Decimal) -> None:
        self.runtime.handle(account_id, self.domain.Withdraw(amount=amount))


def _run_plan(bank: Any, count: int) -> int:
    ids: list[Any] = []
    for n, kind in _plan(count):
        if kind == "open":
            ids.append(bank.open())
        elif kind == "deposit":
            bank.deposit(ids[n], DEPOSIT)
        else:
            bank.withdraw(ids[n], WITHDRAWAL)
    return count


# -- pyeventsourcing ------------------------------------------------------------------------------
def pyes_types() -> tuple[type, type]:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class InsufficientFundsError(Exception):
        pass

    class Account(Aggregate):
        @event("Opened")
        def __init__(self, owner_id: str, currency: str):
            self.owner_id = owner_id
            self.currency = currency
            self.balance = Decimal("0.00")

        def deposit(self, amount: Decimal, ref: str) -> None:
            if amount <= 0:
                raise ValueError("amount must be positive")
            self._deposited(amount=amount, ref=ref)

        @event("Deposited")
        def _deposited(self, amount: Decimal, ref: str) -> None:
            self.balance += amount

        def withdraw(self, amount: Decimal) -> None:
            if amount > self.balance:
                raise InsufficientFundsError(f"{amount} > {self.balance}")
            self._withdrawn(amount=amount)

        @event("Withdrawn")
        def _withdrawn(self, amount: Decimal) -> None:
            self.balance -= amount

    class Bank(Application):
        """The usual pyES command methods: get from the repository, call, save."""

        def open(self) -> uuid.UUID:
            account = Account(owner_id="alice", currency="USD")
            self.save(account)
            return account.id

        def deposit(self, account_id: uuid.UUID, amount: Decimal, ref: str | None = None) -> None:
            account = self.repository.get(account_id)
            account.deposit(amount, ref or str(uuid.uuid4()))
            self.save(account)

        def withdraw(self, account_id: uuid.UUID, amount: Decimal) -> None:
            account = self.repository.get(account_id)
            account.withdraw(amount)
            self.save(account)

    return Account, Bank


# -- concurrency ----------------------------------------------------------------------------------
def concurrent_writers(
    banks: list[Any], account_id: Any, stored_refs: Callable[[], list[str]]
) -> dict[str, float]:
    """``WRITERS`` threads (one bank each) deposit ``PER_WRITER`` times on one account at once."""
    acknowledged: list[str] = []
    rejected: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(banks))

    def writer(bank: Any, n: int) -> None:
        start.wait()
        for k in range(PER_WRITER):
            ref = f"w{n}-{k}-{uuid.uuid4().hex[:8]}"
            try:
                bank.deposit(account_id, Decimal("1.00"), ref)
            except Exception as exc:  # not acknowledged: what the caller would see as an error
                with lock:
                    rejected.append(f"{type(exc).__name__}")
                continue
            with lock:
                acknowledged.append(ref)

    threads = [threading.Thread(target=writer, args=(bank, n)) for n, bank in enumerate(banks)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    stored = Counter(stored_refs())
    lost = sum(1 for ref in acknowledged if stored[ref] == 0)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    return {
        "acknowledged": len(acknowledged),
        "recorded": sum(stored.values()),
        "lost": lost,
        "duplicated": duplicated,
        "rejected": len(rejected),
        "commands_per_s": len(acknowledged) / seconds,
    }


def _flatten(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_concurrent_{k}": v for k, v in figures.items()}


# -- the suite ------------------------------------------------------------------------------------
def run() -> dict[str, float]:
    from accounts.app import decider, registry
    from cairn.aws import client
    from cairn.commands import CommandRuntime, StateCache
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn.store.dynamodb import DynamoDBEventStore, create_tables
    from cairn.store.memory import InMemoryEventStore
    from local.cloud import MotoServer

    Account, Bank = pyes_types()
    results: dict[str, float] = {}

    # -- in memory ----------------------------------------------------------------------------
    results["side_cairn_mem_commands_per_s"] = _best_rate(
        lambda: _run_plan(CairnBank(CommandRuntime(InMemoryEventStore(registry), decider, None, StateCache())), COMMANDS_MEM)
    )
    results["side_pyes_popo_commands_per_s"] = _best_rate(
        lambda: _run_plan(Bank(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}), COMMANDS_MEM)
    )
    results["side_pyes_popo_cached_commands_per_s"] = _best_rate(
        lambda: _run_plan(Bank(env={"PERSISTENCE_MODULE": "eventsourcing.popo", **PYES_CACHED}), COMMANDS_MEM)
    )
    store = InMemoryEventStore(registry)
    cairn_banks = [CairnBank(CommandRuntime(store, decider, None, StateCache())) for _ in range(WRITERS)]
    account_id = cairn_banks[0].open()
    results.update(_flatten("side_cairn_mem", concurrent_writers(
        cairn_banks, account_id, lambda: [e.metadata.command_id for e in store.read(account_id) if e.version > 1]
    )))
    shared = Bank(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})  # POPO lives in one app
    pyes_id = shared.open()
    results.update(_flatten("side_pyes_popo", concurrent_writers(
        [shared] * WRITERS, pyes_id, lambda: [e.ref for e in _pyes_events(shared, pyes_id) if hasattr(e, "ref")]
    )))

    # -- DynamoDB on one moto server ------------------------------------------------------------
    server = MotoServer(serialize=True).start()
    try:
        endpoint = server.endpoint
        ddb, s3 = client("dynamodb", endpoint_url=endpoint), client("s3", endpoint_url=endpoint)
        create_tables(ddb, EVENTS_TABLE, IDEMPOTENCY_TABLE)
        s3.create_bucket(Bucket=BUCKET)
        ddb.create_table(
            TableName=PYES_TABLE,
            KeySchema=[
                {"AttributeName": "originator_id", "KeyType": "HASH"},
                {"AttributeName": "originator_version", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "originator_id", "AttributeType": "S"},
                {"AttributeName": "originator_version", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        pyes_env = {"PERSISTENCE_MODULE": "eventsourcing_dynamodb", "DYNAMO_TABLE": PYES_TABLE, "DYNAMO_ENDPOINT_URL": endpoint}

        def cairn_ddb(with_snapshots: bool = True) -> Any:
            d = client("dynamodb", endpoint_url=endpoint)
            s = client("s3", endpoint_url=endpoint)
            runtime = CommandRuntime(
                DynamoDBEventStore(registry, d, EVENTS_TABLE, IDEMPOTENCY_TABLE),
                decider,
                S3SnapshotStore(s, BUCKET) if with_snapshots else None,
                StateCache(),
            )
            return CairnBank(runtime), d, s

        # sequential throughput and calls per command
        bank, d, s = cairn_ddb()
        counter = CallCounter(d, s)
        results["side_cairn_ddb_commands_per_s"] = _best_rate(lambda: _run_plan(bank, COMMANDS_DDB))
        results["side_cairn_ddb_calls_per_command"] = len(counter.calls) / (COMMANDS_DDB * REPEATS)
        counter.calls.clear()
        account = bank.open()
        for _ in range(10):
            bank.deposit(account, DEPOSIT)
        counter.calls.clear()
        for _ in range(20):
            bank.runtime.cache.clear()  # every command on a fresh Lambda instance
            bank.deposit(account, DEPOSIT)
        results["side_cairn_ddb_calls_per_command_cold"] = len(counter.calls) / 20

        app = Bank(env=pyes_env)
        counter = CallCounter(app.recorder.dynamo_resource.meta.client)
        results["side_pyes_ddb_commands_per_s"] = _best_rate(lambda: _run_plan(app, COMMANDS_DDB))
        results["side_pyes_ddb_calls_per_command"] = len(counter.calls) / (COMMANDS_DDB * REPEATS)
        app = Bank(env={**pyes_env, **PYES_CACHED})
        counter = CallCounter(app.recorder.dynamo_resource.meta.client)
        results["side_pyes_ddb_cached_commands_per_s"] = _best_rate(lambda: _run_plan(app, COMMANDS_DDB))
        results["side_pyes_ddb_cached_calls_per_command"] = len(counter.calls) / (COMMANDS_DDB * REPEATS)

        # concurrent writers on one account
        writers = [cairn_ddb(with_snapshots=False)[0] for _ in range(WRITERS)]
        account = writers[0].open()
        reader = writers[0].runtime.store
        results.update(_flatten("side_cairn_ddb", concurrent_writers(
            writers, account, lambda: [e.metadata.command_id for e in reader.read(account) if e.version > 1]
        )))
        apps = [Bank(env=pyes_env) for _ in range(WRITERS)]  # one application per writer process
        pyes_account = apps[0].open()
        results.update(_flatten("side_pyes_ddb", concurrent_writers(
            apps, pyes_account, lambda: [e.ref for e in _pyes_events(apps[0], pyes_account) if hasattr(e, "ref")]
        )))
    finally:
        server.stop()
    return {k: round(float(v), 3) for k, v in results.items()}


def _pyes_events(app: Any, aggregate_id: uuid.UUID) -> list[Any]:
    """Every stored domain event of the aggregate, decoded (duplicates and all)."""
    return [app.mapper.to_domain_event(stored) for stored in app.recorder.select_events(aggregate_id)]


if __name__ == "__main__":
    import sys

    from bench.__main__ import main

    sys.exit(main(["side_by_side"]))
