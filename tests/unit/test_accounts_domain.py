"""The account decider: balance never below zero, amount limits, and a model-based property test."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pydantic import ValidationError

from accounts import domain
from accounts.domain import (
    AccountOpened,
    Deposit,
    InsufficientFundsError,
    MoneyDeposited,
    MoneyWithdrawn,
    OpenAccount,
    Withdraw,
    decide,
    evolve,
    initial_state,
)
from kernel import AlreadyExistsError, NotFoundError
from tests.budget import examples


def run(*commands):
    state, events = initial_state(), []
    for command in commands:
        new = decide(command, state)
        for event in new:
            state = evolve(state, event)
        events.extend(new)
    return state, events


OPEN = OpenAccount(account_id="account-1", owner_id="alice", currency="USD")


def test_open_starts_at_zero():
    state, events = run(OPEN)
    assert events == [AccountOpened(account_id="account-1", owner_id="alice", currency="USD")]
    assert state.opened and state.balance == Decimal("0.00") and state.owner_id == "alice"


def test_open_twice_is_rejected():
    state, _ = run(OPEN)
    with pytest.raises(AlreadyExistsError):
        decide(OPEN, state)


@pytest.mark.parametrize("command", [Deposit(amount="1.00"), Withdraw(amount="1.00")])
def test_commands_on_a_missing_account_are_not_found(command):
    with pytest.raises(NotFoundError):
        decide(command, initial_state())


def test_deposit_then_withdraw():
    state, events = run(OPEN, Deposit(amount="100.50"), Withdraw(amount="0.50"))
    assert [type(e) for e in events] == [AccountOpened, MoneyDeposited, MoneyWithdrawn]
    assert state.balance == Decimal("100.00")


def test_withdraw_the_whole_balance_is_allowed():
    state, _ = run(OPEN, Deposit(amount="10.00"), Withdraw(amount="10.00"))
    assert state.balance == Decimal("0.00")


def test_overdraft_is_rejected_with_a_specific_type():
    state, _ = run(OPEN, Deposit(amount="10.00"))
    with pytest.raises(InsufficientFundsError) as err:
        decide(Withdraw(amount="10.01"), state)
    assert err.value.status == 409 and err.value.code == "insufficient-funds"
    assert "10.01" in err.value.detail and "10.00" in err.value.detail


@pytest.mark.parametrize(
    "amount",
    ["0", "0.00", "-1.00", "1000000.01", "1.001", "abc", "", "NaN", "Infinity", 1.5, True, None, 5, "1e1000000", " 5"],
)
@pytest.mark.parametrize("command", [Deposit, Withdraw])
def test_invalid_amounts_are_rejected(command, amount):
    with pytest.raises(ValidationError):
        command(amount=amount)


@pytest.mark.parametrize("amount", ["0.01", "1000000.00", "1000000", Decimal("5")])
def test_amount_boundaries(amount):
    assert Deposit(amount=amount).amount == Decimal(str(amount)).quantize(Decimal("0.01"))


@pytest.mark.parametrize("currency", ["usd", "EURO", "", "12A"])
def test_currency_shape(currency):
    with pytest.raises(ValidationError):
        OpenAccount(account_id="a", owner_id="o", currency=currency)


def test_money_serializes_as_string():
    assert MoneyDeposited(amount="5").model_dump(mode="json") == {"amount": "5.00"}


def test_state_round_trip():
    state, _ = run(OPEN, Deposit(amount="12.34"))
    assert domain.state_from_dict(domain.state_to_dict(state)) == state


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000.00"), places=2)


@given(st.lists(st.tuples(st.sampled_from(["deposit", "withdraw"]), amounts), max_size=40))
@settings(max_examples=examples(200))
def test_balance_never_goes_below_zero_and_matches_accepted_operations(operations):
    state, _ = run(OPEN)
    model = Decimal("0.00")
    for kind, amount in operations:
        command = Deposit(amount=str(amount)) if kind == "deposit" else Withdraw(amount=str(amount))
        if kind == "withdraw" and amount > model:
            with pytest.raises(InsufficientFundsError):
                decide(command, state)
            continue
        for event in decide(command, state):
            state = evolve(state, event)
        model += amount if kind == "deposit" else -amount
        assert state.balance >= 0
    assert state.balance == model


class AccountMachine(RuleBasedStateMachine):
    """Interleaved deposits and withdrawals; the fold of emitted events always equals the state."""

    def __init__(self):
        super().__init__()
        self.state, self.events = run(OPEN)

    @rule(amount=amounts)
    def deposit(self, amount):
        new = decide(Deposit(amount=str(amount)), self.state)
        self._apply(new)

    @rule(amount=amounts)
    def withdraw(self, amount):
        if amount > self.state.balance:
            with pytest.raises(InsufficientFundsError):
                decide(Withdraw(amount=str(amount)), self.state)
            return
        self._apply(decide(Withdraw(amount=str(amount)), self.state))

    def _apply(self, new):
        for event in new:
            self.state = evolve(self.state, event)
        self.events.extend(new)

    @invariant()
    def never_negative(self):
        assert self.state.balance >= 0

    @invariant()
    def balance_is_deposits_minus_withdrawals(self):
        total = sum(
            (e.amount if isinstance(e, MoneyDeposited) else -e.amount)
            for e in self.events
            if isinstance(e, MoneyDeposited | MoneyWithdrawn)
        )
        assert self.state.balance == total


TestAccountMachine = AccountMachine.TestCase
TestAccountMachine.settings = settings(max_examples=examples(80), stateful_step_count=30, deadline=None)
