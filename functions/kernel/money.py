"""Money is Decimal with at most 2 fraction digits, carried as a string in JSON, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")


def _parse_money(value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("money must be a decimal string such as \"19.99\", not a float")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 32:
            raise ValueError("money must be a decimal string such as \"19.99\"")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError("money must be a decimal string such as \"19.99\"") from None
    else:
        raise ValueError("money must be a decimal string such as \"19.99\"")
    if not amount.is_finite():
        raise ValueError("money must be finite")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("money has at most 2 fraction digits")
    if abs(amount) > MAX_AMOUNT:
        raise ValueError("amount out of range")
    return amount.quantize(CENT)


def money_str(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


_json_schema = {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$", "examples": ["19.99"]}

Money = Annotated[
    Decimal,
    BeforeValidator(_parse_money),
    PlainSerializer(money_str, return_type=str, when_used="json"),
    WithJsonSchema(_json_schema),
]
PositiveMoney = Annotated[Money, Field(gt=0)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]
