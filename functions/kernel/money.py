"""Money is Decimal with at most 2 fraction digits, carried as a string in JSON, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, PlainSerializer, WithJsonSchema
from pydantic_core import CoreSchema, core_schema

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

# Exactly what ``money_str`` writes for an amount ``_parse_money`` accepts: |amount| <= MAX_AMOUNT,
# two fraction digits, ASCII digits, no sign but "-", no blanks. Such a string is its own
# quantized value, so Decimal(text) equals what _parse_money returns (same digits, same exponent).
_CANONICAL = r"^-?(?:[0-9]{1,9}\.[0-9]{2}|1000000000\.00)$"


class _StoredMoneySchema:
    """Money's validation with the common JSON case in pydantic-core (Rust).

    Replaying a stream decodes every stored amount; ``Money``'s Python validator was about half
    of that time. Here a JSON string in the canonical form is checked by a Rust regex and turned
    into a Decimal without running Python code; any other JSON value, and every Python value,
    goes through ``_parse_money`` as before, so what is accepted, rejected and returned is the
    same as ``Money`` (tests/unit/test_money.py compares them).
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        parse = core_schema.no_info_plain_validator_function(_parse_money)
        # Decimal is a C type: pydantic-core calls it without a Python frame
        canonical = core_schema.no_info_after_validator_function(Decimal, core_schema.str_schema(pattern=_CANONICAL))
        return core_schema.json_or_python_schema(
            json_schema=core_schema.union_schema([canonical, parse], mode="left_to_right"),
            python_schema=parse,
        )


EventMoney = Annotated[
    Decimal,
    _StoredMoneySchema(),
    PlainSerializer(money_str, return_type=str, when_used="json"),
    WithJsonSchema(_json_schema),
]
"""``Money`` for stored event payloads: same values, same JSON and JSON Schema, faster decoding
from JSON. Commands (user input) keep ``Money``."""
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]
