"""Projection tests on in-process moto: events table with its stream, the four read-model tables,
the on-failure queue; the Lambda handlers get real-shaped DynamoDB stream events."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Cairn")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "projections-tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from projection_support import ACCOUNT_TABLES, ORDER_TABLES, TABLE_ENV, FakeContext, StreamReader  # noqa: E402


def create_read_model_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


class SerializedClient:
    """One lock around every call into in-process moto, shared by every DynamoDB client of a test.

    moto is not atomic under concurrent requests (a cancelled transaction restores a copy of the
    whole table, wiping other threads' writes); DynamoDB is. The rebuild runs scan segments in
    threads, so its tests need DynamoDB's per-request atomicity, as the local runtime gives.
    """

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


@dataclass
class Harness:
    dynamodb: Any
    sqs: Any
    queue_url: str
    events_table: str
    reader: StreamReader
    orders_store: Any
    accounts_store: Any
    tables: dict[str, str]

    def orders(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        from orders import projections

        return projections.handler({"Records": records}, FakeContext())

    def accounts(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        from accounts import projections

        return projections.handler({"Records": records}, FakeContext(function_name="AccountsProjections"))

    def engine(self, name: str) -> Any:
        """The engine the tools use for ``name`` (same client and tables as the handlers)."""
        from cairn.projections import Parking, ProjectionEngine

        if name == "account_view":
            from accounts.projections import PROJECTIONS

            store = self.accounts_store
        else:
            from orders.projections import PROJECTIONS

            store = self.orders_store
        projection = next(p for p in PROJECTIONS if p.name == name)
        table = self.tables[name]
        parking = Parking(self.dynamodb, table, name, queue_url=self.queue_url, sqs=self.sqs)
        return ProjectionEngine(projection, self.dynamodb, table, store, parking=parking, max_attempts=3, sleep=lambda s: None)

    def parked_messages(self) -> list[dict[str, Any]]:
        messages = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return messages
            for message in got:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def harness(event_tables, dynamodb_client, monkeypatch) -> Iterator[Harness]:
    import cairn.aws
    from accounts import projections as account_projections
    from accounts.app import registry as accounts_registry
    from cairn.aws import client
    from cairn.projections.generations import clear_generation_cache
    from cairn.store.dynamodb import DynamoDBEventStore
    from orders import projections as order_projections
    from orders.app import registry as orders_registry

    lock = threading.Lock()

    def serialized_client(service: str, **kwargs: Any) -> Any:
        made = client(service, **kwargs)
        return SerializedClient(made, lock) if service == "dynamodb" else made

    monkeypatch.setattr(cairn.aws, "client", serialized_client)
    dynamodb_client = SerializedClient(dynamodb_client, lock)
    tables = {**ORDER_TABLES, **ACCOUNT_TABLES}
    for name in tables.values():
        create_read_model_table(dynamodb_client, name)
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="cairn-projections-parked")["QueueUrl"]
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # the CLI sets it from an outputs file
    monkeypatch.setenv("EVENTS_TABLE", event_tables.events)
    monkeypatch.setenv("PARKED_QUEUE_URL", queue_url)
    monkeypatch.setenv("PROJECTION_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("GENERATION_CACHE_SECONDS", "0")
    for projection, table in tables.items():
        monkeypatch.setenv(TABLE_ENV[projection], table)
    caches = (order_projections.consumer, account_projections.consumer)  # tests may monkeypatch these
    for cached in caches:
        cached.cache_clear()
    clear_generation_cache()
    harness = Harness(
        dynamodb=dynamodb_client,
        sqs=sqs,
        queue_url=queue_url,
        events_table=event_tables.events,
        reader=StreamReader(dynamodb_client, client("dynamodbstreams"), event_tables.events),
        orders_store=DynamoDBEventStore(orders_registry, dynamodb_client, events_table=event_tables.events),
        accounts_store=DynamoDBEventStore(accounts_registry, dynamodb_client, events_table=event_tables.events),
        tables=tables,
    )
    yield harness
    for cached in caches:
        cached.cache_clear()
    clear_generation_cache()
