"""A no-op decision under an idempotency key still honours the key (repeat or reuse)."""

from decimal import Decimal

import pytest
from pydantic import BaseModel

from cairn.commands import CommandRuntime, Decider
from cairn.events import EventRegistry
from cairn.store import IdempotencyKeyReuseError, InMemoryEventStore


class Paid(BaseModel):
    payment_id: str
    amount: Decimal


def _decide(command, state):
    payment_id, amount = command
    if state.get(payment_id) is not None:
        return []  # the same payment again: nothing to do
    return [Paid(payment_id=payment_id, amount=amount)]


def _evolve(state, event):
    return {**state, event.payment_id: event.amount}


@pytest.fixture
def runtime():
    registry = EventRegistry()
    registry.register(Paid)
    decider = Decider(initial_state=dict, decide=_decide, evolve=_evolve, state_to_dict=dict, state_from_dict=dict)
    return CommandRuntime(InMemoryEventStore(registry), decider)


def test_noop_with_a_reused_key_and_another_request_is_a_reuse_error(runtime):
    runtime.handle("s-1", ("p1", Decimal("5")), idempotency_key="k", fingerprint="A", answer=lambda s, v: {"v": v})
    with pytest.raises(IdempotencyKeyReuseError):
        runtime.handle("s-1", ("p1", Decimal("5")), idempotency_key="k", fingerprint="B", answer=lambda s, v: {"v": v})


def test_noop_repeat_returns_the_first_answer(runtime):
    first = runtime.handle("s-1", ("p1", Decimal("5")), idempotency_key="k", fingerprint="A", answer=lambda s, v: {"v": v})
    runtime.handle("s-1", ("p2", Decimal("1")))
    again = runtime.handle("s-1", ("p1", Decimal("5")), idempotency_key="k", fingerprint="A", answer=lambda s, v: {"v": v})
    assert again.replayed and again.answer == first.answer == {"v": 1}
