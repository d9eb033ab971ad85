"""Helpers of the EDA functional tests: moto wiring, Lambda-shaped events, the flow's steps."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUS = "cairn-integration"

SUBSCRIPTIONS: dict[str, dict[str, Any]] = {
    "payments": {
        "source": ["cairn.orders"],
        "detail-type": ["OrderCreated", "OrderCancelled", "PaymentFailed", "PaymentProcessed"],
    },
    "timeouts": {
        "source": ["cairn.orders"],
        "detail-type": ["OrderCreated", "PaymentProcessed", "PaymentFailed", "OrderCancelled"],
    },
    "order_payments": {
        "source": ["cairn.payments"],
        "detail-type": ["PaymentCaptured", "PaymentDeclined", "PaymentRefunded"],
    },
    "inventory": {"source": ["cairn.orders"], "detail-type": ["OrderCreated", "OrderCancelled", "PaymentFailed"]},
    "notifications": {
        "source": ["cairn.orders"],
        "detail-type": ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"],
    },
}


@dataclass
class FakeContext:
    """What Powertools' inject_lambda_context reads from the Lambda context."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Cloud:
    dynamodb: Any
    streams: Any
    events: Any
    sqs: Any
    events_table: str
    idempotency_table: str
    inventory_table: str
    notifications_table: str
    queues: dict[str, str]  # consumer -> queue url
    _stream_arn: str = ""
    _iterator: str | None = None

    # -- the events table's stream, as the publisher's event source mapping would deliver it ----
    def stream_records(self) -> list[dict[str, Any]]:
        """New records of the events table stream since the last call, in Lambda's event shape."""
        if self._iterator is None:
            shard = self.streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"][0]
            self._iterator = self.streams.get_shard_iterator(
                StreamArn=self._stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        response = self.streams.get_records(ShardIterator=self._iterator)
        self._iterator = response.get("NextShardIterator")
        records = []
        for record in response.get("Records", []):
            ddb = dict(record["dynamodb"])
            created = ddb.get("ApproximateCreationDateTime")
            if created is not None and not isinstance(created, int | float):
                ddb["ApproximateCreationDateTime"] = int(created.timestamp())
            records.append(
                {
                    "eventID": record["eventID"],
                    "eventName": record["eventName"],
                    "eventVersion": record.get("eventVersion", "1.1"),
                    "eventSource": "aws:dynamodb",
                    "awsRegion": REGION,
                    "dynamodb": ddb,
                    "eventSourceARN": self._stream_arn,
                }
            )
        return records

    # -- a consumer's queue, as its SQS event source mapping would deliver it -----------------
    def receive(self, consumer: str, *, max_messages: int = 10) -> dict[str, Any]:
        """Every message now in the consumer's queue, deleted from it, as one Lambda SQS event."""
        url = self.queues[consumer]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        records: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=max_messages, AttributeNames=["All"], WaitTimeSeconds=0
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                records.append(sqs_record(message, arn))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return {"Records": records}

    def bodies(self, consumer: str) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.receive(consumer)["Records"]]


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "1700000000000"),
            "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
            "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", "1700000000000"),
        },
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(*bodies: dict[str, Any] | str, queue: str = "test-queue") -> dict[str, Any]:
    """A Lambda SQS event carrying ``bodies`` (EventBridge events) as messages."""
    records = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEB" + uuid.uuid4().hex,
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def shuffled(items: list[Any], seed: int) -> list[Any]:
    copy = list(items)
    random.Random(seed).shuffle(copy)
    return copy




# -- the flow's steps -------------------------------------------------------------------------
LINES = [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"}, {"sku": "SKU-2", "quantity": 1, "unit_price": "5.00"}]


def create_order(
    runtime: Any,
    *,
    customer: str = "alice",
    items: list[dict[str, Any]] | None = None,
    token: str | None = None,
    correlation_id: str | None = None,
) -> str:
    """CreateOrder through the orders runtime, as the HTTP command handler does."""
    from cairn.commands import CommandContext
    from orders.domain import CreateOrder

    order_id = f"order-{uuid.uuid4()}"
    intent = None
    if token is not None:
        from orders.app import payment_intents

        intent = payment_intents().create(order_id, token)  # as POST /orders does
    runtime.handle(
        order_id,
        CreateOrder(
            order_id=order_id,
            customer_id=customer,
            items=items or LINES,
            currency="USD",
            payment_intent=intent,
        ),
        context=CommandContext(correlation_id=correlation_id or str(uuid.uuid4()), actor=customer),
    )
    return order_id


def order_command(runtime: Any, order_id: str, command: Any, actor: str = "staff") -> Any:
    from cairn.commands import CommandContext

    return runtime.handle(order_id, command, context=CommandContext(correlation_id=str(uuid.uuid4()), actor=actor))


def stream_events(runtime: Any, stream_id: str) -> list[Any]:
    return list(runtime.store.read(stream_id))


def publish(cloud: Cloud, context: Any, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the publisher Lambda on ``records`` (default: the stream's new records)."""
    from cairn_platform import publisher

    if records is None:
        records = cloud.stream_records()
    return publisher.handler({"Records": records}, context)


def deliver(cloud: Cloud, consumer: str, handler: Any, context: Any) -> dict[str, Any]:
    """Drain the consumer's queue into one invocation of its handler."""
    event = cloud.receive(consumer)
    if not event["Records"]:
        return {"batchItemFailures": []}
    return handler(event, context)


def http_event(
    method: str,
    path: str,
    *,
    sub: str | None = "alice",
    groups: str | None = None,
    query: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event as the JWT authorizer passes it."""
    context: dict[str, Any] = {
        "accountId": ACCOUNT,
        "apiId": "api",
        "domainName": "api.example.com",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
        "requestId": str(uuid.uuid4()),
        "routeKey": f"{method} {path}",
        "stage": "$default",
        "time": "26/Nov/2026:08:30:00 +0000",
        "timeEpoch": 1795768200000,
    }
    if sub is not None:
        claims = {"sub": sub, "iss": "https://issuer", "aud": "cairn"}
        if groups is not None:
            claims["cognito:groups"] = groups
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"host": "api.example.com"},
        "queryStringParameters": query,
        "pathParameters": path_parameters,
        "requestContext": context,
        "isBase64Encoded": False,
    }
