"""10,000 events over 100 streams, delivered shuffled, duplicated and bisected: the audit finds 0
differences.

The events are made by the real command runtime on moto (25 orders with random lives, 75 bank
accounts with random deposits and withdrawals, commands interleaved across streams, a fake clock
spreading them over two weeks so analytics has many days). moto's stream records (Lambda's shape)
are then delivered to the OrdersProjections and AccountsProjections handlers as the event source
mappings would under stress: spread over virtual shards (so one stream's events arrive in any
order), random batch sizes up to the template's 100, some records duplicated onto another shard,
successful batches redelivered, and random faults injected into the handlers' own AWS calls
(crashes after a call — the mapping retries the batch cut in half —, calls throttled past the
SDK's retries, lost responses). Then ``make audit PROJECTION=all --strict`` (in-process) and the
query-side readers must find every read model equal to the fold of the store.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.reliability.faults import Chaos
from tests.reliability.world import (
    Shard,
    check_read_models,
    deliver,
    stream_of,
    virtual_shards,
)

TOTAL_EVENTS = 10_000
ORDERS, ACCOUNTS = 25, 75


class FakeClock:
    """``utc_now_iso`` for the events: starts two weeks ago, moves 1..240 s per call."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.now = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> str:
        self.now += timedelta(seconds=self.rng.randint(1, 240), milliseconds=self.rng.randint(0, 999))
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.now.microsecond // 1000:03d}Z"


def order_life(rng: random.Random) -> list[str]:
    """The commands after CreateOrder, a valid life chosen at random."""
    roll = rng.random()
    if roll < 0.15:
        return ["cancel"]
    if roll < 0.25:
        return ["fail-payment"]
    if roll < 0.35:
        return []
    life = ["pay"]
    step = rng.random()
    if step < 0.2:
        return [*life, "cancel"]
    if step < 0.8:
        life.append("ship")
        if rng.random() < 0.6:
            life.append("deliver")
    return life


def build(rng: random.Random) -> dict[str, int]:
    """Append the 10,000 events through CommandRuntime.handle; returns events per stream."""
    from accounts import domain as acc
    from accounts.app import runtime as accounts_runtime
    from cairn.commands import CommandContext
    from orders import domain as od
    from orders.app import runtime as orders_runtime

    orders_rt, accounts_rt = orders_runtime(), accounts_runtime()
    pending: list[tuple[str, list[object]]] = []
    for i in range(ORDERS):
        order_id = f"order-{i:04d}-{rng.randrange(16**8):08x}"
        lines = [
            od.OrderLine(sku=f"SKU-{rng.randint(1, 9)}", quantity=rng.randint(1, 4), unit_price=Decimal(rng.randint(100, 99999)) / 100)
            for _ in range(rng.randint(1, 3))
        ]
        total = od.order_total(lines)
        create = od.CreateOrder(
            order_id=order_id, customer_id=f"user-{i % 6}", items=lines, currency=rng.choice(["USD", "EUR"])
        )
        commands: dict[str, object] = {
            "pay": od.RecordPayment(payment_id=f"pay-{i}", amount=total),
            "fail-payment": od.FailPayment(payment_id=f"pay-{i}", reason="declined"),
            "cancel": od.CancelOrder(reason="changed my mind"),
            "ship": od.ShipOrder(tracking=f"TRK{i:05d}"),
            "deliver": od.DeliverOrder(),
        }
        pending.append((order_id, [create, *(commands[c] for c in order_life(rng))]))
    order_events = sum(len(c) for _, c in pending)
    budget = TOTAL_EVENTS - order_events - ACCOUNTS  # money movements to spread over the accounts
    shares = [1] * ACCOUNTS
    for _ in range(budget - ACCOUNTS):
        shares[rng.randrange(ACCOUNTS)] += 1
    for i in range(ACCOUNTS):
        account_id = f"account-{i:04d}-{rng.randrange(16**8):08x}"
        opened = acc.OpenAccount(account_id=account_id, owner_id=f"user-{i % 6}", currency="USD")
        pending.append((account_id, [opened, *(["money"] * shares[i])]))

    balances: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    queues = {stream: list(commands) for stream, commands in pending}
    live = list(queues)
    context = CommandContext(actor="builder")
    while live:
        stream = rng.choice(live)
        command = queues[stream].pop(0)
        if not queues[stream]:
            live.remove(stream)
        if stream.startswith("order-"):
            result = orders_rt.handle(stream, command, context=context)
        else:
            if command == "money":
                balance = balances.get(stream, Decimal("0.00"))
                amount = Decimal(rng.randint(1, 20000)) / 100
                if balance >= amount and rng.random() < 0.45:
                    command = acc.Withdraw(amount=amount)
                    balances[stream] = balance - amount
                else:
                    command = acc.Deposit(amount=amount)
                    balances[stream] = balance + amount
            result = accounts_rt.handle(stream, command, context=context)
        counts[stream] = result.version
    return counts


@pytest.mark.slow
def test_ten_thousand_events_shuffled_duplicated_bisected_audit_finds_zero_differences(world, monkeypatch):
    import cairn.events

    rng = random.Random(20261126)
    monkeypatch.setattr(cairn.events, "utc_now_iso", FakeClock(rng))
    started = time.perf_counter()
    counts = build(rng)
    built = time.perf_counter()
    assert sum(counts.values()) == TOTAL_EVENTS and len(counts) == ORDERS + ACCOUNTS
    records = world.stream_records()
    assert len(records) == TOTAL_EVENTS
    read = time.perf_counter()

    report = {}
    kinds: set[str] = set()
    for prefix, module in (("order-", "orders.projections"), ("account-", "accounts.projections")):
        import importlib

        handler = importlib.import_module(module).handler
        mine = [r for r in records if stream_of(r).startswith(prefix)]  # the mapping's filter
        shards = virtual_shards(mine, 4, rng)
        for shard in shards:  # at-least-once: some records come twice, on another shard
            copies = [r for r in shard.records if rng.random() < 0.05]
            for copy_ in copies:
                target = rng.choice(shards)
                target.records.append(copy_)
        shards = [Shard(s.records) for s in shards]  # each shard in sequence order again
        rate = 0.05 if prefix == "order-" else 0.008  # the orders consumer makes far fewer calls
        chaos = Chaos(rng, {"crash-after": rate, "lost-response": rate, "throttle": rate})
        with world.injector.armed(chaos=chaos):
            stats = deliver(handler, shards, rng=rng, batch_size=100, random_sizes=True, redeliver=0.1)
            fired = {f.fault.kind for f in world.injector.fired}
            kinds |= fired
        assert fired, fired
        report[prefix] = stats
    delivered = time.perf_counter()
    total = {k: sum(getattr(s, k) for s in report.values()) for k in ("crashes", "bisections", "partial_failures", "redeliveries")}
    assert all(total.values()), total  # every kind of trouble happened
    assert {"crash-after", "lost-response", "throttle"} <= kinds, kinds

    check_read_models(world)  # readers == fold, independent analytics, strict audit: 0 differences
    audited = time.perf_counter()
    timings = {
        "build": round(built - started, 1),
        "read": round(read - built, 1),
        "deliver": round(delivered - read, 1),
        "audit": round(audited - delivered, 1),
    }
    print(f"10k: {timings} {report}")
    assert sum(s.records_delivered for s in report.values()) > TOTAL_EVENTS  # duplicates were delivered


def test_the_world_s_flat_moto_changes_no_answer(world, monkeypatch):
    """Queries (pages, bounds, reverse) and a cancelled transaction's rollback are the same with
    the World's flat transactions and partition queries (local.cloud.flat_in_process) as with
    moto's own."""
    from botocore.exceptions import ClientError

    import local.cloud

    table = world.env["EVENTS_TABLE"]
    for stream in ("a", "b", "c"):
        for version in range(1, 8):
            world.dynamodb.put_item(TableName=table, Item={"stream_id": {"S": stream}, "version": {"N": str(version)}})
    queries = [
        {"KeyConditionExpression": "stream_id = :s", "ExpressionAttributeValues": {":s": {"S": "b"}}},
        {"KeyConditionExpression": "stream_id = :s", "ExpressionAttributeValues": {":s": {"S": "b"}}, "Limit": 3},
        {
            "KeyConditionExpression": "stream_id = :s AND version BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":s": {"S": "c"}, ":lo": {"N": "2"}, ":hi": {"N": "5"}},
            "ScanIndexForward": False,
        },
        {"KeyConditionExpression": "stream_id = :s", "ExpressionAttributeValues": {":s": {"S": "zzz"}}},
    ]
    transaction = [
        {"Put": {"TableName": table, "Item": {"stream_id": {"S": "a"}, "version": {"N": "8"}}}},
        {"Put": {"TableName": table, "Item": {"stream_id": {"S": "b"}, "version": {"N": "1"}},
                 "ConditionExpression": "attribute_not_exists(version)"}},
    ]

    def observe() -> list:
        answers = [world.dynamodb.query(TableName=table, **q) for q in queries]
        try:
            world.dynamodb.transact_write_items(TransactItems=transaction)
        except ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
        answers.append(world.dynamodb.scan(TableName=table)["Items"])
        return [{k: v for k, v in a.items() if k != "ResponseMetadata"} if isinstance(a, dict) else a for a in answers]

    with monkeypatch.context() as own:
        own.setattr(local.cloud, "_FLAT_IN_PROCESS", 0)
        plain = observe()
    assert local.cloud._flat()
    assert observe() == plain
    assert plain[4] == "TransactionCanceledException"
