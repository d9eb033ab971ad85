"""The payment service's outbound mapping: stored payment events -> integration events (v1).

PaymentRequested and OrderClosed stay inside (nothing another service acts on); the outcome of a
payment leaves. Pure: imports the payment domain and the contracts.
"""

from __future__ import annotations

from cairn.events import EventEnvelope
from integration.envelope import integration_event_id
from integration.payments import (
    PaymentCapturedData,
    PaymentCapturedV1,
    PaymentDeclinedData,
    PaymentDeclinedV1,
    PaymentRefundedData,
    PaymentRefundedV1,
    PaymentV1,
)
from payments import domain


def payment_snapshot(state: domain.PaymentState) -> PaymentV1:
    if state.status is None:
        raise ValueError("cannot publish a payment that was never requested")
    return PaymentV1(
        payment_id=state.payment_id,
        order_id=state.order_id,
        status=state.status.value,
        amount=state.amount,
        currency=state.currency,
    )


def to_integration_events(envelope: EventEnvelope, state_after: domain.PaymentState) -> list:
    event = envelope.data
    if isinstance(event, domain.PaymentSucceeded):
        model, data = PaymentCapturedV1, PaymentCapturedData(payment=payment_snapshot(state_after))
    elif isinstance(event, domain.PaymentFailed):
        model, data = PaymentDeclinedV1, PaymentDeclinedData(
            payment=payment_snapshot(state_after), reason=event.reason, charged=event.charged
        )
    elif isinstance(event, domain.PaymentRefunded):
        model, data = PaymentRefundedV1, PaymentRefundedData(
            payment=payment_snapshot(state_after), amount=event.amount, refund_id=event.refund_id
        )
    else:
        return []
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
