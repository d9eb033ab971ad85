"""Request headers with protocol meaning: versions (ETag/If-Match), idempotency, correlation.

Syntax checks of ``If-Match`` and ``Idempotency-Key`` are declared as Powertools ``Header``
parameters (validation -> 422, documented in OpenAPI); the helpers here turn the valid strings
into what the runtime needs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header

from cairn.store.base import fingerprint_of

IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]{1,18}"?)\s*$'
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
# no control, format (bidi, zero-width) or line-separator characters: kernel.money's PLAIN_TEXT_PATTERN
PLAIN_TEXT_PATTERN = (
    r"^[^\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E"
    r"\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD"
    r"\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]*$"
)

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        description='Apply only if the stream is at this version: the ETag of a previous answer, e.g. "3"',
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=PLAIN_TEXT_PATTERN,
        description="A repeat with the same key and body returns the first answer and appends nothing",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """``"3"``, ``W/"3"`` or ``3`` -> 3; ``*`` or absent -> None (no precondition)."""
    if value is None:
        return None
    match = _IF_MATCH.match(value)
    if match is None:
        raise ValueError(f"If-Match {value!r} is not a version ETag")
    token = match.group(1)
    if token == "*":
        return None
    return int(token.removeprefix("W/").strip('"'))


def correlation_id(headers: Mapping[str, Any]) -> str:
    """The caller's ``X-Correlation-Id`` when it is a sane token, else a fresh one.

    An unusable value (too long, control characters) is replaced rather than echoed back.
    """
    value = headers.get("x-correlation-id")
    if isinstance(value, str) and _CORRELATION_ID.match(value):
        return value
    return str(uuid.uuid4())


def scoped_idempotency_key(sub: str, route: str, key: str) -> str:
    """Keys are per user and route: two users (or two routes) never share an answer."""
    return f"{sub}:{route}:{key}"


def request_fingerprint(route: str, params: Mapping[str, Any], body: Any) -> str:
    """Hash of what makes two requests "the same": route, path parameters and validated body."""
    return fingerprint_of({"route": route, "params": dict(params), "body": body})


__all__ = [
    "IF_MATCH_PATTERN",
    "IdempotencyKey",
    "IfMatch",
    "correlation_id",
    "etag",
    "parse_if_match",
    "request_fingerprint",
    "scoped_idempotency_key",
]
