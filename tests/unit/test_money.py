"""Money parsing is a total function over whatever JSON can carry (issue 17, defect 1).

``Money`` (user input): the documented form ``^-?[0-9]+(\\.[0-9]{1,2})?$`` within the limits,
or a validation error — never another exception (``"1e1000000"`` used to raise decimal.Overflow,
a 500). ``EventMoney`` (stored payloads): the same form without input limits, exactly what its
JSON Schema says (the schema guard sees every rule).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from kernel.money import (
    MAX_AMOUNT,
    MAX_MONEY_CHARS,
    MONEY_PATTERN,
    EventMoney,
    Money,
    money_str,
    parse_money_text,
)
from tests.budget import examples

DOCUMENTED = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?")  # API.md, ASCII digits only


class WithMoney(BaseModel):
    amount: Money


class WithEventMoney(BaseModel):
    amount: EventMoney


money_like = st.one_of(
    st.text(),
    st.text(alphabet="0123456789.-+eE ,_\n\t\u0660\u0661\u0662\u0969\uff11", max_size=20),
    st.from_regex(r"\A-?[0-9]{1,14}(\.[0-9]{0,3})?\Z"),
    st.from_regex(r"\A-?0{0,12}[0-9]{1,4}(\.[0-9]{1,2})?\Z"),  # leading zeros around the length limit
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
json_values = st.one_of(
    money_like,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


def accepted(model: type[BaseModel], document: str) -> Decimal | None:
    try:
        return model.model_validate_json(document).amount
    except ValidationError:
        return None


@settings(max_examples=examples(400), deadline=None)
@given(money_like)
def test_money_text_is_total_and_exactly_the_documented_form(text: str) -> None:
    try:
        amount = parse_money_text(text)
    except ValueError:
        amount = None  # any other exception fails the test: that was the 500
    expected = len(text) <= MAX_MONEY_CHARS and DOCUMENTED.fullmatch(text) is not None and abs(Decimal(text)) <= MAX_AMOUNT
    assert (amount is not None) == expected, text
    if amount is not None:
        assert amount == Decimal(text) and money_str(amount) == str(amount)


@settings(max_examples=examples(300), deadline=None)
@given(json_values)
def test_any_json_value_is_a_money_or_a_validation_error(value: Any) -> None:
    document = json.dumps({"amount": value})
    money = accepted(WithMoney, document)  # raises anything but ValidationError -> the test fails
    assert (money is not None) == (isinstance(value, str) and len(value) <= MAX_MONEY_CHARS
                                   and DOCUMENTED.fullmatch(value) is not None and abs(Decimal(value)) <= MAX_AMOUNT)
    # the Python path (how Powertools validates a parsed body) agrees with the JSON path
    try:
        python = WithMoney.model_validate({"amount": value}).amount
    except ValidationError:
        python = None
    assert python == money


@pytest.mark.parametrize(
    "value",
    ["1e1000000", "1E+3", "\u0661\u0662\u0663", "\uff11", " 1.00", "1.00 ", "1.00\n", "+1.00", "1.", ".5", "1.234",
     "NaN", "Infinity", "-", "", "1_000", "1,00", "0x10", "10000000000.00", 1, 1.5, True, None],
)
def test_the_reviews_examples_are_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        WithMoney.model_validate_json(json.dumps({"amount": value}))
    with pytest.raises(ValidationError):
        WithMoney.model_validate({"amount": value})


def test_absurd_decimals_from_python_are_refused_not_raised() -> None:
    for value in (Decimal("1e1000000"), Decimal("-1e-1000000"), Decimal("NaN"), Decimal("sNaN"), Decimal("1.001")):
        with pytest.raises(ValidationError):
            WithMoney(amount=value)
    assert WithMoney(amount=Decimal("5")).amount == Decimal("5.00")


@settings(max_examples=examples(300), deadline=None)
@given(json_values)
def test_event_money_is_total_and_takes_every_stored_amount(value: Any) -> None:
    document = json.dumps({"amount": value})
    stored = accepted(WithEventMoney, document)
    assert (stored is not None) == (isinstance(value, str) and DOCUMENTED.fullmatch(value) is not None)
    money = accepted(WithMoney, document)
    if money is not None:  # whatever input was accepted, its stored form is read back as the same amount
        assert WithEventMoney.model_validate_json(WithMoney(amount=money).model_dump_json()).amount == money


def test_event_money_has_no_input_limit() -> None:
    big = "123456789012345678901234567890.00"
    assert WithEventMoney.model_validate_json(json.dumps({"amount": big})).amount == Decimal(big)
    assert WithEventMoney(amount=Decimal("1e40")).amount == Decimal("1e40")


def test_json_schemas_say_what_is_checked() -> None:
    money = WithMoney.model_json_schema()["properties"]["amount"]
    assert money["type"] == "string" and money["pattern"] == MONEY_PATTERN and money["maxLength"] >= len("-1000000000.00")
    stored = WithEventMoney.model_json_schema()["properties"]["amount"]
    assert stored["type"] == "string" and stored["pattern"] == MONEY_PATTERN and "maxLength" not in stored
    assert WithEventMoney(amount="19.9").model_dump_json() == WithMoney(amount="19.9").model_dump_json() == '{"amount":"19.90"}'


def test_plain_text_refuses_exactly_control_format_and_separator_characters() -> None:
    """The explicit ranges of PLAIN_TEXT_PATTERN are the Cc/Cf/Zl/Zp categories, for pydantic-core
    (which validates requests) and Python's re (schemathesis) alike; cairn.http uses the same."""
    import sys
    import unicodedata

    from pydantic import TypeAdapter

    from cairn.http.headers import PLAIN_TEXT_PATTERN as HEADER_PATTERN
    from kernel.money import PLAIN_TEXT_CATEGORIES, PLAIN_TEXT_PATTERN, PlainText

    assert HEADER_PATTERN == PLAIN_TEXT_PATTERN
    plain = TypeAdapter(PlainText)
    python = re.compile(PLAIN_TEXT_PATTERN)
    chars = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) != "Cs"]
    refused = [ch for ch in chars if unicodedata.category(ch) in PLAIN_TEXT_CATEGORIES]
    allowed = "".join(ch for ch in chars if unicodedata.category(ch) not in PLAIN_TEXT_CATEGORIES)
    assert plain.validate_python(allowed) == allowed and python.match(allowed)
    for ch in refused:
        assert python.match(f"a{ch}b") is None, hex(ord(ch))
        with pytest.raises(ValidationError):
            plain.validate_python(f"a{ch}b")
