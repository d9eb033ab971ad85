"""The hash chain: every event commits to its content and to the event before it.

One place defines the chain so every writer, reader and checker agrees (docs/event-store.md):

- :func:`canonical` — the bytes an event's hash covers: a compact JSON array (ASCII, so every
  language reproduces it byte for byte) of a format tag, stream id, version, event id, type,
  schema version, occurred at, the stored ``data`` and ``metadata`` JSON strings *as stored*
  (never re-serialized), and the previous event's hash.
- :func:`event_hash` — hex SHA-256 of that; version 1 chains to :data:`GENESIS`.
- :class:`ChainVerifier` — incremental: feed items in version order (from the start, or from a
  verified prefix: ``after`` + its head hash), read ``problem`` / ``first_bad_version``.
- :func:`verify_items` / :func:`verify_stream` — a whole stream at once, with an optional
  ``expected_head`` (the highest version seen elsewhere: projections, snapshots, digests), so
  removing the newest events is caught too.
- :func:`digest_of` — the root hash over every stream head, for the digest bucket.

Pure stdlib: the layer's store, the verification routes and ``cairn_tools.verify`` import it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORMAT",
    "GENESIS",
    "ChainVerifier",
    "Verification",
    "canonical",
    "digest_of",
    "event_hash",
    "item_fields",
    "verify_items",
]

FORMAT = "cairn-event-v1"
GENESIS = "0" * 64  # the "previous hash" of version 1

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_sha256 = hashlib.sha256


def canonical(
    stream_id: str,
    version: int,
    event_id: str,
    type_name: str,
    schema_version: int,
    occurred_at: str,
    data_json: str,
    metadata_json: str,
    prev_hash: str,
) -> bytes:
    """The canonical encoding of one event (what its hash covers)."""
    return _dumps(
        [FORMAT, stream_id, version, event_id, type_name, schema_version, occurred_at, data_json, metadata_json, prev_hash]
    ).encode()


def event_hash(
    stream_id: str,
    version: int,
    event_id: str,
    type_name: str,
    schema_version: int,
    occurred_at: str,
    data_json: str,
    metadata_json: str,
    prev_hash: str,
) -> str:
    """Hex SHA-256 of :func:`canonical`."""
    return _sha256(
        _dumps(
            [
                FORMAT,
                stream_id,
                version,
                event_id,
                type_name,
                schema_version,
                occurred_at,
                data_json,
                metadata_json,
                prev_hash,
            ]
        ).encode()
    ).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        for kind in ("S", "N"):
            if kind in value:
                return value[kind]
        return None
    return value


_FIELDS = ("stream_id", "version", "event_id", "type", "schema_version", "occurred_at", "data", "metadata")


def item_fields(item: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """(stream_id, version, event_id, type, schema_version, occurred_at, data, metadata, hash,
    prev_hash) of a stored item (DynamoDB JSON or plain values); None if a field is malformed.
    A missing ``metadata`` reads as ``"{}"``; a missing hash or prev_hash as None."""
    try:
        values = [_plain(item.get(name)) for name in _FIELDS]
        if values[7] is None:
            values[7] = "{}"
        if any(v is None for v in values):
            return None
        values[1] = int(values[1])
        values[4] = int(values[4])
        if not all(isinstance(values[i], str) for i in (0, 2, 3, 5, 6, 7)):
            return None
        return (*values, _plain(item.get("hash")), _plain(item.get("prev_hash")))
    except (TypeError, ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer of a verification (the shape of ``GET …/verification``)."""

    stream_id: str
    version: int  # the last version that verified
    head_hash: str  # its hash (GENESIS when nothing verified)
    intact: bool
    first_bad_version: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.intact:
            return {"stream_id": self.stream_id, "version": self.version, "head_hash": self.head_hash, "intact": True}
        return {
            "stream_id": self.stream_id,
            "intact": False,
            "first_bad_version": self.first_bad_version,
            "problem": self.problem,
        }


class ChainVerifier:
    """Checks a stream's items in version order, incrementally.

    Start from the beginning (``after=0``) or from a prefix already verified (``after`` and its
    ``head_hash``). Stops at the first problem: later items are not looked at.
    """

    __slots__ = ("first_bad_version", "head_hash", "problem", "stream_id", "version", "witnesses")

    def __init__(
        self, stream_id: str, after: int = 0, head_hash: str = GENESIS, witnesses: Mapping[int, str] | None = None
    ):
        self.stream_id = stream_id
        self.witnesses = dict(witnesses or {})  # version -> hash recorded elsewhere (snapshots, digests)
        self.version = after
        self.head_hash = head_hash
        self.problem: str | None = None
        self.first_bad_version: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def _fail(self, version: int, problem: str) -> bool:
        self.first_bad_version = version
        self.problem = problem
        return False

    def feed(self, item: Mapping[str, Any]) -> bool:
        """One stored item (DynamoDB JSON or plain). False once the chain is broken."""
        if self.problem is not None:
            return False
        expected = self.version + 1
        fields = item_fields(item)
        if fields is None:
            return self._fail(expected, "malformed item")
        return self.feed_fields(*fields)

    def feed_fields(
        self,
        stream_id: str,
        version: int,
        event_id: str,
        type_name: str,
        schema_version: int,
        occurred_at: str,
        data_json: str,
        metadata_json: str,
        stored_hash: str | None,
        prev_hash: str | None,
    ) -> bool:
        if self.problem is not None:
            return False
        expected = self.version + 1
        if stream_id != self.stream_id:
            return self._fail(expected, f"item of stream {stream_id!r} in this stream")
        if version != expected:
            if version > expected:
                return self._fail(expected, f"version {expected} is missing (next stored is {version})")
            return self._fail(version, f"version {version} out of order")
        if not stored_hash or not prev_hash:
            return self._fail(version, "event has no hash")
        if prev_hash != self.head_hash:
            return self._fail(version, f"prev_hash does not match the hash of version {version - 1}")
        computed = event_hash(
            stream_id, version, event_id, type_name, schema_version, occurred_at, data_json, metadata_json, prev_hash
        )
        if computed != stored_hash:
            return self._fail(version, "content does not match its hash")
        witness = self.witnesses.get(version)
        if witness is not None and witness != stored_hash:
            return self._fail(version, "hash differs from the one recorded elsewhere (snapshot or digest)")
        self.version = version
        self.head_hash = stored_hash
        return True

    def finish(self, expected_head: int | None = None, expected_head_hash: str | None = None) -> Verification:
        """The result; ``expected_head``: the highest version seen elsewhere (a shorter stream is
        truncated); ``expected_head_hash``: that version's hash as recorded elsewhere."""
        if self.problem is None and expected_head is not None and expected_head > self.version:
            self._fail(self.version + 1, f"stream ends at version {self.version}, but version {expected_head} was seen")
        if (
            self.problem is None
            and expected_head_hash is not None
            and expected_head is not None
            and expected_head == self.version
            and expected_head_hash != self.head_hash
        ):
            self._fail(self.version, f"head hash differs from the one recorded for version {expected_head}")
        return Verification(
            self.stream_id, self.version, self.head_hash, self.problem is None, self.first_bad_version, self.problem
        )


def verify_items(
    stream_id: str,
    items: Iterable[Mapping[str, Any]],
    *,
    expected_head: int | None = None,
    expected_head_hash: str | None = None,
    witnesses: Mapping[int, str] | None = None,
) -> Verification:
    """Verify a whole stream from version 1 (items in version order). ``witnesses``: hashes of
    some versions recorded elsewhere; ``expected_head``: the highest version seen elsewhere."""
    verifier = ChainVerifier(stream_id, witnesses=witnesses)
    for item in items:
        if not verifier.feed(item):
            break
    return verifier.finish(expected_head, expected_head_hash)


def digest_of(heads: Mapping[str, tuple[int, str]]) -> str:
    """Root hash over every stream head: SHA-256 of the sorted ``stream_id version hash`` lines."""
    h = _sha256()
    for stream_id in sorted(heads):
        version, head_hash = heads[stream_id]
        h.update(_dumps([stream_id, version, head_hash]).encode())
        h.update(b"\n")
    return h.hexdigest()
