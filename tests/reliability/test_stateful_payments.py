"""Hypothesis state machine of the order + payment pair against a model (issue 15).

The real deciders, the real payment service and order-side consumer, the real translations to
integration events, on in-memory stores; the "bus" is two inboxes whose messages hypothesis
delivers in any order, any number of times (a delivered message may stay to be redelivered),
interleaved with the customer cancelling, staff recording a payment, and the timeout sweep.

Invariants, always: at most one charge and one refund per payment; nothing refunded that was not
captured; an order is REFUNDED only if it took the refunded payment. After every inbox drains: no
order is left waiting (CREATED with a token and an open payment), a captured payment is kept
exactly when its order took it (PAID/SHIPPED…) and refunded otherwise, and the order's status is
what the model expects from the facts (paid by the service, by staff, cancelled, timed out).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cairn.commands import CommandContext, CommandRuntime
from cairn.commands.compose import decider_of, registry_of
from cairn.store.memory import InMemoryEventStore
from integration.order_translation import to_integration_events as order_events
from integration.payment_translation import to_integration_events as payment_events
from kernel import DomainError
from orders import domain as orders
from orders import payment_events as order_side
from payments import domain as payments
from payments.gateway import FakeGateway
from payments.intents import IntentVault
from payments.service import PaymentService
from tests.budget import examples


class Vault(IntentVault):
    def __init__(self):
        self.tokens: dict[str, str] = {}

    def redeem(self, intent_id: str, order_id: str) -> str | None:
        return self.tokens.get(intent_id)

    def discard(self, intent_id: str) -> None:
        self.tokens.pop(intent_id, None)


def _runtime(domain_module, is_new):
    registry = registry_of(domain_module)
    return CommandRuntime(InMemoryEventStore(registry), decider_of(domain_module, is_new=is_new), sleep=lambda _: None)


class OrderAndPayment(RuleBasedStateMachine):
    @initialize(token=st.sampled_from(["tok_visa", "tok_visa", "tok_declined"]))
    def create(self, token: str) -> None:
        self.orders = _runtime(orders, lambda s: s.status is None)
        self.payments = _runtime(payments, lambda s: s.status is None and not s.order_closed)
        self.gateway = FakeGateway()
        self.vault = Vault()
        self.service = PaymentService(self.payments, self.gateway, self.vault)
        self.token = token
        self.order_id = f"order-{uuid.uuid4()}"
        self.payment_stream = payments.stream_id_for(payments.payment_id_for(self.order_id))
        intent = str(uuid.uuid4())
        self.vault.tokens[intent] = token
        line = orders.OrderLine(sku="SKU-1", quantity=2, unit_price=Decimal("9.99"))
        self.to_payments: list = []  # integration events waiting for the payment service
        self.to_orders: list = []  # ... for the order side
        self.published = {"order": 0, "payment": 0}
        self.staff_paid = self.cancelled = self.timed_out = False
        self._order(orders.CreateOrder(order_id=self.order_id, customer_id="alice", items=[line], currency="USD",
                                       payment_intent=intent))

    # -- plumbing: what the publisher would put on the bus ------------------------------------
    def _publish(self) -> None:
        for kind, runtime, stream, translate, inbox in (
            ("order", self.orders, self.order_id, order_events, self.to_payments),
            ("payment", self.payments, self.payment_stream, payment_events, self.to_orders),
        ):
            envelopes = list(runtime.store.read(stream, after=self.published[kind]))
            state = runtime.decider.initial_state()
            for envelope in runtime.store.read(stream):
                state = runtime.decider.evolve(state, envelope.data)
                if envelope.version > self.published[kind]:
                    inbox.extend(translate(envelope, state))
            if envelopes:
                self.published[kind] = envelopes[-1].version

    def _order(self, command) -> bool:
        try:
            self.orders.handle(self.order_id, command, context=CommandContext(actor="test"))
        except DomainError:
            return False
        finally:
            self._publish()
        return True

    # -- rules -----------------------------------------------------------------------------------
    @precondition(lambda self: self.to_payments)
    @rule(data=st.data(), keep=st.booleans())
    def deliver_to_payments(self, data, keep: bool) -> None:
        index = data.draw(st.integers(0, len(self.to_payments) - 1))
        event = self.to_payments[index] if keep else self.to_payments.pop(index)
        self.service.handle(event)
        self._publish()

    @precondition(lambda self: self.to_orders)
    @rule(data=st.data(), keep=st.booleans())
    def deliver_to_orders(self, data, keep: bool) -> None:
        index = data.draw(st.integers(0, len(self.to_orders) - 1))
        event = self.to_orders[index] if keep else self.to_orders.pop(index)
        order_side.apply(self.orders, event)
        self._publish()

    @rule()
    def customer_cancels(self) -> None:
        self.cancelled |= self._order(orders.CancelOrder(reason="changed my mind"))

    @rule()
    def staff_records_a_payment(self) -> None:
        self.staff_paid |= self._order(orders.RecordPayment(payment_id="cash-1", amount=Decimal("19.98")))

    @rule()
    def the_timeout_fires(self) -> None:
        # what PaymentTimeouts.sweep does for a due OPEN process (its table is tested in test_eda_timeouts)
        self.timed_out |= self._order(
            orders.FailPayment(payment_id=f"timeout-{self.order_id}"[:128], reason="payment-timeout")
        )

    # -- invariants ------------------------------------------------------------------------------
    def _payment(self):
        return self.payments.load(self.payment_stream)[1]

    @invariant()
    def charged_and_refunded_at_most_once(self) -> None:
        if not hasattr(self, "gateway"):
            return
        assert self.gateway.calls <= 1 or len(self.gateway.charges) <= 1
        assert len(self.gateway.charges) <= 1 and len(self.gateway.refunds) <= 1
        if self.gateway.refunds:
            (charge,) = self.gateway.charges.values()
            assert charge.succeeded  # nothing refunded that was not captured
        order = self.orders.load(self.order_id)[1]
        if order.status is orders.OrderStatus.REFUNDED:
            assert order.payment_id == self._payment().payment_id and order.paid_by == "payments"

    def teardown(self) -> None:
        if not hasattr(self, "gateway"):
            return
        for _ in range(50):  # drain: every message delivered (once more) until quiet
            if not (self.to_payments or self.to_orders):
                break
            while self.to_payments:
                self.service.handle(self.to_payments.pop(0))
                self._publish()
            while self.to_orders:
                order_side.apply(self.orders, self.to_orders.pop(0))
                self._publish()
        order = self.orders.load(self.order_id)[1]
        payment = self._payment()
        captured = bool(self.gateway.charges) and next(iter(self.gateway.charges.values())).succeeded
        took_it = order.payment_id == payment.payment_id and order.paid_by == "payments"
        # nobody waits forever: with a token the order always gets an outcome
        assert order.status is not orders.OrderStatus.CREATED
        assert payment.status in (payments.PaymentStatus.SUCCEEDED, payments.PaymentStatus.FAILED,
                                  payments.PaymentStatus.REFUNDED)
        # a capture is kept exactly when the order took it (and was not cancelled since)
        kept = captured and took_it and order.status in (orders.OrderStatus.PAID,)
        assert (payment.status is payments.PaymentStatus.SUCCEEDED) == kept
        if captured and not kept:
            assert payment.status is payments.PaymentStatus.REFUNDED and len(self.gateway.refunds) == 1
        # the order's status is what the facts say
        if order.status is orders.OrderStatus.REFUNDED:
            assert self.cancelled and took_it
        if order.status is orders.OrderStatus.PAID:
            assert (took_it and captured) or self.staff_paid
        if self.token == "tok_declined":
            assert not captured and order.status in (orders.OrderStatus.PAYMENT_FAILED, orders.OrderStatus.CANCELLED,
                                                      orders.OrderStatus.PAID)


OrderAndPayment.TestCase.settings = settings(
    max_examples=examples(60), stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderAndPayment = OrderAndPayment.TestCase
