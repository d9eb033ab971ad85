"""The order decider: every rule of API.md's order table, and the status machine against a model."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from pydantic import ValidationError

from kernel import AlreadyExistsError, InvalidTransitionError, NotFoundError
from kernel.money import MAX_AMOUNT
from orders import domain
from orders.domain import (
    CancelOrder,
    CreateOrder,
    DeliverOrder,
    FailPayment,
    OrderCreated,
    OrderDelivered,
    OrderLine,
    OrderShipped,
    OrderStatus,
    PaymentFailed,
    PaymentMismatchError,
    PaymentProcessed,
    RecordPayment,
    ShipOrder,
    decide,
    evolve,
    initial_state,
)
from tests.budget import examples


def line(sku: str = "SKU-1", quantity: int = 1, unit_price: str = "9.99") -> dict:
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price}


def create(items: list[dict] | None = None, **kw) -> CreateOrder:
    return CreateOrder(
        order_id=kw.pop("order_id", "order-1"),
        customer_id=kw.pop("customer_id", "alice"),
        items=items if items is not None else [line()],
        currency=kw.pop("currency", "USD"),
        **kw,
    )


def run(*commands):
    """Decide and evolve each command in turn; returns (state, all events)."""
    state, events = initial_state(), []
    for command in commands:
        new = decide(command, state)
        for event in new:
            state = evolve(state, event)
        events.extend(new)
    return state, events


# -- creation ---------------------------------------------------------------------------------
def test_create_computes_total_and_starts_created():
    state, events = run(create([line("A", 3, "9.99"), line("B", 2, "0.01")], payment_intent="intent-1"))
    assert [type(e) for e in events] == [OrderCreated]
    assert events[0].total == Decimal("29.99")
    assert state.status is OrderStatus.CREATED
    assert state.total == Decimal("29.99")
    assert state.customer_id == "alice"
    assert state.payment_intent == "intent-1"
    assert events[0].model_dump(mode="json")["total"] == "29.99"  # money is a string in JSON


def test_create_twice_is_rejected():
    state, _ = run(create())
    with pytest.raises(AlreadyExistsError) as err:
        decide(create(), state)
    assert err.value.status == 409 and err.value.code == "already-exists"


@pytest.mark.parametrize(
    "items",
    [
        [],  # at least one item
        [line(quantity=0)],
        [line(quantity=1001)],
        [line(quantity=-1)],
        [line(unit_price="0")],  # unit price must be positive
        [line(unit_price="-1.00")],
        [line(unit_price="1.999")],  # at most 2 fraction digits
        [line(unit_price="1000000.01")],  # unit price limit
        [line(unit_price="abc")],
        [line(sku="")],
        [line(sku="has space")],
        [line(sku="x" * 65)],
        [line()] * 101,  # at most 100 items
    ],
)
def test_invalid_items_are_rejected_by_validation(items):
    with pytest.raises(ValidationError):
        create(items)


def test_boundaries_are_accepted():
    create([line(quantity=1000, unit_price="1000000.00")])
    create([line(quantity=1)] * 100)
    create([line(unit_price="0.01")])


def test_money_rejects_floats_and_quantity_rejects_strings():
    with pytest.raises(ValidationError):
        OrderLine(sku="A", quantity=1, unit_price=9.99)
    with pytest.raises(ValidationError):
        OrderLine(sku="A", quantity="1", unit_price="9.99")
    with pytest.raises(ValidationError):
        OrderLine(sku="A", quantity=1.0, unit_price="9.99")


@pytest.mark.parametrize("currency", ["usd", "US", "USDD", "", "U1D"])
def test_currency_is_three_upper_case_letters(currency):
    with pytest.raises(ValidationError):
        create(currency=currency)


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError):
        ShipOrder(tracking="T", carrier="x")


def test_order_total_above_the_money_limit_is_a_validation_error_not_a_crash():
    # 100 lines x 1000 units x 1,000,000.00 = 1e11, above what the Money type can carry
    with pytest.raises(ValidationError) as err:
        create([line(quantity=1000, unit_price="1000000.00")] * 100)
    assert "total" in str(err.value)


# -- commands on a missing order --------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        RecordPayment(payment_id="p", amount="1.00"),
        FailPayment(payment_id="p", reason="declined"),
        ShipOrder(tracking="T"),
        DeliverOrder(),
        CancelOrder(reason="changed my mind"),
    ],
)
def test_commands_on_a_missing_order_are_not_found(command):
    with pytest.raises(NotFoundError) as err:
        decide(command, initial_state())
    assert err.value.status == 404


# -- payment ----------------------------------------------------------------------------------
def test_payment_must_equal_total():
    state, _ = run(create([line(quantity=2, unit_price="5.00")]))
    with pytest.raises(PaymentMismatchError) as err:
        decide(RecordPayment(payment_id="p1", amount="9.99"), state)
    assert err.value.status == 409 and err.value.code == "payment-amount-mismatch"
    with pytest.raises(PaymentMismatchError):
        decide(RecordPayment(payment_id="p1", amount="10.01"), state)
    events = decide(RecordPayment(payment_id="p1", amount="10"), state)  # 10 == 10.00
    assert events == [PaymentProcessed(payment_id="p1", amount=Decimal("10.00"), by="staff")]


def test_same_payment_twice_is_a_no_op_but_another_payment_is_rejected():
    state, _ = run(create(), RecordPayment(payment_id="p1", amount="9.99"))
    assert state.status is OrderStatus.PAID
    assert decide(RecordPayment(payment_id="p1", amount="9.99"), state) == []
    with pytest.raises(InvalidTransitionError):
        decide(RecordPayment(payment_id="p2", amount="9.99"), state)


def test_failed_payment_and_repeat():
    state, events = run(create(), FailPayment(payment_id="p1", reason="declined"))
    assert state.status is OrderStatus.PAYMENT_FAILED
    assert state.reason == "declined"
    assert isinstance(events[-1], PaymentFailed)
    assert decide(FailPayment(payment_id="p1", reason="declined"), state) == []
    for command in (RecordPayment(payment_id="p2", amount="9.99"), ShipOrder(tracking="T"), CancelOrder(reason="r")):
        with pytest.raises(InvalidTransitionError):
            decide(command, state)


# -- the happy path and the transitions API.md forbids ----------------------------------------
def test_full_lifecycle():
    state, events = run(
        create(),
        RecordPayment(payment_id="p1", amount="9.99"),
        ShipOrder(tracking="ABC123"),
        DeliverOrder(),
    )
    assert [type(e) for e in events] == [OrderCreated, PaymentProcessed, OrderShipped, OrderDelivered]
    assert state.status is OrderStatus.DELIVERED
    assert state.tracking == "ABC123"
    assert state.payment_id == "p1"


def test_ship_requires_paid():
    state, _ = run(create())
    with pytest.raises(InvalidTransitionError) as err:
        decide(ShipOrder(tracking="T"), state)
    assert err.value.code == "invalid-transition" and err.value.status == 409
    assert "CREATED" in err.value.detail and "PAID" in err.value.detail


def test_deliver_requires_shipped():
    state, _ = run(create(), RecordPayment(payment_id="p", amount="9.99"))
    with pytest.raises(InvalidTransitionError):
        decide(DeliverOrder(), state)


@pytest.mark.parametrize("paid", [False, True])
def test_cancel_before_shipping(paid):
    commands = [create()] + ([RecordPayment(payment_id="p", amount="9.99")] if paid else [])
    state, _ = run(*commands, CancelOrder(reason="no longer needed"))
    assert state.status is OrderStatus.CANCELLED
    assert state.reason == "no longer needed"


def test_cancel_after_shipping_is_rejected():
    state, _ = run(create(), RecordPayment(payment_id="p", amount="9.99"), ShipOrder(tracking="T"))
    with pytest.raises(InvalidTransitionError):
        decide(CancelOrder(reason="too late"), state)


def test_cancelled_order_is_final():
    state, _ = run(create(), CancelOrder(reason="r"))
    for command in (
        RecordPayment(payment_id="p", amount="9.99"),
        ShipOrder(tracking="T"),
        DeliverOrder(),
        CancelOrder(reason="again"),
    ):
        with pytest.raises(InvalidTransitionError):
            decide(command, state)


def test_evolve_ignores_unknown_events():
    from pydantic import BaseModel

    class Unrelated(BaseModel):
        x: int = 1

    state, _ = run(create())
    assert evolve(state, Unrelated()) == state


def test_state_dict_round_trip():
    state, _ = run(create([line("A", 2, "1.50")]), RecordPayment(payment_id="p", amount="3.00"), ShipOrder(tracking="T"))
    assert domain.state_from_dict(domain.state_to_dict(state)) == state
    assert domain.state_from_dict(domain.state_to_dict(initial_state())) == initial_state()


def test_every_event_type_is_registered_with_a_schema_version():
    from orders.app import registry

    assert set(registry.names()) == {t.__name__ for t in domain.EVENT_TYPES}
    assert {t.__name__ for t in domain.EVENT_TYPES} == {
        "OrderCreated",
        "PaymentProcessed",
        "OrderShipped",
        "OrderDelivered",
        "OrderCancelled",
        "PaymentFailed",
        "PaymentRefunded",
        "PersonalDataErased",  # issue 12: the erasure record (stream erasure-<sub>)
    }


# -- property tests ---------------------------------------------------------------------------
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000.00"), places=2)
lines = st.builds(
    lambda sku, q, p: line(sku, q, str(p)),
    st.from_regex(r"[A-Z][A-Z0-9-]{0,8}", fullmatch=True),
    st.integers(1, 1000),
    prices,
)


@given(st.lists(lines, min_size=1, max_size=100))
@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.too_slow])
def test_total_is_the_exact_sum_of_lines(items):
    expected = sum(Decimal(i["unit_price"]) * i["quantity"] for i in items)
    if expected > Decimal("1000000000.00"):
        with pytest.raises(ValidationError):
            create(items)
        return
    (event,) = decide(create(items), initial_state())
    assert event.total == expected
    assert event.total.as_tuple().exponent == -2


@given(st.integers(-100_000, 100_000), st.booleans())
def test_prices_with_three_fraction_digits_are_rejected(thousandths, three_digits):
    amount = Decimal(thousandths).scaleb(-3)
    text = format(amount, "f") if three_digits else format(amount.quantize(Decimal("0.01")), "f")
    if three_digits or Decimal(text) <= 0:
        with pytest.raises(ValidationError):
            OrderLine(sku="A", quantity=1, unit_price=text)
    else:
        assert OrderLine(sku="A", quantity=1, unit_price=text).unit_price == Decimal(text)


# The status machine of API.md as a table: (action, from) -> to. Anything else is invalid.
MODEL = {
    ("pay", OrderStatus.CREATED): OrderStatus.PAID,
    ("fail_payment", OrderStatus.CREATED): OrderStatus.PAYMENT_FAILED,
    ("ship", OrderStatus.PAID): OrderStatus.SHIPPED,
    ("deliver", OrderStatus.SHIPPED): OrderStatus.DELIVERED,
    ("cancel", OrderStatus.CREATED): OrderStatus.CANCELLED,
    ("cancel", OrderStatus.PAID): OrderStatus.CANCELLED,
}


class OrderMachine(RuleBasedStateMachine):
    """Random command sequences: the decider must agree with the table at every step."""

    def __init__(self):
        super().__init__()
        self.state = initial_state()
        self.events: list = []
        self.status: OrderStatus | None = None  # the model
        self.payment_id: str | None = None
        self.total = Decimal("0")

    def _apply(self, command, action: str, *, same_payment: bool = False):
        expected = MODEL.get((action, self.status))
        if self.status is None:
            with pytest.raises(NotFoundError):
                decide(command, self.state)
            return
        if same_payment:
            assert decide(command, self.state) == []
            return
        if expected is None:
            with pytest.raises(InvalidTransitionError):
                decide(command, self.state)
            return
        new = decide(command, self.state)
        assert len(new) == 1
        for event in new:
            self.state = evolve(self.state, event)
        self.events.extend(new)
        self.status = expected

    @initialize(items=st.lists(lines, min_size=1, max_size=3).filter(
        lambda items: sum(Decimal(i["unit_price"]) * i["quantity"] for i in items) < MAX_AMOUNT))
    def create(self, items):
        # Within the domain's limit, so a payment of total + 0.01 (the "wrong amount" rule) is itself a
        # valid amount and the model's PaymentMismatchError is what the decider must answer.
        command = create(items)
        (event,) = decide(command, self.state)
        self.state = evolve(self.state, event)
        self.events.append(event)
        self.status = OrderStatus.CREATED
        self.total = event.total

    @rule()
    def create_again(self):
        with pytest.raises(AlreadyExistsError):
            decide(create(), self.state)

    @rule(payment_id=st.sampled_from(["p1", "p2"]), exact=st.sampled_from([True, True, True, False]))
    def pay(self, payment_id, exact):
        amount = self.total if exact else self.total + Decimal("0.01")
        command = RecordPayment(payment_id=payment_id, amount=str(amount))
        same = self.status is OrderStatus.PAID and self.payment_id == payment_id
        if self.status is OrderStatus.CREATED and not exact:
            with pytest.raises(PaymentMismatchError):
                decide(command, self.state)
            return
        before = self.status
        self._apply(command, "pay", same_payment=same)
        if before is OrderStatus.CREATED:
            self.payment_id = payment_id

    @rule(payment_id=st.sampled_from(["p1", "p2"]))
    def fail_payment(self, payment_id):
        same = self.status is OrderStatus.PAYMENT_FAILED and self.payment_id == payment_id
        before = self.status
        self._apply(FailPayment(payment_id=payment_id, reason="declined"), "fail_payment", same_payment=same)
        if before is OrderStatus.CREATED:
            self.payment_id = payment_id

    @rule()
    def ship(self):
        self._apply(ShipOrder(tracking="T1"), "ship")

    @rule()
    def deliver(self):
        self._apply(DeliverOrder(), "deliver")

    @rule()
    def cancel(self):
        self._apply(CancelOrder(reason="r"), "cancel")

    @invariant()
    def decider_agrees_with_model(self):
        assert self.state.status == self.status

    @invariant()
    def state_is_the_fold_of_its_events(self):
        state = initial_state()
        for event in self.events:
            state = evolve(state, event)
        assert state == self.state
        assert domain.state_from_dict(domain.state_to_dict(state)) == state

    @invariant()
    def versions_are_one_per_transition(self):
        # at most: created, paid/failed, shipped, delivered (or cancelled)
        assert len(self.events) <= 4


TestOrderStatusMachine = OrderMachine.TestCase
TestOrderStatusMachine.settings = settings(max_examples=examples(150), stateful_step_count=25, deadline=None)


def test_every_command_sequence_up_to_length_6_matches_the_model():
    """Exhaustive: the machine is small enough to check every path, not just random ones."""
    import itertools

    commands = {
        "pay": RecordPayment(payment_id="p1", amount="9.99"),
        "pay_other": RecordPayment(payment_id="p2", amount="9.99"),
        "fail_payment": FailPayment(payment_id="p1", reason="declined"),
        "ship": ShipOrder(tracking="T"),
        "deliver": DeliverOrder(),
        "cancel": CancelOrder(reason="r"),
    }
    start, _ = run(create())
    checked = 0
    for path in itertools.product(commands, repeat=6):
        state, status, paid_by = start, OrderStatus.CREATED, None
        for name in path:
            action = "pay" if name == "pay_other" else name
            payment_id = getattr(commands[name], "payment_id", None)
            expected = MODEL.get((action, status))
            repeat = action in ("pay", "fail_payment") and paid_by == payment_id and status in (
                OrderStatus.PAID,
                OrderStatus.PAYMENT_FAILED,
            ) and {"pay": OrderStatus.PAID, "fail_payment": OrderStatus.PAYMENT_FAILED}[action] is status
            if repeat:
                assert decide(commands[name], state) == []
            elif expected is None:
                with pytest.raises(InvalidTransitionError):
                    decide(commands[name], state)
            else:
                (event,) = decide(commands[name], state)
                state = evolve(state, event)
                if action in ("pay", "fail_payment"):
                    paid_by = payment_id
                status = expected
            assert state.status is status
            checked += 1
    assert checked == 6**6 * 6


# -- refunds (issue 15) ----------------------------------------------------------------------
def _paid_then_cancelled(by: str = "staff"):
    state, _ = run(create([line("A", 1, "10.00")]))
    for command in (RecordPayment(payment_id="p1", amount="10.00", by=by), CancelOrder(reason="no")):
        for event in decide(command, state):
            state = evolve(state, event)
    return state


def test_refund_of_a_cancelled_paid_order():
    state = _paid_then_cancelled()
    (event,) = decide(domain.RecordRefund(refund_id="r1", amount="10.00"), state)
    after = evolve(state, event)
    assert after.status is OrderStatus.REFUNDED
    assert decide(domain.RecordRefund(refund_id="r1", amount="10.00"), after) == []  # recorded twice


@pytest.mark.parametrize(
    ("state_of", "command", "error"),
    [
        (lambda: _paid_then_cancelled(), domain.RecordRefund(refund_id="r1", amount="9.99"), domain.RefundMismatchError),
        (lambda: _paid_then_cancelled("payments"), domain.RecordRefund(refund_id="r1", amount="10.00"),
         domain.RefundedByPaymentServiceError),
        (lambda: run(create([line("A", 1, "10.00")]))[0], domain.RecordRefund(refund_id="r1", amount="10.00"),
         domain.NotPaidError),
    ],
)
def test_refund_refusals_are_409s_with_their_types(state_of, command, error):
    with pytest.raises(error) as caught:
        decide(command, state_of())
    assert caught.value.status == 409
