"""Snapshots of folded state: an interface, in-memory and S3 adapters."""

from cairn.snapshots.base import Snapshot, SnapshotError, SnapshotStore
from cairn.snapshots.memory import InMemorySnapshotStore

__all__ = ["InMemorySnapshotStore", "Snapshot", "SnapshotError", "SnapshotStore"]
