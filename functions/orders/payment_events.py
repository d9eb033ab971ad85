"""OrderPayments consumer: the payment service's integration events -> the order's own events.

SQS (<- rule: source ``cairn.payments``, PaymentCaptured / PaymentDeclined / PaymentRefunded) ->
the orders command runtime:

- PaymentCaptured -> RecordPayment(by="payments"): the order becomes PAID;
- PaymentDeclined -> FailPayment: PAYMENT_FAILED (inventory releases the stock);
- PaymentRefunded -> RecordRefund(by="payments"): a cancelled order that took this payment
  becomes REFUNDED.

Idempotent and order-tolerant: every command carries the idempotency key
``payments/<integration event id>`` and the decider treats the same payment/refund as done; a
command the order refuses (it was cancelled, timed out, paid otherwise, or a late capture after
its refund) is acknowledged — the payment service refunds what the order did not take, and the
order consumes the refund only if it had taken that payment. Nothing here is stuck on order:
each event is decided against the order's current state.
"""

from __future__ import annotations

from cairn.commands import CommandContext
from cairn.store.base import fingerprint_of
from integration import IntegrationEvent
from integration.consumer import SqsConsumer
from kernel import DomainError, NotFoundError
from orders import domain

ACCEPTS = frozenset({("PaymentCaptured", 1), ("PaymentDeclined", 1), ("PaymentRefunded", 1)})
ACTOR = "payments"


def command_for(event: IntegrationEvent):
    payment = event.data.payment
    if event.type == "PaymentCaptured":
        return domain.RecordPayment(payment_id=payment.payment_id, amount=payment.amount, by="payments")
    if event.type == "PaymentDeclined":
        return domain.FailPayment(payment_id=payment.payment_id, reason=event.data.reason[:500] or "declined")
    if event.type == "PaymentRefunded":
        return domain.RecordRefund(
            refund_id=event.data.refund_id or payment.payment_id,
            amount=event.data.amount,
            by="payments",
            payment_id=payment.payment_id,
        )
    raise TypeError(f"orders does not handle {event.type}")


def apply(runtime, event: IntegrationEvent) -> str:
    """Apply one payment outcome to its order; returns what happened (for logs and tests)."""
    order_id = event.subject
    if not order_id.startswith("order-"):
        return "ignored"
    command = command_for(event)
    context = CommandContext(correlation_id=event.correlation_id, causation_id=event.id, actor=ACTOR)
    try:
        result = runtime.handle(
            order_id,
            command,
            context=context,
            idempotency_key=f"payments/{event.id}",
            fingerprint=fingerprint_of(command.model_dump(mode="json")),
        )
    except NotFoundError:
        return "no-order"  # never created (the create failed after the intent was written)
    except DomainError as exc:
        # the order moved on (cancelled, timed out, paid otherwise): the payment service
        # compensates what the order did not take
        return f"refused:{exc.code}"
    return "applied" if result.events else "already"


def handle(event: IntegrationEvent) -> str:
    from orders.app import runtime

    outcome = apply(runtime(), event)
    consumer.logger.info(
        "payment outcome", extra={"order_id": event.subject, "type": event.type, "outcome": outcome}
    )
    return outcome


consumer = SqsConsumer(ACCEPTS, handle)
handler = consumer.handler
