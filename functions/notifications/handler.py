"""Notifications consumer: SQS (<- rule OrderCreated / PaymentProcessed / OrderShipped /
OrderDelivered) -> one stored notification per milestone (email via SES when switched on).
"""

from __future__ import annotations

from integration import IntegrationEvent
from integration.consumer import SqsConsumer

ACCEPTS = frozenset({("OrderCreated", 1), ("PaymentProcessed", 1), ("OrderShipped", 1), ("OrderDelivered", 1)})


def handle(event: IntegrationEvent) -> None:
    from notifications import service
    from notifications.app import sender, store

    outcome = service.handle(store(), event, sender())
    if outcome is service.Outcome.DUPLICATE:
        consumer.count("DuplicatesSkipped")
    consumer.logger.info(
        "notification handled",
        extra={"integration_event_id": event.id, "type": event.type, "order_id": event.subject, "outcome": outcome},
    )


consumer = SqsConsumer(ACCEPTS, handle)
handler = consumer.handler
