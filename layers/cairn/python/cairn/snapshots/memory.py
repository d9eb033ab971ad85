"""In-memory SnapshotStore, same contract as the S3 one."""

from __future__ import annotations

import copy
import threading

from cairn.snapshots.base import Snapshot, SnapshotStore


class InMemorySnapshotStore(SnapshotStore):
    def __init__(self) -> None:
        self._items: dict[tuple[str, int], Snapshot] = {}
        self._lock = threading.Lock()

    def get(self, stream_id: str, state_schema_version: int) -> Snapshot | None:
        with self._lock:
            found = self._items.get((stream_id, state_schema_version))
        return copy.deepcopy(found)

    def put(self, snapshot: Snapshot, *, replace: bool = False) -> None:
        key = (snapshot.stream_id, snapshot.state_schema_version)
        with self._lock:
            current = self._items.get(key)
            if replace or current is None or current.version < snapshot.version:
                self._items[key] = copy.deepcopy(snapshot)
