"""AWS calls per event of the projection Lambdas on a real-shaped DynamoDB Streams batch.

Events are appended by the real command path (``CommandRuntime`` on the DynamoDB store, in-process
moto); the batch is moto's own stream records (GetRecords) in the shape Lambda delivers them, in
stream order. ``orders.projections.handler`` and ``accounts.projections.handler`` run as deployed
(``consumer()`` built from the environment). Every botocore API call made while a handler runs
is counted (``BaseClient._make_api_call``: no client, however lazily created, is missed).

Shapes: accounts 100 records over 10 streams (10 events each). An order's longest life is 4
events (created, paid, shipped, delivered), so the orders batch is 100 records over 25 streams
(and, for the same 10-stream shape, 40 records over 10 streams). ``cold``: a fresh Lambda
instance (first batch); warm (no suffix): the next batch on the same instance (generations
cached); ``single``: low traffic, one event per batch and the generation cache expired.
Write/read request units (``wru``/``rru``) follow DynamoDB's item-size rules (see ``capacity``).
After each batch the read models are checked against the store: a cheap wrong answer does not count.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from moto import mock_aws

GOALS = {"projection_calls_per_event": "<= 0.2"}

EVENTS_TABLE = "bench-events"
READ_MODEL_TABLES = {
    "ORDER_VIEW_TABLE": "bench-order-view",
    "USER_ORDERS_TABLE": "bench-user-orders",
    "ANALYTICS_TABLE": "bench-analytics",
    "ACCOUNT_VIEW_TABLE": "bench-account-view",
}


@contextlib.contextmanager
def counting_calls() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every botocore API call in this process while the block runs: (operation, parameters)."""
    from botocore.client import BaseClient

    calls: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def counted(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        calls.append((operation_name, copy.deepcopy(api_params)))
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


class _Context:
    function_name = "Projections"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Projections"
    aws_request_id = "bench"


def _create_read_model_table(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


class StreamTail:
    """Reads moto's stream from where it left off; records shaped as Lambda delivers them."""

    def __init__(self, ddb: Any, streams: Any, table: str):
        self.streams = streams
        self.arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str] = {}
        for shard in streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            self.iterators[shard["ShardId"]] = streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]

    def new_records(self) -> list[dict[str, Any]]:
        records = []
        for shard, iterator in self.iterators.items():
            while True:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                iterator = page["NextShardIterator"]
                records.extend(self._lambda_shape(r) for r in page["Records"])
                if not page["Records"]:
                    break
            self.iterators[shard] = iterator
        records.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
        return records

    def _lambda_shape(self, record: dict[str, Any]) -> dict[str, Any]:
        shaped = copy.deepcopy(record)
        created = shaped["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            shaped["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
        shaped["eventSourceARN"] = self.arn
        return shaped


def _round_robin(streams: list[str], steps: list[Callable[[str], Any]], handle: Callable[[str, Any], Any]) -> None:
    """Step k of every stream, then step k+1: the records of the streams interleave in the shard."""
    for step in steps:
        for stream_id in streams:
            handle(stream_id, step(stream_id))


# -- capacity units (DynamoDB's item-size rules) ------------------------------------------------
def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one DynamoDB-JSON value: strings/binary by length, numbers ~ (digits / 2) + 1,
    maps and lists 3 bytes + 1 per element + their contents (names included)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "B":
        return len(inner)
    if kind == "N":
        digits = len(inner.lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def capacity(ddb: Any, calls: list[tuple[str, dict[str, Any]]]) -> tuple[float, float]:
    """(write, read) request units of the calls, DynamoDB on-demand rules: transactional writes
    2 WRU per KB per item (an Update costs by the item after it: read back here); strongly
    consistent reads 1 RRU per 4 KB per item, a missing item still 1."""
    wru = rru = 0.0
    for operation, params in calls:
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                (kind, body), = action.items()
                if kind == "Put":
                    size = item_bytes(body["Item"])
                elif kind in ("Update", "Delete"):
                    found = ddb.get_item(TableName=body["TableName"], Key=body["Key"]).get("Item")
                    size = item_bytes(found or body["Key"])
                else:  # ConditionCheck: a read, 2 RRU per 4 KB in a transaction
                    rru += 2
                    continue
                wru += 2 * max(1, -(-size // 1024))
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            wru += max(1, -(-item_bytes(params.get("Item") or params["Key"]) // 1024))
        elif operation == "BatchGetItem":
            rru += sum(len(spec["Keys"]) for spec in params["RequestItems"].values())
        elif operation == "GetItem":
            rru += 1 if params.get("ConsistentRead") else 0.5
        elif operation == "Query":
            rru += 1  # gap repair only (none in these batches): the minimum
    return wru, rru


def _run_handler(
    handler: Callable[..., dict[str, Any]], records: list[dict[str, Any]], ddb: Any
) -> tuple[int, float, float]:
    """(API calls, WRU, RRU) of one invocation on ``records``."""
    # the handler's EMF metrics and logs go to stdout, as on Lambda: kept out of the bench table
    with counting_calls() as calls, contextlib.redirect_stdout(io.StringIO()):
        response = handler({"Records": records}, _Context())
    if response.get("batchItemFailures"):
        raise AssertionError(f"projection reported failures: {response['batchItemFailures']}")
    wru, rru = capacity(ddb, calls)
    return len(calls), wru, rru


def _check_accounts(ddb: Any, store: Any, accounts: list[str]) -> None:
    from accounts.read_models import AccountViews, account_view_from_events

    views = AccountViews(ddb, READ_MODEL_TABLES["ACCOUNT_VIEW_TABLE"], consistent=True)
    for account_id in accounts:
        assert views.get(account_id) == account_view_from_events(list(store.read(account_id))), account_id


def _check_orders(ddb: Any, store: Any, orders: list[str]) -> None:
    from orders.read_models import OrderViews, order_view_from_events

    views = OrderViews(ddb, READ_MODEL_TABLES["ORDER_VIEW_TABLE"], consistent=True)
    for order_id in orders:
        assert views.get(order_id) == order_view_from_events(list(store.read(order_id))), order_id


def run() -> dict[str, float]:
    from accounts import domain as accounts_domain
    from accounts import projections as accounts_projections
    from accounts.app import decider as accounts_decider
    from accounts.app import registry as accounts_registry
    from cairn.aws import client
    from cairn.commands import CommandRuntime, StateCache
    from cairn.projections.generations import clear_generation_cache
    from cairn.store.dynamodb import DynamoDBEventStore, create_tables
    from orders import domain as orders_domain
    from orders import projections as orders_projections
    from orders.app import decider as orders_decider
    from orders.app import registry as orders_registry

    saved = {
        k: os.environ.get(k)
        for k in ("EVENTS_TABLE", "PARKED_QUEUE_URL", "GENERATION_CACHE_SECONDS", *READ_MODEL_TABLES)
    }
    results: dict[str, float] = {}
    with mock_aws():
        ddb = client("dynamodb")
        create_tables(ddb, EVENTS_TABLE)
        for name in READ_MODEL_TABLES.values():
            _create_read_model_table(ddb, name)
        queue_url = client("sqs").create_queue(QueueName="bench-parked")["QueueUrl"]
        # warm = back-to-back batches: the generation meta item (one GetItem per table per
        # GENERATION_CACHE_SECONDS, default 5) stays cached however slowly this bench runs
        os.environ.update(
            {
                "EVENTS_TABLE": EVENTS_TABLE,
                "PARKED_QUEUE_URL": queue_url,
                "GENERATION_CACHE_SECONDS": "3600",
                **READ_MODEL_TABLES,
            }
        )
        tail = StreamTail(ddb, client("dynamodbstreams"), EVENTS_TABLE)
        try:
            # -- accounts: 100 records over 10 streams, twice -----------------------------------
            store = DynamoDBEventStore(accounts_registry, ddb, EVENTS_TABLE)
            runtime = CommandRuntime(store, accounts_decider, None, StateCache())
            accounts = [f"account-{uuid.uuid4()}" for _ in range(10)]
            deposit = lambda _s: accounts_domain.Deposit(amount=Decimal("12.34"))  # noqa: E731
            withdraw = lambda _s: accounts_domain.Withdraw(amount=Decimal("1.00"))  # noqa: E731
            opening = lambda s: accounts_domain.OpenAccount(account_id=s, owner_id="alice", currency="USD")  # noqa: E731
            _round_robin(accounts, [opening] + [deposit, withdraw] * 4 + [deposit], runtime.handle)
            first = tail.new_records()
            _round_robin(accounts, [deposit, withdraw] * 5, runtime.handle)
            second = tail.new_records()
            assert len(first) == len(second) == 100
            accounts_projections.consumer.cache_clear()
            clear_generation_cache()
            cold, _, _ = _run_handler(accounts_projections.handler, first, ddb)
            warm, wru, rru = _run_handler(accounts_projections.handler, second, ddb)
            _check_accounts(ddb, store, accounts)
            results["projection_calls_per_event_accounts_cold"] = cold / len(first)
            results["projection_calls_per_event_accounts"] = warm / len(second)
            results["projection_wru_per_event_accounts"] = wru / len(second)
            results["projection_rru_per_event_accounts"] = rru / len(second)
            # low traffic: a batch holds one event, and the generation cache has expired
            clear_generation_cache()
            runtime.handle(accounts[0], deposit(accounts[0]))
            single = tail.new_records()
            calls, wru, rru = _run_handler(accounts_projections.handler, single, ddb)
            results["projection_calls_per_event_accounts_single"] = calls / len(single)
            results["projection_wru_per_event_accounts_single"] = wru / len(single)

            # -- orders: 100 records over 25 streams, then 40 over 10 ---------------------------
            store = DynamoDBEventStore(orders_registry, ddb, EVENTS_TABLE)
            runtime = CommandRuntime(store, orders_decider, None, StateCache())
            line = orders_domain.OrderLine(sku="SKU-1", quantity=2, unit_price=Decimal("9.99"))
            totals = orders_domain.order_total([line])

            def lives(count: int) -> list[str]:
                orders = [f"order-{uuid.uuid4()}" for _ in range(count)]
                _round_robin(
                    orders,
                    [
                        lambda s: orders_domain.CreateOrder(
                            order_id=s, customer_id="alice", items=[line], currency="USD"
                        ),
                        lambda s: orders_domain.RecordPayment(payment_id=f"pay-{s}", amount=totals),
                        lambda _s: orders_domain.ShipOrder(tracking="TRK123"),
                        lambda _s: orders_domain.DeliverOrder(),
                    ],
                    runtime.handle,
                )
                return orders

            batches = []
            for count in (25, 25, 10):
                orders = lives(count)
                batches.append((orders, tail.new_records()))
            assert [len(b) for _, b in batches] == [100, 100, 40]
            orders_projections.consumer.cache_clear()
            clear_generation_cache()
            runs = [_run_handler(orders_projections.handler, records, ddb) for _, records in batches]
            for orders, _ in batches:
                _check_orders(ddb, store, orders)
            results["projection_calls_per_event_orders_cold"] = runs[0][0] / 100
            results["projection_calls_per_event_orders"] = runs[1][0] / 100
            results["projection_wru_per_event_orders"] = runs[1][1] / 100
            results["projection_rru_per_event_orders"] = runs[1][2] / 100
            results["projection_calls_per_event_orders_10_streams"] = runs[2][0] / 40
        finally:
            accounts_projections.consumer.cache_clear()
            orders_projections.consumer.cache_clear()
            clear_generation_cache()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    results["projection_calls_per_event"] = max(
        results["projection_calls_per_event_accounts"], results["projection_calls_per_event_orders"]
    )
    return {k: round(v, 3) for k, v in results.items()}


if __name__ == "__main__":
    import sys

    from bench.__main__ import main

    sys.exit(main(["projection_calls"]))
