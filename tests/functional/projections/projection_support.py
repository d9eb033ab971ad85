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
def independent_analytics(store: Any, stream_ids: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Daily analytics computed straight from the events (not through the projection's code)."""
    totals: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal("0")])
    for stream_id in stream_ids:
        currency = None
        for event in store.read(stream_id):
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
