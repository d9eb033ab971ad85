"""In-memory KeyStore: the fake for unit tests, same contract as the DynamoDB adapter."""

from __future__ import annotations

import threading

from cairn.privacy.base import KeyStore, Tombstone, WrappedKey

__all__ = ["InMemoryKeyStore"]


class InMemoryKeyStore(KeyStore):
    def __init__(self) -> None:
        self._items: dict[str, WrappedKey | Tombstone] = {}
        self._lock = threading.Lock()

    def get(self, subject: str) -> WrappedKey | Tombstone | None:
        with self._lock:
            return self._items.get(subject)

    def put_if_absent(self, key: WrappedKey) -> WrappedKey:
        with self._lock:
            current = self._items.get(key.subject)
            if isinstance(current, WrappedKey):
                return current
            self._items[key.subject] = key
            return key

    def erase(self, subject: str, *, erased_at: str, erased_by: str) -> Tombstone:
        with self._lock:
            current = self._items.get(subject)
            if isinstance(current, Tombstone):
                return current
            tombstone = Tombstone(
                subject, erased_at, erased_by, current.key_id if isinstance(current, WrappedKey) else None
            )
            self._items[subject] = tombstone
            return tombstone
