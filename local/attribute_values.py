"""A fast path for moto's serialization of DynamoDB attribute values.

moto 5.2 writes every response through a generic serializer that walks the botocore shape and,
for each member of each structure, asks a chain of alias providers where the value lives. An
``AttributeValue`` is a structure of ten members (S, N, B, SS, NS, BS, M, L, NULL, BOOL) of which
one is set, so an item of twenty attributes costs some two hundred lookups through that chain:
in the 10k reliability suite it was over a third of the whole run (docs/decisions.md).

moto already holds an attribute value in its wire form (``{"S": "x"}``), and for these members
the generic path writes it out unchanged; here it is copied directly. Binary members (B, BS),
anything not of the wire form's types, and every other shape keep moto's own path.
``tests/local/test_attribute_values.py`` checks the answers are the same with and without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "uninstall", "wire_form"]

_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_SETS = ("SS", "NS")
_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
_original: Any = None  # moto's method while the fast path is installed


def wire_form(value: Any) -> dict[str, Any] | None:
    """A copy of ``value`` if it is an attribute value that moto's serializer would write out
    unchanged, else None (the caller falls back to moto's path)."""
    if type(value) is not dict or len(value) != 1:
        return None
    (kind, inner), = value.items()
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return {kind: inner} if type(inner) is scalar else None
    if kind in _SETS:
        if type(inner) is list and all(type(x) is str for x in inner):
            return {kind: list(inner)}
        return None
    if kind == "M":
        if type(inner) is not dict:
            return None
        members = {}
        for name, member in inner.items():
            copied = wire_form(member)
            if copied is None:
                return None
            members[name] = copied
        return {"M": members}
    if kind == "L":
        if type(inner) is not list:
            return None
        elements = []
        for element in inner:
            copied = wire_form(element)
            if copied is None:
                return None
            elements.append(copied)
        return {"L": elements}
    return None


def install() -> None:
    """Patch moto's JSON serializer (idempotent; process-wide, like moto's own mock)."""
    global _original
    if _original is not None:
        return
    from moto.core.serialize import BaseJSONSerializer

    original = _original = BaseJSONSerializer._serialize_type_structure

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and self.service_model.service_name in _SERVICES:
            copied = wire_form(value)
            if copied is not None:
                serialized[shape.serialization.get("name", key)] = copied
                return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure  # type: ignore[method-assign]


def uninstall() -> None:
    """moto's own path again (the equivalence test compares both)."""
    global _original
    if _original is None:
        return
    from moto.core.serialize import BaseJSONSerializer

    BaseJSONSerializer._serialize_type_structure = _original  # type: ignore[method-assign]
    _original = None
