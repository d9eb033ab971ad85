"""Shared kernel of the domains: value types every context agrees on (pure: pydantic + stdlib)."""

from kernel.errors import AlreadyExistsError, DomainError, InvalidTransitionError, NotFoundError
from kernel.money import Currency, EventMoney, Money, PlainText, PositiveMoney, money_str, quantize

__all__ = [
    "AlreadyExistsError",
    "Currency",
    "DomainError",
    "EventMoney",
    "InvalidTransitionError",
    "Money",
    "NotFoundError",
    "PlainText",
    "PositiveMoney",
    "money_str",
    "quantize",
]
