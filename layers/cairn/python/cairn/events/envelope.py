"""The envelope every stored event travels in.

Plain slotted dataclasses rather than pydantic models: envelopes are built for every event read
(10k+ per replay), and the payload inside is already a validated pydantic model.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel


def utc_now_iso() -> str:
    """ISO 8601 UTC with millisecond precision and a ``Z`` (sortable as a string)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# RFC 3339 / ISO 8601 extended form, ASCII digits only (``re``'s \d would take any script's
# digits): date, optional time with optional fraction, optional ``Z`` or numeric offset
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)

_MICROS = re.compile(r"(\.[0-9]{6})[0-9]+")


def normalize_timestamp(value: str | datetime) -> str:
    """Any ISO 8601 instant -> the stored form (``YYYY-MM-DDTHH:MM:SS.mmmZ``), so strings compare as times.

    Total over strings: the form above or ``ValueError`` (also for years that do not exist in
    UTC). Naive values are taken as UTC. The year is always 4 digits (``strftime("%Y")`` gives
    ``"999"`` for 999, which sorts after ``"2026"``). Sub-millisecond digits are truncated,
    which keeps ``event.occurred_at <= normalize_timestamp(t)`` true for an event stored at ``t``.
    """
    if isinstance(value, str):
        if len(value) > 40 or not _INSTANT.fullmatch(value):
            raise ValueError(f"not an ISO 8601 instant: {value[:40]!r}")
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        value = datetime.fromisoformat(_MICROS.sub(r"\1", text))  # fromisoformat takes 6 fraction digits
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("instant out of range") from None
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def new_event_id() -> str:
    """A time-ordered unique id (UUIDv7 layout) so ids sort roughly by creation."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return str(uuid.UUID(int=_uuid7_int(ms, rand)))


def _uuid7_int(ms: int, rand: int) -> int:
    rand_a = (rand >> 68) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    return ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


@dataclass(frozen=True, slots=True)
class EventMetadata:
    """Who and what caused an event: kept with every event for the audit trail."""

    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    command_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "command_id": self.command_id,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> EventMetadata:
        if not raw:
            return cls()
        return cls(
            correlation_id=raw.get("correlation_id"),
            causation_id=raw.get("causation_id"),
            actor=raw.get("actor"),
            command_id=raw.get("command_id"),
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event decided but not yet stored: the store assigns version and id."""

    data: BaseModel
    metadata: EventMetadata = field(default_factory=EventMetadata)
    event_id: str | None = None
    occurred_at: str | None = None


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """A stored event. ``data`` is the current-schema pydantic model (upcast on read)."""

    event_id: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    occurred_at: str
    data: BaseModel
    metadata: EventMetadata
    hash: str | None = None  # hex SHA-256 of the canonical content + prev_hash (cairn.integrity)
    prev_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the shape of the HTTP audit trail)."""
        return {
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "occurred_at": self.occurred_at,
            "data": self.data.model_dump(mode="json"),
            "metadata": self.metadata.to_dict(),
            "hash": self.hash,
            "prev_hash": self.prev_hash,
        }
