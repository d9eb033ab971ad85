"""export_schemas / check_schemas: a payload change needs a version bump and an upcaster."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from cairn.events import EventRegistry
from cairn.events.schemas import check_schemas, dumps_schemas, export_schemas


class PaidV1(BaseModel):
    amount: Decimal
    title: str  # a field literally named "title" must not be mistaken for documentation


class PaidV1Documented(BaseModel):
    """Docstrings and field descriptions are documentation, not shape."""

    amount: Decimal = Field(description="money paid")
    title: str = Field(description="what for", examples=["rent"])


class PaidV2(BaseModel):
    amount: Decimal
    title: str
    currency: str


class PaidV1Retitled(BaseModel):
    amount: Decimal
    title: int


def registry(model: type[BaseModel], version: int = 1, upcasters: tuple[int, ...] = ()) -> EventRegistry:
    reg = EventRegistry()
    reg.register(model, name="Paid", schema_version=version)
    for v in upcasters:
        reg.upcaster("Paid", v)(lambda raw: raw)
    return reg


def committed(model: type[BaseModel], version: int = 1, upcasters: tuple[int, ...] = ()) -> dict[str, Any]:
    """As read back from the committed file."""
    return json.loads(dumps_schemas(export_schemas(registry(model, version, upcasters))))


def test_export_shape_and_stable_text() -> None:
    exported = export_schemas(registry(PaidV2, 2, (1,)))
    assert exported["Paid"]["schema_version"] == 2
    assert exported["Paid"]["upcasters_from"] == [1]
    assert set(exported["Paid"]["schema"]["properties"]) == {"amount", "title", "currency"}
    text = dumps_schemas(exported)
    assert text.endswith("\n") and text == dumps_schemas(json.loads(text))


def test_unchanged_is_fine() -> None:
    assert check_schemas(committed(PaidV1), export_schemas(registry(PaidV1))) == []


def test_documentation_changes_are_fine() -> None:
    assert check_schemas(committed(PaidV1), export_schemas(registry(PaidV1Documented))) == []


def test_change_without_bump_is_a_problem() -> None:
    problems = check_schemas(committed(PaidV1), export_schemas(registry(PaidV2)))
    assert len(problems) == 1 and "Paid" in problems[0] and "without a schema_version bump" in problems[0]


def test_change_of_a_field_named_title_is_seen() -> None:
    problems = check_schemas(committed(PaidV1), export_schemas(registry(PaidV1Retitled)))
    assert len(problems) == 1


def test_bump_without_upcaster_is_a_problem() -> None:
    problems = check_schemas(committed(PaidV1), export_schemas(registry(PaidV2, 2)))
    assert problems == ["Paid: schema_version 2 has no upcaster from v1"]


def test_bump_with_upcaster_is_fine() -> None:
    assert check_schemas(committed(PaidV1), export_schemas(registry(PaidV2, 2, (1,)))) == []
    # a later bump needs the next step too, and keeps the old one
    assert check_schemas(committed(PaidV2, 2, (1,)), export_schemas(registry(PaidV1, 3, (1, 2)))) == []
    problems = check_schemas(committed(PaidV2, 2, (1,)), export_schemas(registry(PaidV1, 3, (2,))))
    assert problems == ["Paid: upcaster from v1 removed, but events stored at it still exist"]


def test_removed_type_and_version_going_down_are_problems() -> None:
    assert check_schemas(committed(PaidV1), {}) == [
        "Paid: event type removed, but stored events of it still exist"
    ]
    problems = check_schemas(committed(PaidV2, 2, (1,)), export_schemas(registry(PaidV2, 1)))
    assert problems == ["Paid: schema_version went down from 2 to 1"]


def test_new_types_are_fine() -> None:
    current = export_schemas(registry(PaidV1))
    assert check_schemas({}, current) == []
