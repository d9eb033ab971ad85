"""Snapshots of folded state: an interface, in-memory and S3 adapters.

The S3 adapter is imported lazily (``from cairn.snapshots import S3SnapshotStore`` or
``cairn.snapshots.s3``) so importing this package never pulls in botocore.
"""

from typing import Any

from cairn.snapshots.base import Snapshot, SnapshotError, SnapshotStore
from cairn.snapshots.memory import InMemorySnapshotStore

__all__ = ["InMemorySnapshotStore", "S3SnapshotStore", "Snapshot", "SnapshotError", "SnapshotStore"]


def __getattr__(name: str) -> Any:
    if name == "S3SnapshotStore":
        from cairn.snapshots.s3 import S3SnapshotStore

        return S3SnapshotStore
    raise AttributeError(f"module 'cairn.snapshots' has no attribute {name!r}")
