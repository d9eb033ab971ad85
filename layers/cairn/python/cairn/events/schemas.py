"""Export event JSON Schemas and check a change against the committed export.

Stored events are never rewritten, so a payload model may only change shape together with a
``schema_version`` bump and an upcaster from every older version. A service commits
``export_schemas(registry)`` to a file; a test compares it with the current code using
``check_schemas`` and fails with the listed problems. Documentation-only keywords
(``title``, ``description``, ``examples``) are ignored when comparing.
"""

from __future__ import annotations

import json
from typing import Any

from cairn.events.registry import EventRegistry

__all__ = ["PERSONAL_MARK", "check_schemas", "dumps_schemas", "export_schemas", "personal_problems"]

# issue 12: a personal field is marked in its schema and stored only sealed (docs/privacy.md)
PERSONAL_MARK = "x-personal"
SEALED_KEYS = frozenset({"pii", "sub", "kid", "ct"})

_DOC_KEYWORDS = frozenset({"title", "description", "examples"})
_NAME_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})


def export_schemas(registry: EventRegistry) -> dict[str, Any]:
    """``{type: {"schema_version", "upcasters_from", "schema"}}``, JSON-normalized."""
    return json.loads(json.dumps(registry.json_schemas(), sort_keys=True))


def dumps_schemas(schemas: dict[str, Any]) -> str:
    """Stable text for the committed file (sorted keys, two-space indent, final newline)."""
    return json.dumps(schemas, sort_keys=True, indent=2) + "\n"


def _shape(node: Any, *, names: bool = False) -> Any:
    """The schema without documentation keywords. ``names``: ``node`` maps names to schemas."""
    if isinstance(node, dict):
        if names:
            return {key: _shape(value) for key, value in node.items()}
        return {
            key: _shape(value, names=key in _NAME_MAPS)
            for key, value in node.items()
            if key not in _DOC_KEYWORDS
        }
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return node


def check_schemas(committed: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Problems that would make stored events unreadable or mis-read; empty when safe.

    - a type in the committed export is gone (its stored events could not be decoded);
    - a schema version went down;
    - the schema changed but ``schema_version`` did not;
    - ``schema_version`` went up without an upcaster from the committed version onwards;
    - an upcaster the committed export had is gone;
    - a field marked personal lost its mark, or a personal field is not stored sealed
      (``personal_problems``): plaintext personal data would reach the immutable log.
    """
    problems: list[str] = []
    for name in sorted(current):
        problems.extend(personal_problems(name, current[name]["schema"], committed.get(name, {}).get("schema")))
    for name in sorted(committed):
        old = committed[name]
        new = current.get(name)
        if new is None:
            problems.append(f"{name}: event type removed, but stored events of it still exist")
            continue
        old_version, new_version = int(old["schema_version"]), int(new["schema_version"])
        if new_version < old_version:
            problems.append(f"{name}: schema_version went down from {old_version} to {new_version}")
            continue
        available = set(new.get("upcasters_from", ()))
        dropped = sorted(set(old.get("upcasters_from", ())) - available)
        if dropped:
            listed = ", ".join(f"v{v}" for v in dropped)
            problems.append(f"{name}: upcaster from {listed} removed, but events stored at it still exist")
        changed = _shape(old["schema"]) != _shape(new["schema"])
        if new_version == old_version:
            if changed:
                problems.append(
                    f"{name}: schema changed without a schema_version bump "
                    f"(bump to {old_version + 1} and add an upcaster from v{old_version})"
                )
            continue
        missing = [v for v in range(old_version, new_version) if v not in available]
        if missing:
            listed = ", ".join(f"v{v}" for v in missing)
            problems.append(f"{name}: schema_version {new_version} has no upcaster from {listed}")
    return problems


def _personal(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        field: spec
        for field, spec in (schema.get("properties") or {}).items()
        if isinstance(spec, dict) and spec.get(PERSONAL_MARK)
    }


def _sealed_only(spec: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Every alternative of ``spec`` is null or the sealed-value object (nothing else)."""
    options = spec.get("anyOf") or [spec]
    for option in options:
        if option.get("type") == "null":
            continue
        ref = option.get("$ref", "")
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/$defs/") else option
        props = (target or {}).get("properties") or {}
        if set(props) != SEALED_KEYS or (target or {}).get("additionalProperties") is not False:
            return False
    return True


def personal_problems(name: str, schema: dict[str, Any], committed: dict[str, Any] | None) -> list[str]:
    """A personal field must be sealed-or-null; a field once personal stays personal (a stored
    event has sealed values there, and new code must never write plaintext to that field)."""
    found: list[str] = []
    defs = schema.get("$defs") or {}
    marked = _personal(schema)
    for field, spec in sorted(marked.items()):
        if not _sealed_only(spec, defs):
            found.append(f"{name}: personal field {field!r} is not stored sealed (kernel.personal.Sealed)")
    for field in sorted(_personal(committed or {})):
        if field not in marked:
            found.append(f"{name}: field {field!r} was personal and lost its {PERSONAL_MARK} mark")
    return found
