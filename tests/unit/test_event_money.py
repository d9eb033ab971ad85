"""``EventMoney`` (stored event payloads) must be ``Money`` with a faster JSON path: the same
values (digits and exponent), the same refusals, the same JSON and JSON Schema."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from kernel.money import _CANONICAL, MAX_AMOUNT, EventMoney, Money, _parse_money, money_str
from tests.budget import examples


class WithMoney(BaseModel):
    amount: Money


class WithEventMoney(BaseModel):
    amount: EventMoney


def outcome(model: type[BaseModel], validate: Any) -> str:
    try:
        return repr(validate(model).amount)  # repr keeps the exponent: Decimal('5.00') != Decimal('5')
    except ValidationError:
        return "refused"


amount_text = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=-MAX_AMOUNT * 2, max_value=MAX_AMOUNT * 2, places=2).map(str),
    st.from_regex(r"\A[ -]?[0-9]{0,12}(\.[0-9]{0,4})?([eE][+-]?[0-9])? ?\Z"),
    st.text(max_size=12),
)
json_values = st.one_of(
    amount_text,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)


@settings(max_examples=examples(600), deadline=None)
@given(json_values)
def test_json_input_gives_what_money_gives(value: Any) -> None:
    document = json.dumps({"amount": value})
    expected = outcome(WithMoney, lambda m: m.model_validate_json(document))
    assert outcome(WithEventMoney, lambda m: m.model_validate_json(document)) == expected


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(json_values, st.decimals(allow_nan=True, allow_infinity=True)))
def test_python_input_gives_what_money_gives(value: Any) -> None:
    expected = outcome(WithMoney, lambda m: m.model_validate({"amount": value}))
    assert outcome(WithEventMoney, lambda m: m.model_validate({"amount": value})) == expected


@settings(max_examples=examples(300), deadline=None)
@given(st.decimals(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT, places=2))
def test_what_is_stored_takes_the_canonical_path(amount: Decimal) -> None:
    """Every amount Money accepts is written as a canonical string, which Decimal() turns back
    into exactly what _parse_money returns: the fast path decodes all stored money."""
    text = money_str(_parse_money(amount))
    assert re.fullmatch(_CANONICAL, text)
    assert repr(Decimal(text)) == repr(_parse_money(text))


def test_same_json_and_json_schema() -> None:
    for raw in ("19.9", "-0.5", "1000000000"):
        assert WithEventMoney(amount=raw).model_dump_json() == WithMoney(amount=raw).model_dump_json()
    money, event_money = WithMoney.model_json_schema(), WithEventMoney.model_json_schema()
    assert event_money["properties"] == money["properties"]


def test_floats_are_still_refused_with_moneys_message() -> None:
    for document in ('{"amount": 1.5}', '{"amount": "12.345"}', '{"amount": "NaN"}'):
        try:
            WithEventMoney.model_validate_json(document)
        except ValidationError as exc:
            assert "money" in str(exc) or "fraction digits" in str(exc)
        else:
            raise AssertionError(f"{document} was accepted")
