"""``?at=`` parsing is total over strings and its output sorts as time (issue 17, defect 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.events import normalize_timestamp
from cairn.http.problems import ProblemError
from cairn.http.queries import instant
from tests.budget import examples

instant_like = st.one_of(
    st.text(max_size=45),
    st.text(alphabet="0123456789-:T.Z+ tz\u0660\u0662\n", max_size=30),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
)


@settings(max_examples=examples(500), deadline=None)
@given(instant_like)
def test_any_text_is_an_instant_or_a_422(text: str) -> None:
    try:
        normalized = instant(text)
    except ProblemError as problem:  # anything else (OverflowError, ...) fails the test: that was the 500
        assert problem.status == 422
        return
    assert normalized is not None and len(normalized) == 24 and normalized.isascii()
    assert normalize_timestamp(normalized) == normalized  # the stored form is a fixed point


@settings(max_examples=examples(300), deadline=None)
@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_string_order_is_time_order_for_every_year(a: datetime, b: datetime) -> None:
    a, b = a.replace(microsecond=a.microsecond // 1000 * 1000), b.replace(microsecond=b.microsecond // 1000 * 1000)
    assert (normalize_timestamp(a) < normalize_timestamp(b)) == (a < b)


@pytest.mark.parametrize("text", ["\u0662\u0660\u0662\u0666-01-01T00:00:00Z", " 2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z\n",
                                  "2026-W01", "20260101", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_timestamp(text)


def test_years_below_1000_are_zero_padded() -> None:
    assert normalize_timestamp("0999-12-31T23:59:59Z") == "0999-12-31T23:59:59.000Z"
    assert normalize_timestamp("0999-12-31T23:59:59Z") < normalize_timestamp("2026-01-01T00:00:00Z")
