"""The order service's outbound mapping: internal order events -> integration events (v1).

This is where "only what other services need leaves the service" is enforced: each internal
event type maps explicitly to a contract, fields are copied one by one, and the internal
metadata (actor, command id) stays inside. Pure: imports the order domain and the contracts.
"""

from __future__ import annotations

from collections.abc import Callable

from cairn.events import EventEnvelope
from integration.envelope import IntegrationEvent, integration_event_id
from integration.orders import (
    OrderCancelledData,
    OrderCancelledV1,
    OrderCreatedData,
    OrderCreatedV1,
    OrderDeliveredData,
    OrderDeliveredV1,
    OrderLineV1,
    OrderShippedData,
    OrderShippedV1,
    OrderV1,
    PaymentFailedData,
    PaymentFailedV1,
    PaymentProcessedData,
    PaymentProcessedV1,
)
from orders import domain


def order_snapshot(state: domain.OrderState) -> OrderV1:
    """The event-carried order state (the order after the event)."""
    if state.status is None:
        raise ValueError("cannot publish an order that does not exist")
    return OrderV1(
        order_id=state.order_id,
        customer_id=state.customer_id,
        status=state.status.value,
        currency=state.currency,
        items=[OrderLineV1(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price) for line in state.items],
        total=state.total,
        email=state.email,  # sealed: ciphertext + key reference, never the plaintext (issue 12)
    )


def _created(event: domain.OrderCreated, order: OrderV1):
    return OrderCreatedV1, OrderCreatedData(order=order, payment_intent=event.payment_intent)


def _paid(event: domain.PaymentProcessed, order: OrderV1):
    return PaymentProcessedV1, PaymentProcessedData(order=order, payment_id=event.payment_id, amount=event.amount)


def _payment_failed(event: domain.PaymentFailed, order: OrderV1):
    return PaymentFailedV1, PaymentFailedData(order=order, payment_id=event.payment_id, reason=event.reason)


def _shipped(event: domain.OrderShipped, order: OrderV1):
    return OrderShippedV1, OrderShippedData(order=order, tracking=event.tracking)


def _delivered(event: domain.OrderDelivered, order: OrderV1):
    return OrderDeliveredV1, OrderDeliveredData(order=order)


def _cancelled(event: domain.OrderCancelled, order: OrderV1):
    return OrderCancelledV1, OrderCancelledData(order=order)


_MAPPERS: dict[type, Callable] = {
    domain.OrderCreated: _created,
    domain.PaymentProcessed: _paid,
    domain.PaymentFailed: _payment_failed,
    domain.OrderShipped: _shipped,
    domain.OrderDelivered: _delivered,
    domain.OrderCancelled: _cancelled,
}


def to_integration_events(envelope: EventEnvelope, state_after: domain.OrderState) -> list[IntegrationEvent]:
    """Integration events for one stored order event, given the order state after it.

    An internal event type without a mapping publishes nothing (it is internal by default).
    """
    mapper = _MAPPERS.get(type(envelope.data))
    if mapper is None:
        return []
    model, data = mapper(envelope.data, order_snapshot(state_after))
    type_name, version, source = model.contract()
    return [
        model(
            id=integration_event_id(envelope.event_id, type_name, version),
            type=type_name,
            version=version,
            source=source,
            subject=state_after.order_id,
            sequence=envelope.version,
            occurred_at=envelope.occurred_at,
            correlation_id=envelope.metadata.correlation_id,
            causation_id=envelope.event_id,
            data=data,
        )
    ]
