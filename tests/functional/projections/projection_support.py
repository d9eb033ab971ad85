"""Helpers for the projection tests: moto's real stream records, seeded histories, delivery
chaos (shuffle, duplicate, drop, split), and the invariant "read model == fold of the store"."""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from accounts import domain as accounts_domain
from cairn.events import NewEvent
from orders import domain as orders_domain

ORDER_TABLES = {"order_view": "cairn-order-view", "user_orders": "cairn-user-orders", "analytics": "cairn-analytics"}
ACCOUNT_TABLES = {"account_view": "cairn-account-view"}
TABLE_ENV = {
    "order_view": "ORDER_VIEW_TABLE",
    "user_orders": "USER_ORDERS_TABLE",
    "analytics": "ANALYTICS_TABLE",
    "account_view": "ACCOUNT_VIEW_TABLE",
}
BASE_TIME = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@dataclass
class FakeContext:
    function_name: str = "OrdersProjections"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:OrdersProjections"
    aws_request_id: str = "req-projections"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- stream records -----------------------------------------------------------------------------
@dataclass
class StreamReader:
    """Reads moto's (single-shard) stream and returns records in Lambda's event shape."""

    dynamodb: Any
    streams: Any
    table: str
    seen: set[str] = field(default_factory=set)

    def all(self) -> list[dict[str, Any]]:
        arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records.extend(lambda_shape(r, arn) for r in page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        records.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
        return records

    def new(self) -> list[dict[str, Any]]:
        fresh = [r for r in self.all() if r["eventID"] not in self.seen]
        self.seen.update(r["eventID"] for r in fresh)
        return fresh


def lambda_shape(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it (epoch seconds, eventSourceARN)."""
    shaped = copy.deepcopy(record)
    body = shaped["dynamodb"]
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    shaped["eventSourceARN"] = arn
    return shaped


def stream_of(record: dict[str, Any]) -> str:
    return record["dynamodb"]["Keys"]["stream_id"]["S"]


def version_of(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["Keys"]["version"]["N"])


# -- chaos ----------------------------------------------------------------------------------------
def chaotic_batches(
    records: list[dict[str, Any]],
    rng: random.Random,
    *,
    duplicate: float = 0.2,
    drop: float = 0.2,
    max_batch: int = 40,
) -> list[list[dict[str, Any]]]:
    """Every stream's last record at least once; others dropped (gaps) or duplicated at random;
    all shuffled across and within batches of random size."""
    last: dict[str, int] = {}
    for record in records:
        last[stream_of(record)] = max(last.get(stream_of(record), 0), version_of(record))
    chosen: list[dict[str, Any]] = []
    for record in records:
        is_last = version_of(record) == last[stream_of(record)]
        if not is_last and rng.random() < drop:
            continue
        chosen.append(record)
        while rng.random() < duplicate:
            chosen.append(record)
    rng.shuffle(chosen)
    batches = []
    while chosen:
        size = rng.randint(1, max_batch)
        batches.append(chosen[:size])
        chosen = chosen[size:]
    return batches


# -- seeded histories --------------------------------------------------------------------------------
def order_history(rng: random.Random, order_id: str, customer: str, start: datetime) -> list[NewEvent]:
    """A valid random life of an order, its events spread over a few days (UTC day boundaries)."""
    lines = [
        orders_domain.OrderLine(
            sku=f"SKU-{rng.randint(1, 9)}",
            quantity=rng.randint(1, 5),
            unit_price=Decimal(rng.randint(100, 99999)) / 100,
        )
        for _ in range(rng.randint(1, 4))
    ]
    currency = rng.choice(["USD", "EUR"])
    total = orders_domain.order_total(lines)
    moment = start
    events: list[Any] = [
        orders_domain.OrderCreated(order_id=order_id, customer_id=customer, items=lines, currency=currency, total=total)
    ]
    path = rng.random()
    if path < 0.15:
        events.append(orders_domain.OrderCancelled(reason="changed my mind"))
    elif path < 0.25:
        events.append(orders_domain.PaymentFailed(payment_id=f"pay-{order_id}", reason="declined"))
    elif path < 0.35:
        pass
    else:
        events.append(orders_domain.PaymentProcessed(payment_id=f"pay-{order_id}", amount=total))
        step = rng.random()
        if step < 0.2:
            events.append(orders_domain.OrderCancelled(reason="out of stock"))
        elif step < 0.8:
            events.append(orders_domain.OrderShipped(tracking=f"TRK{rng.randint(1000, 9999)}"))
            if rng.random() < 0.6:
                events.append(orders_domain.OrderDelivered())
    out = []
    for event in events:
        out.append(NewEvent(event, occurred_at=stamp(moment)))
        moment += timedelta(hours=rng.randint(1, 30), milliseconds=rng.randint(0, 999))
    return out


def account_history(rng: random.Random, account_id: str, owner: str, start: datetime) -> list[NewEvent]:
    events: list[Any] = [accounts_domain.AccountOpened(account_id=account_id, owner_id=owner, currency="USD")]
    balance = Decimal("0.00")
    for _ in range(rng.randint(0, 12)):
        amount = Decimal(rng.randint(1, 50000)) / 100
        if balance >= amount and rng.random() < 0.4:
            events.append(accounts_domain.MoneyWithdrawn(amount=amount))
            balance -= amount
        else:
            events.append(accounts_domain.MoneyDeposited(amount=amount))
            balance += amount
    return [NewEvent(e, occurred_at=stamp(start + timedelta(minutes=i * 7))) for i, e in enumerate(events)]


def append_in_chunks(store: Any, stream_id: str, events: list[NewEvent], rng: random.Random, after: int = 0) -> int:
    """Append as the command side would: sometimes one event, sometimes several at once."""
    version = after
    while events:
        size = rng.choice([1, 1, 1, 2, 3])
        chunk, events = events[:size], events[size:]
        store.append(stream_id, chunk, version)
        version += len(chunk)
    return version


# -- the invariant: read model == fold of the store ---------------------------------------------------
def independent_analytics(
    store: Any, stream_ids: list[str], up_to: dict[str, int] | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """Daily analytics computed straight from the events (not through the projection's code);
    ``up_to`` limits some streams to their first versions (parked streams)."""
    totals: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal("0")])
    for stream_id in stream_ids:
        currency = None
        for event in store.read(stream_id, up_to_version=(up_to or {}).get(stream_id)):
            day = event.occurred_at[:10]
            if isinstance(event.data, orders_domain.OrderCreated):
                currency = event.data.currency
                totals[(day, currency)][0] += 1
            elif isinstance(event.data, orders_domain.PaymentProcessed):
                totals[(day, currency)][1] += 1
                totals[(day, currency)][3] += event.data.amount
            elif isinstance(event.data, orders_domain.OrderCancelled):
                totals[(day, currency)][2] += 1
    cent = Decimal("0.01")
    return {
        key: {
            "date": key[0],
            "currency": key[1],
            "orders_created": c,
            "orders_paid": p,
            "orders_cancelled": x,
            "revenue": str(r.quantize(cent)),
            "average_order_value": str((r / p).quantize(cent)) if p else "0.00",
            # these flows refund nothing: the refund counters stay zero
            "orders_refunded": 0,
            "refunds": "0.00",
            "net_revenue": str(r.quantize(cent)),
        }
        for key, (c, p, x, r) in totals.items()
    }


def domain_order_state(store: Any, stream_id: str) -> Any:
    state = orders_domain.initial_state()
    for event in store.read(stream_id):
        state = orders_domain.evolve(state, event.data)
    return state


def domain_account_state(store: Any, stream_id: str) -> Any:
    state = accounts_domain.initial_state()
    for event in store.read(stream_id):
        state = accounts_domain.evolve(state, event.data)
    return state


# -- seeding and checking whole worlds ------------------------------------------------------------
def seed_orders(harness: Any, rng: random.Random, count: int, customers: int = 5, prefix: str = "") -> list[str]:
    ids = []
    for i in range(count):
        order_id = f"order-{prefix}{i:04d}-{rng.randrange(16**8):08x}"
        start = BASE_TIME + timedelta(hours=rng.randint(0, 96), minutes=rng.randint(0, 59))
        history = order_history(rng, order_id, f"user-{rng.randrange(customers)}", start)
        append_in_chunks(harness.orders_store, order_id, history, rng)
        ids.append(order_id)
    return ids


def seed_accounts(harness: Any, rng: random.Random, count: int) -> list[str]:
    ids = []
    for i in range(count):
        account_id = f"account-{i:04d}-{rng.randrange(16**8):08x}"
        append_in_chunks(harness.accounts_store, account_id, account_history(rng, account_id, f"user-{i % 3}", BASE_TIME), rng)
        ids.append(account_id)
    return ids


def assert_orders_match_store(harness: Any, order_ids: list[str]) -> None:
    from orders.read_models import (
        DailyAnalytics,
        OrderViews,
        UserOrders,
        order_view_from_events,
        user_order_entry,
    )

    views = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True)
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for order_id in order_ids:
        events = list(harness.orders_store.read(order_id))
        expected = order_view_from_events(events)
        actual = views.get(order_id)
        assert actual == expected, order_id
        # and the fold itself agrees with the domain's own state
        state = domain_order_state(harness.orders_store, order_id)
        assert actual["status"] == state.status.value
        assert actual["total"] == str(state.total)
        assert actual["tracking"] == state.tracking
        assert actual["version"] == len(events)
        assert [t["version"] for t in actual["timeline"]] == list(range(1, len(events) + 1))
        by_customer.setdefault(actual["customer_id"], []).append(user_order_entry(actual))

    user_orders = UserOrders(harness.dynamodb, harness.tables["user_orders"], consistent=True)
    for customer, entries in by_customer.items():
        expected_list = sorted(entries, key=lambda e: (e["created_at"], e["order_id"]), reverse=True)
        listed, cursor = [], None
        while True:
            page, cursor = user_orders.list(customer, limit=3, cursor=cursor)
            listed.extend(page)
            if cursor is None:
                break
        assert listed == expected_list, customer

    expected_days = independent_analytics(harness.orders_store, order_ids)
    analytics = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True)
    rows = analytics.days("2026-11-01", "2026-12-31")
    assert {(r["date"], r["currency"]): r for r in rows} == expected_days


def assert_accounts_match_store(harness: Any, account_ids: list[str]) -> None:
    from accounts.read_models import AccountViews, account_view_from_events

    views = AccountViews(harness.dynamodb, harness.tables["account_view"], consistent=True)
    for account_id in account_ids:
        events = list(harness.accounts_store.read(account_id))
        actual = views.get(account_id)
        assert actual == account_view_from_events(events)
        assert actual["balance"] == str(domain_account_state(harness.accounts_store, account_id).balance)
        assert actual["version"] == len(events)


# -- Lambda's event source mapping, emulated --------------------------------------------------------
def drive_like_lambda(
    records: list[dict[str, Any]], handler: Any, rng: random.Random, max_batch: int = 25, max_invocations: int = 10_000
) -> int:
    """Deliver a shard's records the way the event source mapping does with
    ReportBatchItemFailures: batches from the current position; on reported failures, restart
    from the lowest reported sequence number (every record from there on comes again)."""
    position, invocations = 0, 0
    while position < len(records):
        invocations += 1
        assert invocations <= max_invocations, "the shard never drained"
        batch = records[position : position + rng.randint(1, max_batch)]
        failures = handler(batch)["batchItemFailures"]
        if not failures:
            position += len(batch)
            continue
        lowest = min(int(f["itemIdentifier"]) for f in failures)
        position = next(i for i, r in enumerate(records) if int(r["dynamodb"]["SequenceNumber"]) == lowest)
    return invocations


class FlakyDynamoDB:
    """A DynamoDB client that sometimes throttles a transaction, and sometimes commits it and
    then loses the response (the caller sees an error although the write happened)."""

    def __init__(self, real: Any, rng: random.Random, throttle: float = 0.1, lose_response: float = 0.1):
        self._real = real
        self._rng = rng
        self.throttle = throttle
        self.lose_response = lose_response
        self.throttled = 0
        self.lost = 0
        self.shared_throttled = 0  # of those, transactions advancing several checkpoints
        self.shared_lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError, ReadTimeoutError

        checkpoints = sum(1 for op in kwargs["TransactItems"] if op.get("Put", {}).get("Item", {}).get("sk") == {"S": "cp"})
        roll = self._rng.random()
        if roll < self.throttle:
            self.throttled += 1
            self.shared_throttled += checkpoints > 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "TransactWriteItems"
            )
        response = self._real.transact_write_items(**kwargs)
        if roll < self.throttle + self.lose_response:
            self.lost += 1
            self.shared_lost += checkpoints > 1
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        return response


def next_order_event(store: Any, stream_id: str) -> Any:
    """Some event the domain accepts next for the order (None when it is final)."""
    state = domain_order_state(store, stream_id)
    for command in (
        orders_domain.ShipOrder(tracking="LATE-1"),
        orders_domain.DeliverOrder(),
        orders_domain.RecordPayment(payment_id="late-pay", amount=state.total),
    ):
        try:
            return orders_domain.decide(command, state)[0]
        except Exception:
            continue
    return None
