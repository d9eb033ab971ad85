"""The WebSocket protocol (docs/realtime.md), pure: update messages from read-model views,
client messages parsed, error answers.

Updates carry what a client needs to decide whether to re-read (``version``) and the one field
that usually matters (order ``status``, account ``balance``); the rest is a ``GET`` away.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "ProtocolError",
    "Subscribe",
    "error",
    "owner_of",
    "parse_client_message",
    "subscribed",
    "update_message",
]

MAX_MESSAGE_BYTES = 4096
STREAM_ID = re.compile(r"^(order|account)-[A-Za-z0-9-]{1,100}$")
# stream prefix -> (message type, id field, owner field of the view, pushed view field)
KINDS = {
    "order-": ("order.updated", "order_id", "customer_id", "status"),
    "account-": ("account.updated", "account_id", "owner_id", "balance"),
}


class ProtocolError(ValueError):
    """A client message this API does not understand; ``code`` goes back on the socket."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Subscribe:
    stream_id: str


def _kind(stream_id: str) -> tuple[str, str, str, str] | None:
    for prefix, kind in KINDS.items():
        if stream_id.startswith(prefix):
            return kind
    return None


def owner_of(stream_id: str, view: dict[str, Any] | None) -> str | None:
    kind = _kind(stream_id)
    if kind is None or not view:
        return None
    owner = view.get(kind[2])
    return owner if isinstance(owner, str) else None


def update_message(stream_id: str, version: int, view: dict[str, Any]) -> dict[str, Any] | None:
    """The push for ``view`` at ``version`` (None: not a stream clients follow)."""
    kind = _kind(stream_id)
    if kind is None or not view:
        return None
    msg_type, id_field, _, field = kind
    return {
        "type": msg_type,
        id_field: view.get(id_field, stream_id),
        "version": int(version),
        field: view.get(field),
        "occurred_at": view.get("updated_at"),
    }


def parse_client_message(raw: str | None) -> Subscribe:
    if raw is None or len(raw.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ProtocolError("bad-message", f"a message is a JSON object of at most {MAX_MESSAGE_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ProtocolError("bad-message", "a message must be JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError("bad-message", "a message must be a JSON object")
    action = body.get("action")
    if action != "subscribe":
        raise ProtocolError("unknown-action", 'known actions: "subscribe"')
    stream_id = body.get("stream_id")
    if not isinstance(stream_id, str):
        raise ProtocolError("bad-message", 'subscribe needs "stream_id" (a string)')
    return Subscribe(stream_id)


def valid_stream_id(stream_id: str) -> bool:
    return bool(STREAM_ID.match(stream_id))


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}


def subscribed(stream_id: str, version: int) -> dict[str, Any]:
    return {"type": "subscribed", "stream_id": stream_id, "version": int(version)}
