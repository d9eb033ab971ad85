"""Bounded LRU of (version, state) per stream, kept across warm Lambda invocations.

Safe because states are treated as immutable and every append is conditional: a stale entry
costs one failed conditional write, never a wrong event.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class StateCache:
    def __init__(self, maxsize: int = 1024):
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self.maxsize = maxsize
        self._items: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, stream_id: str) -> tuple[int, Any] | None:
        with self._lock:
            item = self._items.get(stream_id)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(stream_id)
            self.hits += 1
            return item

    def put(self, stream_id: str, version: int, state: Any) -> None:
        if self.maxsize == 0:
            return
        with self._lock:
            current = self._items.get(stream_id)
            if current is not None and current[0] > version:
                return  # never move a stream's cached state backwards
            self._items[stream_id] = (version, state)
            self._items.move_to_end(stream_id)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def invalidate(self, stream_id: str) -> None:
        with self._lock:
            self._items.pop(stream_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
