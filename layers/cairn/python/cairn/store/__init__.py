"""The append-only event store: one interface, in-memory and DynamoDB adapters."""

from cairn.store.base import (
    AppendResult,
    ConcurrencyError,
    CorruptEventError,
    EventStore,
    EventStoreError,
    EventTooLargeError,
    IdempotencyKeyReuseError,
    IdempotencyRecord,
    TooManyEventsError,
)
from cairn.store.memory import InMemoryEventStore

__all__ = [
    "AppendResult",
    "ConcurrencyError",
    "CorruptEventError",
    "EventStore",
    "EventStoreError",
    "EventTooLargeError",
    "IdempotencyKeyReuseError",
    "IdempotencyRecord",
    "InMemoryEventStore",
    "TooManyEventsError",
]
