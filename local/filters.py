"""Event patterns as Lambda event filtering and EventBridge rules evaluate them.

One matcher for both: Lambda's ``FilterCriteria`` patterns use EventBridge's pattern grammar
(literals, ``prefix``, ``suffix``, ``anything-but``, ``numeric``, ``exists``,
``equals-ignore-case``, ``wildcard``, ``cidr``, ``$or``); an array in the event matches when
any of its elements does.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FilterError", "matches", "matches_any", "parse_filter_criteria", "sqs_filter_view"]

_MISSING = object()


class FilterError(ValueError):
    """The pattern is not valid."""


def parse_filter_criteria(criteria: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """``FilterCriteria`` of an event source mapping -> list of patterns (OR-ed)."""
    patterns = []
    for f in (criteria or {}).get("Filters") or []:
        raw = f.get("Pattern")
        pattern = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(pattern, dict):
            raise FilterError(f"filter pattern must be a JSON object: {raw!r}")
        patterns.append(pattern)
    return patterns


def matches_any(patterns: Sequence[Mapping[str, Any]], event: Any) -> bool:
    """No patterns: everything matches; else at least one must."""
    return not patterns or any(matches(p, event) for p in patterns)


def sqs_filter_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """Lambda filters an SQS record with ``body`` parsed when it is a JSON object."""
    view = dict(record)
    try:
        body = json.loads(record.get("body", ""))
    except (TypeError, ValueError):
        return view
    if isinstance(body, dict):
        view["body"] = body
    return view


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    if not isinstance(pattern, Mapping):
        raise FilterError(f"pattern must be an object, got {pattern!r}")
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or not rule:
                raise FilterError("$or needs a non-empty list of patterns")
            if not any(matches(p, event) for p in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(rule, Mapping):
            if isinstance(value, list):
                if not any(isinstance(v, Mapping) and matches(rule, v) for v in value):
                    return False
            elif not matches(rule, value if isinstance(value, Mapping) else {}):
                return False
        elif isinstance(rule, list):
            if not rule:
                raise FilterError(f"empty list for {key!r}")
            if not _match_value(rule, value):
                return False
        else:
            raise FilterError(f"{key!r} must map to an object or an array, got {rule!r}")
    return True


def _match_value(matchers: list[Any], value: Any) -> bool:
    for m in matchers:
        if isinstance(m, Mapping) and "exists" in m:
            present = value is not _MISSING and not (isinstance(value, list) and not value)
            if present == bool(m["exists"]):
                return True
            continue
        if value is _MISSING:
            continue
        candidates = value if isinstance(value, list) else [value]
        if isinstance(m, Mapping) and "anything-but" in m:
            # anything-but is about the whole value: no element may be excluded.
            if candidates and all(_named(m, v) for v in candidates):
                return True
            continue
        if any(_one(m, v) for v in candidates):
            return True
    return False


def _one(m: Any, v: Any) -> bool:
    if isinstance(m, Mapping):
        return _named(m, v)
    if isinstance(m, bool) or isinstance(v, bool):
        return m is v if isinstance(m, bool) and isinstance(v, bool) else False
    if isinstance(m, (int, float)) and isinstance(v, (int, float)):
        return float(m) == float(v)
    return m == v


def _named(m: Mapping[str, Any], v: Any) -> bool:
    if len(m) != 1:
        raise FilterError(f"a matcher has exactly one key: {dict(m)!r}")
    (name, arg), = m.items()
    if name == "prefix":
        if isinstance(arg, Mapping) and "equals-ignore-case" in arg:
            return isinstance(v, str) and v.lower().startswith(str(arg["equals-ignore-case"]).lower())
        return isinstance(v, str) and v.startswith(arg)
    if name == "suffix":
        if isinstance(arg, Mapping) and "equals-ignore-case" in arg:
            return isinstance(v, str) and v.lower().endswith(str(arg["equals-ignore-case"]).lower())
        return isinstance(v, str) and v.endswith(arg)
    if name == "equals-ignore-case":
        options = arg if isinstance(arg, list) else [arg]
        return isinstance(v, str) and any(v.lower() == str(o).lower() for o in options)
    if name == "wildcard":
        regex = "^" + ".*".join(re.escape(part) for part in str(arg).split("*")) + "$"
        return isinstance(v, str) and re.match(regex, v, re.S) is not None
    if name == "anything-but":
        if isinstance(arg, Mapping):
            return not _named(arg, v)
        options = arg if isinstance(arg, list) else [arg]
        return not any(_one(o, v) for o in options)
    if name == "numeric":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        ops = {"<": float.__lt__, "<=": float.__le__, "=": float.__eq__, ">": float.__gt__, ">=": float.__ge__}
        if len(arg) % 2:
            raise FilterError(f"numeric needs operator/value pairs: {arg!r}")
        return all(ops[op](float(v), float(num)) for op, num in zip(arg[::2], arg[1::2], strict=True))
    if name == "cidr":
        try:
            return ipaddress.ip_address(v) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    raise FilterError(f"unknown matcher {name!r}")
