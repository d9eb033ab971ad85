"""The EDA flow on in-process moto: events table (+ its stream), bus, rules -> queues, consumer tables.

The rules mirror what the CDK app deploys (source ``cairn.orders``, detail-type per consumer,
payments only for OrderCreated carrying a payment token), so a test goes: command -> events
table -> DynamoDB stream records (read from moto's stream: the real shape) -> publisher ->
EventBridge -> rule -> SQS -> the consumer Lambda handler with a real-shaped SQS event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Cairn")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "eda-tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from eda_support import BUS, SUBSCRIPTIONS, Cloud, FakeContext  # noqa: E402


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def cloud(event_tables, dynamodb_client, monkeypatch) -> Iterator[Cloud]:
    from cairn.aws import client

    for table in ("cairn-inventory", "cairn-notifications", "cairn-payment-intents", "cairn-payment-timeouts"):
        dynamodb_client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    events, sqs = client("events"), client("sqs")
    events.create_event_bus(Name=BUS)
    queues = {}
    for consumer, pattern in SUBSCRIPTIONS.items():
        dlq = sqs.create_queue(QueueName=f"{consumer}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=f"{consumer}-queue",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"{consumer}-rule", EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"{consumer}-rule", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
        queues[consumer] = url
    stream_arn = dynamodb_client.describe_table(TableName=event_tables.events)["Table"]["LatestStreamArn"]
    env = {
        "EVENTS_TABLE": event_tables.events,
        "IDEMPOTENCY_TABLE": event_tables.idempotency,
        "INVENTORY_TABLE": "cairn-inventory",
        "NOTIFICATIONS_TABLE": "cairn-notifications",
        "EVENT_BUS_NAME": BUS,
        "PAYMENT_INTENTS_TABLE": "cairn-payment-intents",
        "PAYMENT_TIMEOUTS_TABLE": "cairn-payment-timeouts",
        "PAYMENT_TIMEOUT_SECONDS": "60",
        "PAYMENT_INTENTS_KEY": client("kms").create_key(Description="payment intents")["KeyMetadata"]["Arn"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SNAPSHOT_BUCKET", raising=False)
    monkeypatch.delenv("NOTIFICATIONS_SEND_EMAIL", raising=False)
    _reset_composition_roots()
    yield Cloud(
        dynamodb=dynamodb_client,
        streams=client("dynamodbstreams"),
        events=events,
        sqs=sqs,
        events_table=event_tables.events,
        idempotency_table=event_tables.idempotency,
        inventory_table="cairn-inventory",
        notifications_table="cairn-notifications",
        queues=queues,
        _stream_arn=stream_arn,
    )
    _reset_composition_roots()


def _reset_composition_roots() -> None:
    """Module-level caches (runtimes, clients) must not leak between moto instances."""
    import cairn_platform.publisher as publisher
    import inventory.app
    import notifications.app
    import orders.app
    import payments.app

    orders.app.runtime.cache_clear()
    payments.app.runtime.cache_clear()
    payments.app.gateway.cache_clear()
    payments.app.service.cache_clear()
    payments.app.vault.cache_clear()
    orders.app.payment_intents.cache_clear()
    import orders.timeouts

    orders.timeouts.timeouts.cache_clear()
    publisher._payments_publisher = None
    inventory.app.store.cache_clear()
    notifications.app.store.cache_clear()
    notifications.app.sender.cache_clear()
    publisher._publisher = None


@pytest.fixture
def orders_runtime(cloud):
    from orders.app import runtime

    return runtime()


EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def load_event():
    """A committed real-shaped event from tests/events/."""

    def load(name: str) -> dict:
        return json.loads((EVENTS_DIR / name).read_text())

    return load
