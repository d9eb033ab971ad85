"""Money is Decimal with at most 2 fraction digits, carried as a string in JSON, never a number.

Two readers, because input and history have different rules (docs/decisions.md, issue 17):

- ``Money`` reads user input. It is a total function over anything JSON can carry: the one
  documented form ``^-?[0-9]+(\\.[0-9]{1,2})?$`` (ASCII digits, no blanks, no exponent, no sign
  but ``-``, at most ``MAX_AMOUNT``) parses, everything else is a ``ValueError`` (a 422 naming the
  field). Python callers may pass a ``Decimal`` with the same limits.
- ``EventMoney`` reads stored event payloads. It carries no input limit (no maximum, no length):
  what was valid when written stays readable when an input rule tightens. Its JSON Schema states
  exactly what it checks, so the schema guard sees it.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, PlainSerializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")
MAX_MONEY_CHARS = 16  # "-1000000000.00" is 14: longer text is never a valid amount

# the documented form; ``re`` with explicit [0-9] matches ASCII digits only, fullmatch has no "\n$" gap
MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]{1,2})?$"
_MONEY_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]{1,2})?")
# stored amounts: the documented form without its input limits (``money_str`` writes 2 digits)
STORED_MONEY_PATTERN = MONEY_PATTERN
_STORED_TEXT = _MONEY_TEXT

_FORM = 'money is a decimal string such as "19.99": ASCII digits, at most 2 fraction digits, no blanks or exponent'


def parse_money_text(text: str) -> Decimal:
    """The documented money form -> Decimal (2 places); ``ValueError`` for any other string."""
    if len(text) > MAX_MONEY_CHARS or not _MONEY_TEXT.fullmatch(text):
        raise ValueError(_FORM)
    amount = Decimal(text)  # at most 16 ASCII digits and signs: cannot overflow or round
    if amount.copy_abs() > MAX_AMOUNT:
        raise ValueError(f"amount out of range (at most {MAX_AMOUNT})")
    return amount.quantize(CENT)


def _parse_money(value: Any) -> Decimal:
    """``Money``'s reader: a string in the documented form, or a Decimal within the same limits."""
    if isinstance(value, str):
        return parse_money_text(value)
    if isinstance(value, Decimal):
        return _checked_decimal(value, limit=MAX_AMOUNT)
    # JSON numbers (floats lose cents, integers invite "1e3"-style ambiguity), booleans, null...
    raise ValueError(_FORM)


def _checked_decimal(amount: Decimal, *, limit: Decimal | None) -> Decimal:
    """A finite Decimal with at most 2 places (within ``limit``), quantized to cents."""
    try:
        if not amount.is_finite():
            raise ValueError("money must be finite")
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            raise ValueError("money has at most 2 fraction digits")
        if limit is not None and amount.copy_abs() > limit:
            raise ValueError(f"amount out of range (at most {limit})")
        if limit is None and amount.adjusted() >= 26:
            return amount  # beyond the context's 28 digits, quantize would fail: the value is exact anyway
        return amount.quantize(CENT)
    except ArithmeticError:  # decimal.Overflow / InvalidOperation of an absurd exponent: a refusal
        raise ValueError("amount out of range") from None


def _parse_stored_money(value: Any) -> Decimal:
    """``EventMoney``'s reader: what ``money_str`` wrote (or a Decimal), whatever its size."""
    if isinstance(value, str):
        if not _STORED_TEXT.fullmatch(value):
            raise ValueError('stored money is a decimal string such as "19.99"')
        return Decimal(value)
    if isinstance(value, Decimal):
        return _checked_decimal(value, limit=None)
    raise ValueError('stored money is a decimal string such as "19.99"')


def money_str(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


class _MoneySchema:
    """``Money``: validated by ``_parse_money``; the JSON Schema says the form and the limits."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(_parse_money)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "maxLength": MAX_MONEY_CHARS,
            "description": f"decimal string, |amount| <= {MAX_AMOUNT}",
            "examples": ["19.99"],
        }


class _StoredMoneySchema:
    """``EventMoney``: the stored form checked by a Rust regex in pydantic-core (replays decode
    every stored amount; a Python validator was half of that time). Python values (Decimal)
    go through ``_parse_stored_money``. The JSON Schema is exactly the regex: no hidden rule."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # Decimal is a C type: pydantic-core calls it without a Python frame
        stored = core_schema.no_info_after_validator_function(Decimal, core_schema.str_schema(pattern=STORED_MONEY_PATTERN))
        return core_schema.json_or_python_schema(
            json_schema=stored,
            python_schema=core_schema.no_info_plain_validator_function(_parse_stored_money),
        )

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "pattern": STORED_MONEY_PATTERN, "examples": ["19.99"]}


Money = Annotated[Decimal, _MoneySchema(), PlainSerializer(money_str, return_type=str, when_used="json")]
PositiveMoney = Annotated[Money, Field(gt=0)]

EventMoney = Annotated[Decimal, _StoredMoneySchema(), PlainSerializer(money_str, return_type=str, when_used="json")]
"""Money in stored event payloads: the stored form, no input limits, decoded in pydantic-core."""

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]

# Free text from users: no control (Cc), format (Cf: bidi overrides, zero-width, BOM, tags) or
# line/paragraph separator (Zl, Zp) characters — as explicit code point ranges (Unicode 14, what
# this Python's unicodedata says; tests/unit/test_money.py checks), because pydantic-core (Rust),
# Python's re (schemathesis, hypothesis) read \uXXXX and \UXXXXXXXX, none of them \p{Cf}.
PLAIN_TEXT_PATTERN = (
    r"^[^\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E"
    r"\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD"
    r"\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]*$"
)
PLAIN_TEXT_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
PlainText = Annotated[str, Field(pattern=PLAIN_TEXT_PATTERN)]

__all__ = [
    "CENT",
    "MAX_AMOUNT",
    "MONEY_PATTERN",
    "PLAIN_TEXT_CATEGORIES",
    "PLAIN_TEXT_PATTERN",
    "STORED_MONEY_PATTERN",
    "Currency",
    "EventMoney",
    "Money",
    "PlainText",
    "PositiveMoney",
    "money_str",
    "parse_money_text",
    "quantize",
]
