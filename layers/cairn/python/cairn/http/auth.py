r"""Who is calling: the JWT claims API Gateway's authorizer already verified.

The HTTP API JWT authorizer puts the token's claims in ``requestContext.authorizer.jwt.claims``
as strings: a list claim such as ``cognito:groups`` arrives as ``"[staff admin]"`` — one pair of
brackets around the names, separated by single spaces. The local runtime passes the same shape;
a real list (a direct invocation) is accepted too.

Parsing is exact, never lenient: Cognito group names are ``[\p{L}\p{M}\p{S}\p{N}\p{P}]+`` (no
whitespace, but commas, quotes and brackets are legal), so whitespace is the only separator.
A group named ``ops,staff`` or ``"staff"`` is that group, never ``staff``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STAFF_GROUP = "staff"


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    groups: frozenset[str] = frozenset()

    @property
    def is_staff(self) -> bool:
        return STAFF_GROUP in self.groups


def parse_groups(value: Any) -> frozenset[str]:
    """``"[staff admin]"`` (API Gateway's rendering of a list claim) or a list -> the set of names.

    A string without the outer brackets is a single-valued claim: one name, as it is.
    """
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(v for v in value if isinstance(v, str) and v)
    if not isinstance(value, str):
        return frozenset()
    if value.startswith("[") and value.endswith("]"):
        return frozenset(value[1:-1].split())
    return frozenset({value}) if value else frozenset()


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
