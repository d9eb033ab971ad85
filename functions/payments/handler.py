"""Payments consumer: SQS (<- rule: the order service's OrderCreated, OrderCancelled, PaymentFailed,
PaymentProcessed) -> PaymentService.

Thin: parse, call, report partial batch failures (only the failed messages return to the
queue; after maxReceiveCount they go to the DLQ, which has an alarm).
"""

from __future__ import annotations

from integration import IntegrationEvent
from integration.consumer import SqsConsumer

ACCEPTS = frozenset({("OrderCreated", 1), ("OrderCancelled", 1), ("PaymentFailed", 1), ("PaymentProcessed", 1)})


def observe(kind: str, latency_ms: float, result) -> None:
    """The command metrics of docs/architecture.md, for the payment commands run here."""
    consumer.latency("CommandLatency", latency_ms)
    if result.retries:
        consumer.count("ConflictsRetried", result.retries)
    if result.replayed:
        consumer.count("IdempotentReplays")


def handle(event: IntegrationEvent) -> str:
    from payments.app import service

    result = service(observe).handle(event)
    consumer.logger.info(
        "payment handled",
        extra={"order_id": event.subject, "integration_event_id": event.id, "type": event.type,
               "outcome": result.outcome.value},
    )
    return result.outcome.value


consumer = SqsConsumer(ACCEPTS, handle)
handler = consumer.handler
