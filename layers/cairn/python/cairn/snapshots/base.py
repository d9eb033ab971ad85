"""A snapshot is a cache of a fold: always safe to ignore, never allowed to be mis-read."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


class SnapshotError(Exception):
    """A snapshot could not be read or written (callers fall back to a full replay)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream_id: str
    version: int  # the stream version folded into ``state``
    state_schema_version: int  # the state model's version; another version is ignored on load
    state: dict[str, Any]  # JSON-ready state
    last_occurred_at: str  # occurred_at of event ``version`` (lets time travel use the snapshot)
    taken_at: str
    hash: str = ""  # hash of event ``version``: the snapshot is used only if the store still holds it

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "version": self.version,
            "state_schema_version": self.state_schema_version,
            "state": self.state,
            "last_occurred_at": self.last_occurred_at,
            "taken_at": self.taken_at,
            "hash": self.hash,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Snapshot:
        return cls(
            stream_id=raw["stream_id"],
            version=int(raw["version"]),
            state_schema_version=int(raw["state_schema_version"]),
            state=raw["state"],
            last_occurred_at=raw.get("last_occurred_at", ""),
            taken_at=raw.get("taken_at", ""),
            hash=str(raw.get("hash") or ""),
        )


class SnapshotStore(ABC):
    @abstractmethod
    def get(self, stream_id: str, state_schema_version: int) -> Snapshot | None:
        """The latest snapshot of the stream in that state schema version, or None (one GET)."""

    @abstractmethod
    def put(self, snapshot: Snapshot, *, replace: bool = False) -> None:
        """Store ``snapshot`` unless a newer one (higher version) is already there.

        ``replace=True``: store it anyway (the stored one failed verification: e.g. newer than
        the store after a point-in-time restore of the table)."""
