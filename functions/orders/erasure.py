"""The audit record of an erasure: a ``PersonalDataErased`` event in the stream ``erasure-<subject>``.

The key's destruction (``cairn.privacy``) is one write and comes first; this event follows. A
crash between the two leaves the key destroyed and the event missing: the retry (the erasure is
idempotent) finds the tombstone again and appends the event then. An event already recording this
tombstone (same ``erased_at`` and key id) is not appended twice; a later erasure of new data (a
subject who came back) appends another one. The stream is hash-chained like every stream, so the
erasure record is tamper-evident (docs/privacy.md "Proving an erasure").
"""

from __future__ import annotations

from cairn.commands import RetriesExhaustedError
from cairn.events import EventMetadata, NewEvent
from cairn.privacy import Tombstone
from cairn.store.base import ConcurrencyError, EventStore
from orders.domain import PersonalDataErased

__all__ = ["ERASURE_PREFIX", "erasure_stream", "record_erasure"]

ERASURE_PREFIX = "erasure-"


def erasure_stream(subject: str) -> str:
    return ERASURE_PREFIX + subject


def record_erasure(store: EventStore, tombstone: Tombstone, *, correlation_id: str | None = None) -> bool:
    """Append the tombstone's event unless the stream already records it; True if appended."""
    stream_id = erasure_stream(tombstone.subject)
    for _ in range(3):  # a concurrent erasure of the same subject appends the same record
        version = 0
        for envelope in store.read(stream_id):
            version = envelope.version
            data = envelope.data
            if (data.erased_at, data.erased_key_id) == (tombstone.erased_at, tombstone.erased_key_id):
                return False
        event = PersonalDataErased(
            subject=tombstone.subject,
            erased_at=tombstone.erased_at,
            erased_by=tombstone.erased_by,
            erased_key_id=tombstone.erased_key_id,
        )
        try:
            store.append(
                stream_id,
                [NewEvent(event, EventMetadata(correlation_id=correlation_id, actor=tombstone.erased_by))],
                expected_version=version,
            )
            return True
        except ConcurrencyError:
            continue
    raise RetriesExhaustedError(stream_id, version, version + 1)  # transient: 503 + Retry-After
