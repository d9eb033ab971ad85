"""Payments consumer: SQS (<- rule OrderCreated with a payment_token) -> PaymentService.

Thin: parse, call, report partial batch failures (only the failed messages return to the
queue; after maxReceiveCount they go to the DLQ, which has an alarm).
"""

from __future__ import annotations

from integration import IntegrationEvent, OrderCreatedV1
from integration.consumer import SqsConsumer

ACCEPTS = frozenset({("OrderCreated", 1)})


def observe(kind: str, latency_ms: float, result) -> None:
    """The command metrics of docs/architecture.md, for the payment and order commands run here."""
    consumer.latency("CommandLatency", latency_ms)
    if result.retries:
        consumer.count("ConflictsRetried", result.retries)
    if result.replayed:
        consumer.count("IdempotentReplays")


def handle(event: IntegrationEvent) -> str:
    if not isinstance(event, OrderCreatedV1):
        raise TypeError(f"payments handles OrderCreated v1, got {event.type} v{event.version}")
    from payments.app import service

    result = service(observe).handle_order_created(event)
    consumer.logger.info(
        "payment handled",
        extra={"order_id": event.subject, "integration_event_id": event.id, "outcome": result.outcome.value},
    )
    return result.outcome.value


consumer = SqsConsumer(ACCEPTS, handle)
handler = consumer.handler
