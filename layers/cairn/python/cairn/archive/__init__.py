"""The archive tier: old events in compressed, verified S3 segments, read transparently.

- :mod:`cairn.archive.base` — segments, manifests, errors, the :class:`ArchiveStore` contract.
- :mod:`cairn.archive.s3` — the S3 adapter (lazy: botocore).
- :mod:`cairn.archive.store` — :class:`ArchivedEventStore`, the DynamoDB store that reads archived
  ranges from S3 (lazy).
- :mod:`cairn.archive.archiver` — the archiver's policy and crash-safe steps (lazy).

See docs/archive.md.
"""

from typing import Any

from cairn.archive.base import (
    ArchiveCorruptError,
    ArchiveError,
    ArchiveStore,
    ArchiveUnavailableError,
    Manifest,
    ManifestConflictError,
    SegmentRef,
    decode_segment,
    encode_segment,
    verify_segment,
)

_LAZY = {
    "ArchivedEventStore": "cairn.archive.store",
    "S3ArchiveStore": "cairn.archive.s3",
    "ArchivePolicy": "cairn.archive.archiver",
    "Archiver": "cairn.archive.archiver",
}

__all__ = [
    "ArchiveCorruptError",
    "ArchiveError",
    "ArchivePolicy",
    "ArchiveStore",
    "ArchiveUnavailableError",
    "ArchivedEventStore",
    "Archiver",
    "Manifest",
    "ManifestConflictError",
    "S3ArchiveStore",
    "SegmentRef",
    "decode_segment",
    "encode_segment",
    "verify_segment",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cairn.archive' has no attribute {name!r}")
