"""Plain Python values <-> DynamoDB JSON attribute values, without importing boto3.

Why not boto3's TypeSerializer: handlers stay light at import, and read models need one rule
boto3 does not have: numbers come back as ``int`` when they are integral (versions, counters)
and as ``Decimal`` otherwise. Floats are refused: money is Decimal or a string, never a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["from_attr", "from_item", "to_attr", "to_item"]


def to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError(f"cannot store the number {value}")
        return {"N": str(value)}
    if isinstance(value, float):
        raise TypeError("floats are not stored: use Decimal or a string")
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store a {type(value).__name__}")


def _number(text: str) -> int | Decimal:
    number = Decimal(text)
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(number)
    return number


def from_attr(attr: Mapping[str, Any]) -> Any:
    (kind, value), = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        return _number(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {_number(v) for v in value}
    raise TypeError(f"unsupported DynamoDB type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: to_attr(value) for name, value in values.items()}


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: from_attr(attr) for name, attr in item.items()}
