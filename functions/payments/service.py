"""The payment service: charges orders it is asked to, refunds what their orders no longer take.

Inputs are the order service's integration events only (never its streams or code):

- ``OrderCreated`` with a ``payment_intent``: request the payment (stream id derived from the order
  id, so a redelivery finds it), redeem the intent (decrypt the token), charge with the payment id
  as the gateway's idempotency key, settle, delete the intent. Not charged when the order was
  already closed (a reordered cancellation came first) or the intent expired.
- ``OrderCancelled``, ``PaymentFailed`` (the order's: declined or timed out) and ``PaymentProcessed``
  of *another* payment (staff recorded one): the order no longer takes this payment —
  ``OrderClosed``; a captured payment is then refunded.

After a charge settles as captured, a closed order is refunded too (the cancellation or timeout
arrived while the charge was in flight). Every step is a conditional append on the payment
stream, re-decided on conflict, and the decider treats repeats as done: nothing is charged or
refunded twice whatever the delivery order or count. Outcomes reach the order service as
integration events published from the payment stream (PaymentCaptured/Declined/Refunded).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from cairn.commands import CommandContext, CommandResult, CommandRuntime
from cairn.store.base import fingerprint_of
from integration import IntegrationEvent, OrderCreatedV1
from payments import domain
from payments.gateway import PaymentGateway
from payments.intents import IntentVault

logger = logging.getLogger(__name__)

ACTOR = "payments"


class Outcome(StrEnum):
    SKIPPED = "skipped"  # nothing to do (no intent; an event about another payment)
    PAID = "paid"  # captured
    FAILED = "failed"  # declined / not charged
    REFUNDED = "refunded"  # captured, then refunded (the order no longer takes it)
    CLOSED = "closed"  # the order is closed for this payment; nothing captured to refund


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: Outcome
    payment_id: str | None = None


CommandObserver = Callable[[str, float, CommandResult], None]


class PaymentService:
    def __init__(
        self,
        payments: CommandRuntime,
        gateway: PaymentGateway,
        vault: IntentVault,
        observe: CommandObserver | None = None,
    ):
        self.payments = payments
        self.gateway = gateway
        self.vault = vault
        self.observe = observe

    def handle(self, event: IntegrationEvent) -> PaymentResult:
        order = event.data.order
        payment_id = domain.payment_id_for(order.order_id)
        if isinstance(event, OrderCreatedV1):
            return self.on_order_created(event)
        if event.type == "PaymentProcessed" and event.data.payment_id == payment_id:
            return PaymentResult(Outcome.SKIPPED, payment_id)  # the order took this very payment
        if event.type == "PaymentFailed" and event.data.payment_id == payment_id:
            reason = "order-payment-failed"
        else:
            reason = {"OrderCancelled": "order-cancelled", "PaymentFailed": "order-payment-failed",
                      "PaymentProcessed": "order-paid-otherwise"}.get(event.type)
        if reason is None:
            return PaymentResult(Outcome.SKIPPED)
        return self.on_order_closed(event, payment_id, reason)

    # -- inputs ---------------------------------------------------------------------------------
    def on_order_created(self, event: OrderCreatedV1) -> PaymentResult:
        intent = event.data.payment_intent
        if not intent:
            return PaymentResult(Outcome.SKIPPED)
        order = event.data.order
        payment_id = domain.payment_id_for(order.order_id)
        stream_id = domain.stream_id_for(payment_id)
        requested = self._run(
            stream_id,
            domain.RequestPayment(
                payment_id=payment_id,
                order_id=order.order_id,
                customer_id=order.customer_id,
                amount=order.total,
                currency=order.currency,
                intent_id=intent,
            ),
            event,
        )
        state: domain.PaymentState = requested.state
        if state.status is domain.PaymentStatus.REQUESTED:
            settle = self._charge(state, intent)
            state = self._run(stream_id, settle, event).state
            self.vault.discard(intent)
        return self._settled(event, state, stream_id)

    def on_order_closed(self, event: IntegrationEvent, payment_id: str, reason: str) -> PaymentResult:
        stream_id = domain.stream_id_for(payment_id)
        closed = self._run(
            stream_id, domain.CloseOrder(payment_id=payment_id, order_id=event.subject, reason=reason), event
        )
        return self._settled(event, closed.state, stream_id)

    # -- steps ----------------------------------------------------------------------------------
    def _charge(self, state: domain.PaymentState, intent: str) -> domain.SettlePayment:
        if state.order_closed:
            logger.info("order %s is closed: payment %s not charged", state.order_id, state.payment_id)
            return domain.SettlePayment(succeeded=False, reason="order-closed", charged=False)
        token = self.vault.redeem(intent, state.order_id)
        if token is None:
            return domain.SettlePayment(succeeded=False, reason="payment-intent-expired", charged=False)
        result = self.gateway.charge(token, state.amount, state.currency, idempotency_key=state.payment_id)
        if result.succeeded:
            return domain.SettlePayment(succeeded=True, gateway_reference=result.reference)
        return domain.SettlePayment(succeeded=False, reason=result.decline_code or "declined")

    def _settled(self, event: IntegrationEvent, state: domain.PaymentState, stream_id: str) -> PaymentResult:
        """Where the payment stands; a captured payment of a closed order is refunded here."""
        status = state.status
        if status is domain.PaymentStatus.SUCCEEDED and state.order_closed:
            reference = state.gateway_reference or ""
            refund_id = self.gateway.refund(reference, state.amount, idempotency_key=f"{state.payment_id}/refund")
            self._run(
                stream_id,
                domain.RefundPayment(reason="order-closed", gateway_reference=reference, refund_id=refund_id),
                event,
            )
            return PaymentResult(Outcome.REFUNDED, state.payment_id)
        outcome = {
            domain.PaymentStatus.SUCCEEDED: Outcome.PAID,
            domain.PaymentStatus.FAILED: Outcome.FAILED,
            domain.PaymentStatus.REFUNDED: Outcome.REFUNDED,
        }.get(status, Outcome.CLOSED if state.order_closed else Outcome.SKIPPED)
        return PaymentResult(outcome, state.payment_id or None)

    # -- helpers ------------------------------------------------------------------------------
    def _run(self, stream_id: str, command, event: IntegrationEvent) -> CommandResult:
        """One payment command, keyed by the integration event that caused it: a redelivered (or
        concurrently delivered) message replays instead of deciding again."""
        started = time.perf_counter()
        context = CommandContext(correlation_id=event.correlation_id, causation_id=event.id, actor=ACTOR)
        result = self.payments.handle(
            stream_id,
            command,
            context=context,
            idempotency_key=f"payments/{event.id}/{command.kind}",
            fingerprint=fingerprint_of(command.model_dump(mode="json")),
        )
        if self.observe is not None:
            self.observe(command.kind, (time.perf_counter() - started) * 1000, result)
        if result.replayed:  # a replay carries no state: read where the payment stands now
            result = replace(result, state=self.payments.load(stream_id)[1])
        return result
