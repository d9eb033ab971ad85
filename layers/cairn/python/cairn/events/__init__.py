"""Event envelope, type registry and upcasters."""

from cairn.events.envelope import (
    EventEnvelope,
    EventMetadata,
    NewEvent,
    new_event_id,
    normalize_timestamp,
    utc_now_iso,
)
from cairn.events.registry import (
    EventRegistry,
    SchemaVersionError,
    UnknownEventTypeError,
    UpcasterMissingError,
)

__all__ = [
    "EventEnvelope",
    "EventMetadata",
    "EventRegistry",
    "NewEvent",
    "SchemaVersionError",
    "UnknownEventTypeError",
    "UpcasterMissingError",
    "new_event_id",
    "normalize_timestamp",
    "utc_now_iso",
]
