"""A tiny pure ledger domain for the store/runtime tests (generic, not the accounts service).

Every money event carries a ``ref`` (the command's unique id) so tests can prove each
acknowledged command's events are stored exactly once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cairn.commands import Decider
from cairn.events import EventRegistry


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LedgerOpened(_Frozen):
    owner: str
    currency: str = "USD"


class Deposited(_Frozen):
    """v2: ``currency`` added (v1 payloads are upcast with the ledger's default, USD)."""

    amount: Decimal = Field(gt=0)
    ref: str
    currency: str


class DepositedV1(_Frozen):
    """The shape ``Deposited`` had at schema version 1 (what old code wrote)."""

    amount: Decimal
    ref: str


class Withdrawn(_Frozen):
    amount: Decimal = Field(gt=0)
    ref: str


class Noted(_Frozen):
    text: str


def build_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(LedgerOpened)
    registry.register(Deposited, schema_version=2)
    registry.register(Withdrawn)
    registry.register(Noted)

    @registry.upcaster("Deposited", 1)
    def _deposit_v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "currency": "USD"}

    return registry


def build_v1_registry() -> EventRegistry:
    """The registry as the previous deploy had it: ``Deposited`` at v1."""
    registry = EventRegistry()
    registry.register(LedgerOpened)
    registry.register(DepositedV1, name="Deposited", schema_version=1)
    registry.register(Withdrawn)
    registry.register(Noted)
    return registry


REGISTRY = build_registry()


# -- state, commands, decide, evolve ----------------------------------------------------------
class Ledger(_Frozen):
    opened: bool = False
    owner: str | None = None
    currency: str = "USD"
    balance: Decimal = Decimal("0")
    entries: int = 0


class Open(_Frozen):
    owner: str


class Deposit(_Frozen):
    amount: Decimal
    ref: str


class DepositMany(_Frozen):
    amounts: tuple[Decimal, ...]
    ref: str


class Withdraw(_Frozen):
    amount: Decimal
    ref: str


class Note(_Frozen):
    text: str


class LedgerError(Exception):
    """A business rule said no."""


def initial_state() -> Ledger:
    return Ledger()


def decide(command: BaseModel, state: Ledger) -> list[BaseModel]:
    if isinstance(command, Open):
        if state.opened:
            raise LedgerError("already opened")
        return [LedgerOpened(owner=command.owner)]
    if not state.opened:
        raise LedgerError("not opened")
    if isinstance(command, Deposit):
        return [Deposited(amount=command.amount, ref=command.ref, currency=state.currency)]
    if isinstance(command, DepositMany):
        return [
            Deposited(amount=amount, ref=f"{command.ref}#{i}", currency=state.currency)
            for i, amount in enumerate(command.amounts)
        ]
    if isinstance(command, Withdraw):
        if command.amount > state.balance:
            raise LedgerError("insufficient funds")
        return [Withdrawn(amount=command.amount, ref=command.ref)]
    if isinstance(command, Note):
        return [Noted(text=command.text)]
    raise TypeError(f"unknown command {command!r}")


def evolve(state: Ledger, event: BaseModel) -> Ledger:
    if isinstance(event, LedgerOpened):
        return state.model_copy(update={"opened": True, "owner": event.owner, "currency": event.currency})
    if isinstance(event, Deposited):
        return state.model_copy(update={"balance": state.balance + event.amount, "entries": state.entries + 1})
    if isinstance(event, Withdrawn):
        return state.model_copy(update={"balance": state.balance - event.amount, "entries": state.entries + 1})
    if isinstance(event, Noted):
        return state
    raise TypeError(f"unknown event {event!r}")


def decider(state_schema_version: int = 1) -> Decider[Any, Ledger]:
    return Decider(
        initial_state=initial_state,
        decide=decide,
        evolve=evolve,
        state_schema_version=state_schema_version,
        is_new=lambda s: not s.opened,
    )
