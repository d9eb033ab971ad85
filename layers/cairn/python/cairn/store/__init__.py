"""The append-only event store: one interface, in-memory and DynamoDB adapters.

The DynamoDB adapter is imported lazily (``from cairn.store import DynamoDBEventStore`` or
``cairn.store.dynamodb``) so importing this package never pulls in botocore.
"""

from typing import Any

from cairn.store.base import (
    AnchorMismatchError,
    AppendResult,
    ConcurrencyError,
    CorruptEventError,
    EventStore,
    EventStoreError,
    EventTooLargeError,
    Head,
    IdempotencyKeyReuseError,
    IdempotencyRecord,
    TooManyEventsError,
    TransactionConflictError,
)
from cairn.store.memory import InMemoryEventStore

_LAZY = {"DynamoDBEventStore", "envelope_from_item"}

__all__ = [
    "AnchorMismatchError",
    "AppendResult",
    "ConcurrencyError",
    "CorruptEventError",
    "DynamoDBEventStore",
    "EventStore",
    "EventStoreError",
    "EventTooLargeError",
    "Head",
    "IdempotencyKeyReuseError",
    "IdempotencyRecord",
    "InMemoryEventStore",
    "TooManyEventsError",
    "TransactionConflictError",
    "envelope_from_item",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from cairn.store import dynamodb

        return getattr(dynamodb, name)
    raise AttributeError(f"module 'cairn.store' has no attribute {name!r}")
