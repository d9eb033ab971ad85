"""The archive tier's contract: segments, manifests, errors and the segment codec.

A *segment* is a gzip of JSON lines, one stored item per line, exactly as DynamoDB holds it
(DynamoDB JSON, ``hash`` and ``prev_hash`` included), so reading it back yields the same items a
Query would have: the store's read paths, the fold and the verifier need no second decoder. A
stream's *manifest* lists its segments in version order (key, version range, the hash chained
to and the last hash, SHA-256 and size of the compressed bytes) and ``archived_through``, the
highest archived version. Pure stdlib: importing this never pulls in botocore.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cairn.integrity import GENESIS, ChainVerifier

__all__ = [
    "MANIFEST_FORMAT",
    "ArchiveCorruptError",
    "ArchiveError",
    "ArchiveStore",
    "ArchiveUnavailableError",
    "Manifest",
    "ManifestConflictError",
    "SegmentRef",
    "decode_segment",
    "encode_segment",
    "verify_segment",
]

MANIFEST_FORMAT = 1


class ArchiveError(Exception):
    """An archived range cannot be read. Names the stream and the range: never a shorter history."""

    def __init__(self, stream_id: str, first: int, last: int | None, reason: str):
        span = f"{first}..{last}" if last is not None else f"{first}.."
        super().__init__(f"archived events {span} of stream {stream_id!r}: {reason}")
        self.stream_id = stream_id
        self.first = first
        self.last = last
        self.reason = reason


class ArchiveUnavailableError(ArchiveError):
    """S3 is slow, throttling or down: a bounded wait was spent; try again later."""


class ArchiveCorruptError(ArchiveError):
    """A segment is missing, fails its checksum, or does not continue the chain; or the manifest
    does not cover what DynamoDB no longer holds. Needs an operator (docs/archive.md, Restore)."""


class ManifestConflictError(Exception):
    """Another archiver wrote the stream's manifest between our read and our write."""


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """One segment as the manifest records it."""

    key: str
    first_version: int
    last_version: int
    prev_hash: str  # the hash the first event chains to (GENESIS for version 1)
    last_hash: str
    sha256: str  # of the compressed bytes
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "prev_hash": self.prev_hash,
            "last_hash": self.last_hash,
            "sha256": self.sha256,
            "bytes": self.size,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SegmentRef:
        return cls(
            str(raw["key"]),
            int(raw["first_version"]),
            int(raw["last_version"]),
            str(raw["prev_hash"]),
            str(raw["last_hash"]),
            str(raw["sha256"]),
            int(raw["bytes"]),
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """A stream's archived prefix: segments contiguous from version 1."""

    stream_id: str
    segments: tuple[SegmentRef, ...] = ()
    etag: str | None = field(default=None, compare=False)  # what the adapter read (compare-and-swap)

    @property
    def archived_through(self) -> int:
        return self.segments[-1].last_version if self.segments else 0

    @property
    def last_hash(self) -> str:
        return self.segments[-1].last_hash if self.segments else GENESIS

    def covering(self, first: int, last: int) -> list[SegmentRef]:
        """The segments holding versions ``first..last`` (in order)."""
        return [s for s in self.segments if s.last_version >= first and s.first_version <= last]

    def with_segment(self, segment: SegmentRef) -> Manifest:
        return replace(self, segments=(*self.segments, segment))

    def problems(self) -> list[str]:
        """What is wrong with the manifest on its own: ranges not contiguous from 1, links broken."""
        found = []
        expected, link = 1, GENESIS
        for s in self.segments:
            if s.first_version != expected or s.last_version < s.first_version:
                found.append(f"segment {s.key} covers {s.first_version}..{s.last_version}, expected to start at {expected}")
            if s.prev_hash != link:
                found.append(f"segment {s.key} does not chain to the segment before it")
            expected, link = s.last_version + 1, s.last_hash
        return found

    def to_json(self) -> bytes:
        body = {
            "format": MANIFEST_FORMAT,
            "stream_id": self.stream_id,
            "archived_through": self.archived_through,
            "last_hash": self.last_hash,
            "segments": [s.to_dict() for s in self.segments],
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, stream_id: str, body: bytes, etag: str | None = None) -> Manifest:
        raw = json.loads(body)
        if raw.get("format") != MANIFEST_FORMAT or raw.get("stream_id") != stream_id:
            raise ValueError("not this stream's manifest (format or stream id differs)")
        return cls(stream_id, tuple(SegmentRef.from_dict(s) for s in raw.get("segments", ())), etag)


# -- segment codec -------------------------------------------------------------------------------
def encode_segment(items: Sequence[Mapping[str, Any]]) -> bytes:
    """Items -> gzip JSON lines. Deterministic (mtime 0, sorted keys): a rerun writes the same bytes."""
    lines = b"".join(json.dumps(item, separators=(",", ":"), sort_keys=True).encode() + b"\n" for item in items)
    return gzip.compress(lines, compresslevel=6, mtime=0)


def decode_segment(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(body).splitlines() if line]


def verify_segment(stream_id: str, ref: SegmentRef, body: bytes) -> list[dict[str, Any]]:
    """The segment's items if its bytes match the manifest's checksum and its items form the
    chain ``ref`` promises (contiguous versions, every hash recomputed); ArchiveCorruptError otherwise."""
    if hashlib.sha256(body).hexdigest() != ref.sha256:
        raise ArchiveCorruptError(stream_id, ref.first_version, ref.last_version, f"segment {ref.key} fails its checksum")
    try:
        items = decode_segment(body)
    except (OSError, ValueError, EOFError) as exc:
        raise ArchiveCorruptError(stream_id, ref.first_version, ref.last_version, f"segment {ref.key} undecodable: {exc}") from exc
    verifier = ChainVerifier(stream_id, after=ref.first_version - 1, head_hash=ref.prev_hash)
    for item in items:
        if not verifier.feed(item):
            break
    if not verifier.intact or verifier.version != ref.last_version or verifier.head_hash != ref.last_hash:
        problem = verifier.problem or f"ends at version {verifier.version}"
        raise ArchiveCorruptError(stream_id, ref.first_version, ref.last_version, f"segment {ref.key}: {problem}")
    return items


def segment_ref(stream_id: str, key: str, items: Sequence[Mapping[str, Any]], body: bytes) -> SegmentRef:
    first, last = items[0], items[-1]
    return SegmentRef(
        key,
        int(first["version"]["N"]),
        int(last["version"]["N"]),
        first["prev_hash"]["S"],
        last["hash"]["S"],
        hashlib.sha256(body).hexdigest(),
        len(body),
    )


class ArchiveStore(ABC):
    """Where segments and manifests live (S3 in production: :mod:`cairn.archive.s3`).

    Every method raises ArchiveUnavailableError when the backend cannot answer in its budget."""

    @abstractmethod
    def segment_key(self, stream_id: str, first: int, last: int) -> str: ...

    @abstractmethod
    def put_segment(self, stream_id: str, key: str, body: bytes) -> None: ...

    @abstractmethod
    def get_segment(self, stream_id: str, ref: SegmentRef) -> bytes:
        """The bytes; ArchiveCorruptError if the object is missing."""

    @abstractmethod
    def get_manifest(self, stream_id: str) -> Manifest | None: ...

    @abstractmethod
    def put_manifest(self, manifest: Manifest) -> Manifest:
        """Compare-and-swap on what was read (``manifest.etag``; None: must not exist yet);
        ManifestConflictError when someone else wrote in between. Returns it with its new etag."""

    @abstractmethod
    def streams(self) -> Iterable[str]:
        """Every stream with a manifest."""

    def read_items(self, stream_id: str, first: int, last: int, manifest: Manifest | None = None) -> list[dict[str, Any]]:
        """Archived items ``first..last`` of a stream, verified (checksum and chain from the
        manifest). Raises ArchiveCorruptError when the manifest does not cover the range."""
        manifest = manifest if manifest is not None else self.get_manifest(stream_id)
        if manifest is None or manifest.archived_through < last:
            through = 0 if manifest is None else manifest.archived_through
            raise ArchiveCorruptError(
                stream_id, first, last, f"not in DynamoDB and the manifest covers only 1..{through}"
            )
        out: list[dict[str, Any]] = []
        for ref in manifest.covering(first, last):
            items = verify_segment(stream_id, ref, self.get_segment(stream_id, ref))
            out.extend(i for i in items if first <= int(i["version"]["N"]) <= last)
        if not out or int(out[0]["version"]["N"]) != first or int(out[-1]["version"]["N"]) != last or len(out) != last - first + 1:
            raise ArchiveCorruptError(stream_id, first, last, "the manifest's segments do not hold this range")
        return out
