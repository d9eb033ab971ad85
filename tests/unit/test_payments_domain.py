"""Payment decider: request once, settle once, refund at most once; the fake gateway's semantics."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel import AlreadyExistsError, InvalidTransitionError, NotFoundError
from payments import domain
from payments.domain import (
    GatewayContradictionError,
    PaymentFailed,
    PaymentRefunded,
    PaymentRequested,
    PaymentStatus,
    PaymentSucceeded,
    RefundPayment,
    RequestPayment,
    SettlePayment,
)
from payments.gateway import FakeGateway, GatewayUnavailableError

PAYMENT_ID = domain.payment_id_for("order-1")


def request(**kw) -> RequestPayment:
    return RequestPayment(
        payment_id=kw.pop("payment_id", PAYMENT_ID),
        order_id=kw.pop("order_id", "order-1"),
        customer_id=kw.pop("customer_id", "alice"),
        amount=kw.pop("amount", "19.98"),
        currency=kw.pop("currency", "USD"),
    )


def run(*commands) -> tuple[domain.PaymentState, list]:
    state, all_events = domain.initial_state(), []
    for command in commands:
        events = domain.decide(command, state)
        for event in events:
            state = domain.evolve(state, event)
        all_events.extend(events)
    return state, all_events


def test_payment_id_is_derived_from_the_order_id():
    assert domain.payment_id_for("order-1") == domain.payment_id_for("order-1")
    assert domain.payment_id_for("order-1") != domain.payment_id_for("order-2")
    assert domain.stream_id_for(PAYMENT_ID) == f"payment-{PAYMENT_ID}"


def test_request_records_the_payment():
    state, events = run(request())
    assert events == [
        PaymentRequested(payment_id=PAYMENT_ID, order_id="order-1", customer_id="alice", amount=Decimal("19.98"), currency="USD")
    ]
    assert state.status is PaymentStatus.REQUESTED
    assert state.amount == Decimal("19.98")


def test_repeated_request_decides_nothing():
    state, _ = run(request())
    assert domain.decide(request(), state) == []


def test_request_for_another_order_on_the_same_payment_is_refused():
    state, _ = run(request())
    with pytest.raises(AlreadyExistsError):
        domain.decide(request(order_id="order-2"), state)


@pytest.mark.parametrize("amount", ["0", "-1.00", "0.00"])
def test_request_needs_a_positive_amount(amount):
    with pytest.raises(ValueError):
        request(amount=amount)


def test_settle_success_and_failure():
    state, events = run(request(), SettlePayment(succeeded=True, gateway_reference="ch_1"))
    assert events[-1] == PaymentSucceeded(
        payment_id=PAYMENT_ID, order_id="order-1", amount=Decimal("19.98"), gateway_reference="ch_1"
    )
    assert state.status is PaymentStatus.SUCCEEDED and state.charged

    state, events = run(request(), SettlePayment(succeeded=False, reason="card_declined"))
    assert events[-1] == PaymentFailed(payment_id=PAYMENT_ID, order_id="order-1", reason="card_declined", charged=True)
    assert state.status is PaymentStatus.FAILED and state.reason == "card_declined"


def test_failure_without_a_charge_is_recorded_as_such():
    state, events = run(request(), SettlePayment(succeeded=False, reason="order-not-payable:CANCELLED", charged=False))
    assert events[-1].charged is False
    assert state.status is PaymentStatus.FAILED and not state.charged


def test_success_needs_a_gateway_reference():
    state, _ = run(request())
    with pytest.raises(ValueError):
        domain.decide(SettlePayment(succeeded=True), state)


def test_settling_the_same_way_twice_decides_nothing():
    state, _ = run(request(), SettlePayment(succeeded=True, gateway_reference="ch_1"))
    assert domain.decide(SettlePayment(succeeded=True, gateway_reference="ch_1"), state) == []
    state, _ = run(request(), SettlePayment(succeeded=False, reason="x"))
    assert domain.decide(SettlePayment(succeeded=False, reason="x"), state) == []


def test_a_contradicting_settlement_is_refused():
    state, _ = run(request(), SettlePayment(succeeded=True, gateway_reference="ch_1"))
    with pytest.raises(GatewayContradictionError):
        domain.decide(SettlePayment(succeeded=False, reason="x"), state)
    state, _ = run(request(), SettlePayment(succeeded=False, reason="x"))
    with pytest.raises(GatewayContradictionError):
        domain.decide(SettlePayment(succeeded=True, gateway_reference="ch_1"), state)


def test_commands_on_a_missing_payment_are_not_found():
    with pytest.raises(NotFoundError):
        domain.decide(SettlePayment(succeeded=True, gateway_reference="ch_1"), domain.initial_state())
    with pytest.raises(NotFoundError):
        domain.decide(RefundPayment(reason="r", gateway_reference="ch_1"), domain.initial_state())


def test_refund_only_a_successful_payment_and_only_once():
    state, events = run(
        request(), SettlePayment(succeeded=True, gateway_reference="ch_1"), RefundPayment(reason="r", gateway_reference="ch_1")
    )
    assert isinstance(events[-1], PaymentRefunded) and events[-1].amount == Decimal("19.98")
    assert state.status is PaymentStatus.REFUNDED
    assert domain.decide(RefundPayment(reason="r", gateway_reference="ch_1"), state) == []
    # a late duplicate of the success after the refund is still "already done"
    assert domain.decide(SettlePayment(succeeded=True, gateway_reference="ch_1"), state) == []
    for pending in (run(request())[0], run(request(), SettlePayment(succeeded=False, reason="x"))[0]):
        with pytest.raises(InvalidTransitionError):
            domain.decide(RefundPayment(reason="r", gateway_reference="ch_1"), pending)


def test_state_round_trips_through_a_snapshot():
    state, _ = run(request(), SettlePayment(succeeded=True, gateway_reference="ch_1"))
    assert domain.state_from_dict(domain.state_to_dict(state)) == state
    assert domain.state_from_dict(domain.state_to_dict(domain.initial_state())) == domain.initial_state()


commands = st.sampled_from(
    [
        request(),
        SettlePayment(succeeded=True, gateway_reference="ch_1"),
        SettlePayment(succeeded=False, reason="card_declined"),
        RefundPayment(reason="r", gateway_reference="ch_1"),
    ]
)


@given(st.lists(commands, max_size=12))
def test_any_command_sequence_settles_at_most_once_and_refunds_at_most_once(sequence):
    state, events = domain.initial_state(), []
    for command in sequence:
        try:
            decided = domain.decide(command, state)
        except (NotFoundError, InvalidTransitionError, GatewayContradictionError):
            continue
        for event in decided:
            state = domain.evolve(state, event)
        events.extend(decided)
    kinds = [type(e) for e in events]
    assert kinds.count(PaymentRequested) <= 1
    assert kinds.count(PaymentSucceeded) + kinds.count(PaymentFailed) <= 1
    assert kinds.count(PaymentRefunded) <= kinds.count(PaymentSucceeded)
    if events:
        assert isinstance(events[0], PaymentRequested)


# -- the fake gateway -------------------------------------------------------------------------
def test_fake_gateway_test_cards():
    gateway = FakeGateway()
    ok = gateway.charge("tok_visa", Decimal("10.00"), "USD", idempotency_key="p1")
    assert ok.succeeded and ok.reference.startswith("ch_")
    declined = gateway.charge("tok_declined", Decimal("10.00"), "USD", idempotency_key="p2")
    assert not declined.succeeded and declined.decline_code == "card_declined"
    unknown = gateway.charge("tok_whatever", Decimal("10.00"), "USD", idempotency_key="p3")
    assert not unknown.succeeded and unknown.decline_code == "invalid_token"
    with pytest.raises(GatewayUnavailableError):
        gateway.charge("tok_unavailable", Decimal("10.00"), "USD", idempotency_key="p4")


def test_fake_gateway_is_idempotent_by_key_and_deterministic_across_instances():
    first, second = FakeGateway(), FakeGateway()
    a = first.charge("tok_visa", Decimal("10.00"), "USD", idempotency_key="p1")
    assert first.charge("tok_declined", Decimal("10.00"), "USD", idempotency_key="p1") == a  # first answer wins
    assert second.charge("tok_visa", Decimal("10.00"), "USD", idempotency_key="p1") == a
    assert len(first.charges) == 1
    assert first.refund(a.reference, Decimal("10.00"), idempotency_key="p1/refund") == first.refund(
        a.reference, Decimal("10.00"), idempotency_key="p1/refund"
    )
    assert len(first.refunds) == 1
