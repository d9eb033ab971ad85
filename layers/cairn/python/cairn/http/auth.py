"""Who is calling: the JWT claims API Gateway's authorizer already verified.

The HTTP API JWT authorizer puts the token's claims in ``requestContext.authorizer.jwt.claims``
as strings: a list claim such as ``cognito:groups`` arrives as ``"[staff admin]"`` (or
``"staff"`` for one group). The local runtime passes the same shape; a real list is accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STAFF_GROUP = "staff"
_GROUP_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    groups: frozenset[str] = frozenset()

    @property
    def is_staff(self) -> bool:
        return STAFF_GROUP in self.groups


def parse_groups(value: Any) -> frozenset[str]:
    """``"[staff admin]"``, ``"staff"``, ``'["staff","admin"]'``, ``"staff,admin"`` or a list -> set."""
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        items = [str(v) for v in value]
    else:
        text = str(value).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        items = _GROUP_SPLIT.split(text)
    return frozenset(g for g in (item.strip().strip("\"'") for item in items) if g)


def claims_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The verified JWT claims of an API Gateway v2 event ({} when there is no authorizer)."""
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    jwt = authorizer.get("jwt") or {}
    claims = jwt.get("claims")
    return claims if isinstance(claims, Mapping) else {}


def principal_of(event: Mapping[str, Any]) -> Principal | None:
    """The caller, or None when the request carries no verified subject."""
    claims = claims_of(event)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        return None
    return Principal(sub=sub, groups=parse_groups(claims.get("cognito:groups")))


__all__ = ["STAFF_GROUP", "Principal", "claims_of", "parse_groups", "principal_of"]
