"""Payment timeouts: a process manager that fails orders whose payment outcome never arrives.

State (``PAYMENT_TIMEOUTS_TABLE``, one item per order: ``pk = timeout#<order id>``, ``sk = process``):

- ``OPEN`` with ``due_at`` (epoch seconds) — opened by OrderCreated carrying a payment intent,
  due ``PAYMENT_TIMEOUT_SECONDS`` after the order was created;
- ``CLOSED`` — the order's PaymentProcessed / PaymentFailed / OrderCancelled arrived (also as a
  tombstone when it arrives before OrderCreated: a late OrderCreated then opens nothing);
- ``TIMED_OUT`` — the sweep failed the order (FailPayment, reason ``payment-timeout``).

The sweep (a scheduled rule, every minute) takes OPEN items past ``due_at`` and fails their
orders through the orders runtime (idempotency key ``timeouts/<order id>``); an order that moved on
meanwhile refuses, and the item is closed. Stock is released by inventory on the order's
PaymentFailed like any failed payment; a payment captured after the timeout is refunded by the
payment service (the order's PaymentFailed closed its payment). Inspect stuck processes with
``make processes`` (``python -m cairn_tools processes``): OPEN items, overdue first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any

from cairn.commands import CommandContext
from integration import IntegrationEvent
from integration.consumer import SqsConsumer
from kernel import DomainError
from orders import domain

__all__ = ["PaymentTimeouts", "handler"]

ACTOR = "payment-timeouts"
DEFAULT_TIMEOUT_SECONDS = 900
ACCEPTS = frozenset({("OrderCreated", 1), ("PaymentProcessed", 1), ("PaymentFailed", 1), ("OrderCancelled", 1)})


def _key(order_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"timeout#{order_id}"}, "sk": {"S": "process"}}


def _epoch(occurred_at: str) -> int:
    return int(datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp())


class PaymentTimeouts:
    def __init__(self, dynamodb: Any, table: str, runtime: Any, timeout_seconds: int):
        self.dynamodb = dynamodb
        self.table = table
        self.runtime = runtime
        self.timeout_seconds = timeout_seconds

    # -- inputs -----------------------------------------------------------------------------------
    def observe(self, event: IntegrationEvent) -> str:
        order_id = event.subject
        if event.type == "OrderCreated":
            if not getattr(event.data, "payment_intent", None):
                return "no-payment"
            due = _epoch(event.occurred_at) + self.timeout_seconds
            return self._put(order_id, "OPEN", due, condition="attribute_not_exists(pk)", outcome="opened")
        return self._put(order_id, "CLOSED", None, condition="attribute_not_exists(pk) OR #s = :open", outcome="closed")

    def _put(self, order_id: str, state: str, due: int | None, *, condition: str, outcome: str) -> str:
        item = {**_key(order_id), "order_id": {"S": order_id}, "state": {"S": state},
                "updated_at": {"N": str(int(time.time()))}}
        if due is not None:
            item["due_at"] = {"N": str(due)}
        values = {":open": {"S": "OPEN"}} if ":open" in condition else None
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=item, ConditionExpression=condition,
                **({"ExpressionAttributeNames": {"#s": "state"}, "ExpressionAttributeValues": values} if values else {}),
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return "unchanged"  # already decided (a redelivery, or a tombstone / timeout came first)
        return outcome

    # -- the sweep ----------------------------------------------------------------------------
    def open_processes(self) -> Iterator[dict[str, Any]]:
        """Every OPEN process (``order_id``, ``due_at``). A Scan: fine for the open few; see docs/eda.md."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "FilterExpression": "#s = :open",
            "ExpressionAttributeNames": {"#s": "state"}, "ExpressionAttributeValues": {":open": {"S": "OPEN"}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                yield {"order_id": item["order_id"]["S"], "due_at": int(item["due_at"]["N"])}
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def sweep(self, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        counts = {"timed_out": 0, "closed": 0, "open": 0}
        for process in self.open_processes():
            if process["due_at"] > now:
                counts["open"] += 1
                continue
            order_id = process["order_id"]
            command = domain.FailPayment(payment_id=f"timeout-{order_id}"[:128], reason="payment-timeout")
            try:
                self.runtime.handle(
                    order_id, command, context=CommandContext(actor=ACTOR), idempotency_key=f"timeouts/{order_id}",
                    fingerprint="timeout",
                )
                state, key = "TIMED_OUT", "timed_out"
            except DomainError:
                state, key = "CLOSED", "closed"  # the order moved on before the sweep
            self._put(order_id, state, process["due_at"], condition="#s = :open", outcome=key)
            counts[key] += 1
        return counts


@cache
def timeouts() -> PaymentTimeouts:
    from cairn.aws import client
    from orders.app import runtime

    return PaymentTimeouts(
        client("dynamodb"), os.environ["PAYMENT_TIMEOUTS_TABLE"], runtime(),
        int(os.environ.get("PAYMENT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)),
    )


def _observe(event: IntegrationEvent) -> str:
    return timeouts().observe(event)


consumer = SqsConsumer(ACCEPTS, _observe)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batches (the order events) or the scheduled rule's event (the sweep)."""
    if event.get("detail-type") == "Scheduled Event":
        counts = timeouts().sweep()
        consumer.logger.info("payment timeouts swept", extra=counts)
        return counts
    return consumer.handler(event, context)
