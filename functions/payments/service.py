"""The payment service's reaction to OrderCreated: request -> charge -> settle -> drive the order.

Every step is idempotent, so a redelivered (or concurrently delivered) OrderCreated converges
on the same result without a second charge:

1. ``RequestPayment`` on the payment stream, whose id is derived from the order id: a repeat
   decides nothing.
2. Charge only while the payment is REQUESTED, with the payment id as the gateway's idempotency
   key (a crash between charge and settlement re-asks the gateway, which answers the same).
   Before charging, the order is read: an order that is no longer CREATED (cancelled, paid by
   staff) is not charged, the payment fails with ``charged=False``.
3. ``SettlePayment`` records PaymentSucceeded / PaymentFailed (conditional append: one wins).
4. Drive the order through the order service's command runtime (RecordPayment / FailPayment)
   with an idempotency key derived from the payment; the order decider also treats the same
   payment id as already done. If the order refuses a successful payment (it was cancelled
   meanwhile), the charge is refunded and PaymentRefunded recorded (compensation).

Correlation: the integration event's correlation id flows into every event; causation ids
chain integration event -> PaymentRequested -> PaymentSucceeded/Failed -> the order's
PaymentProcessed/PaymentFailed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cairn.commands import CommandContext, CommandResult, CommandRuntime
from cairn.events import EventEnvelope
from cairn.store.base import fingerprint_of
from integration import OrderCreatedV1
from kernel import InvalidTransitionError
from orders import domain as orders
from payments import domain
from payments.gateway import PaymentGateway

logger = logging.getLogger(__name__)

ACTOR = "payments"


class Outcome(StrEnum):
    SKIPPED = "skipped"  # no payment token: staff will record the payment
    PAID = "paid"  # the order took the payment
    FAILED = "failed"  # declined; the order is PAYMENT_FAILED
    NOT_PAYABLE = "not_payable"  # the order had moved on before the charge: nothing charged
    REFUNDED = "refunded"  # charged, but the order could no longer take it: refunded


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: Outcome
    payment_id: str | None = None
    order_version: int | None = None


# (command kind, latency in ms, result): lets the handler emit the command metrics
CommandObserver = Callable[[str, float, CommandResult], None]


class PaymentService:
    def __init__(
        self,
        payments: CommandRuntime,
        orders_runtime: CommandRuntime,
        gateway: PaymentGateway,
        order_stream_id: Callable[[str], str],
        observe: CommandObserver | None = None,
    ):
        self.payments = payments
        self.orders = orders_runtime
        self.gateway = gateway
        self.order_stream_id = order_stream_id
        self.observe = observe

    def handle_order_created(self, event: OrderCreatedV1) -> PaymentResult:
        token = event.data.payment_token
        if not token:
            return PaymentResult(Outcome.SKIPPED)
        order = event.data.order
        payment_id = domain.payment_id_for(order.order_id)
        stream_id = domain.stream_id_for(payment_id)
        order_stream = self.order_stream_id(order.order_id)

        requested = self._run(
            self.payments,
            stream_id,
            domain.RequestPayment(
                payment_id=payment_id,
                order_id=order.order_id,
                customer_id=order.customer_id,
                amount=order.total,
                currency=order.currency,
            ),
            context=self._context(event, causation_id=event.id),
        )
        state: domain.PaymentState = requested.state
        if state.status is domain.PaymentStatus.REQUESTED:
            request_event = self._last_event(stream_id, requested.events, (domain.PaymentRequested,))
            settle = self._charge(state, token, order_stream)
            settled = self._run(
                self.payments, stream_id, settle, context=self._context(event, causation_id=request_event.event_id)
            )
            state = settled.state
        return self._drive_order(event, state, stream_id, order_stream)

    # -- steps --------------------------------------------------------------------------------
    def _charge(self, state: domain.PaymentState, token: str, order_stream: str) -> domain.SettlePayment:
        _, order_state = self.orders.load(order_stream)  # fresh (not cached): is it still payable?
        if order_state.status is not orders.OrderStatus.CREATED:
            status = order_state.status.value if order_state.status else "MISSING"
            logger.info("order %s is %s: payment %s not charged", state.order_id, status, state.payment_id)
            return domain.SettlePayment(succeeded=False, reason=f"order-not-payable:{status}", charged=False)
        result = self.gateway.charge(token, state.amount, state.currency, idempotency_key=state.payment_id)
        if result.succeeded:
            return domain.SettlePayment(succeeded=True, gateway_reference=result.reference)
        return domain.SettlePayment(succeeded=False, reason=result.decline_code or "declined")

    def _drive_order(
        self, event: OrderCreatedV1, state: domain.PaymentState, stream_id: str, order_stream: str
    ) -> PaymentResult:
        if state.status is domain.PaymentStatus.REFUNDED:
            return PaymentResult(Outcome.REFUNDED, state.payment_id)
        if state.status is domain.PaymentStatus.FAILED and not state.charged:
            return PaymentResult(Outcome.NOT_PAYABLE, state.payment_id)
        settled = self._last_event(stream_id, (), (domain.PaymentSucceeded, domain.PaymentFailed))
        context = self._context(event, causation_id=settled.event_id)
        if state.status is domain.PaymentStatus.SUCCEEDED:
            command = orders.RecordPayment(payment_id=state.payment_id, amount=state.amount)
        else:
            command = orders.FailPayment(payment_id=state.payment_id, reason=state.reason or "declined")
        try:
            result = self._run(
                self.orders,
                order_stream,
                command,
                context=context,
                idempotency_key=f"payments/{state.payment_id}/{command.kind}",
                fingerprint=fingerprint_of(command.model_dump(mode="json")),
            )
        except InvalidTransitionError as exc:
            # The order moved on. If it took this very payment earlier (a redelivery after the
            # idempotency marker expired, e.g. an archive replay of a shipped order), it is done.
            version, order_state = self.orders.load(order_stream)
            if order_state.payment_id == state.payment_id:
                outcome = Outcome.PAID if state.status is domain.PaymentStatus.SUCCEEDED else Outcome.FAILED
                return PaymentResult(outcome, state.payment_id, version)
            if state.status is domain.PaymentStatus.SUCCEEDED:
                return self._refund(event, state, stream_id, settled, str(exc))
            logger.info("order %s no longer takes the failed payment %s: %s", state.order_id, state.payment_id, exc)
            return PaymentResult(Outcome.FAILED, state.payment_id)
        outcome = Outcome.PAID if state.status is domain.PaymentStatus.SUCCEEDED else Outcome.FAILED
        return PaymentResult(outcome, state.payment_id, result.version)

    def _refund(
        self, event: OrderCreatedV1, state: domain.PaymentState, stream_id: str, settled: EventEnvelope, why: str
    ) -> PaymentResult:
        logger.warning("order %s refused payment %s (%s): refunding", state.order_id, state.payment_id, why)
        reference = state.gateway_reference or ""
        self.gateway.refund(reference, state.amount, idempotency_key=f"{state.payment_id}/refund")
        self._run(
            self.payments,
            stream_id,
            domain.RefundPayment(reason="order-refused-payment", gateway_reference=reference),
            context=self._context(event, causation_id=settled.event_id),
        )
        return PaymentResult(Outcome.REFUNDED, state.payment_id)

    # -- helpers ------------------------------------------------------------------------------
    def _run(self, runtime: CommandRuntime, stream_id: str, command, **kw) -> CommandResult:
        started = time.perf_counter()
        result = runtime.handle(stream_id, command, **kw)
        if self.observe is not None:
            self.observe(command.kind, (time.perf_counter() - started) * 1000, result)
        return result

    def _context(self, event: OrderCreatedV1, *, causation_id: str) -> CommandContext:
        return CommandContext(correlation_id=event.correlation_id, causation_id=causation_id, actor=ACTOR)

    def _last_event(
        self, stream_id: str, fresh: tuple[EventEnvelope, ...], types: tuple[type, ...]
    ) -> EventEnvelope:
        """The envelope of the latest event of ``types``: from this append, else from the store."""
        for envelope in reversed(fresh):
            if isinstance(envelope.data, types):
                return envelope
        found = None
        for envelope in self.payments.store.read(stream_id):
            if isinstance(envelope.data, types):
                found = envelope
        if found is None:
            raise LookupError(f"no {', '.join(t.__name__ for t in types)} in {stream_id}")
        return found
