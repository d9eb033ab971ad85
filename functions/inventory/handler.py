"""Inventory consumer: SQS (<- rule OrderCreated / OrderCancelled / PaymentFailed) -> reservations.

Thin: parse, apply, report partial batch failures. Duplicates are acknowledged (counted as
``DuplicatesSkipped``); failures return to the queue, then go to the DLQ (alarmed).
"""

from __future__ import annotations

from integration import IntegrationEvent
from integration.consumer import SqsConsumer

ACCEPTS = frozenset({("OrderCreated", 1), ("OrderCancelled", 1), ("PaymentFailed", 1)})


def handle(event: IntegrationEvent) -> None:
    from inventory import service
    from inventory.app import store

    outcomes = service.handle(store(), event)
    duplicates = sum(1 for o in outcomes if not o.applied)
    if duplicates:
        consumer.count("DuplicatesSkipped", duplicates)
    consumer.logger.info(
        "inventory updated",
        extra={
            "integration_event_id": event.id,
            "type": event.type,
            "order_id": event.subject,
            "actions": [f"{o.chunk}:{o.action.value}{'' if o.applied else ' (duplicate)'}" for o in outcomes],
        },
    )


consumer = SqsConsumer(ACCEPTS, handle)
handler = consumer.handler
