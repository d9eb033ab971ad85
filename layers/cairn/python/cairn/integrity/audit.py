"""Whole-store verification and the digest (``make verify``, the digest job).

- :func:`scan_streams` groups a parallel Scan of the events table by stream (raw items).
- :func:`verify_store` checks every stream's chain and contiguity, and its head against every
  witness: projection checkpoints, snapshots and the latest digest (a stream that is shorter
  than a witness saw, or gone entirely, is reported).
- :func:`build_digest` / :class:`DigestBucket`: the root hash over every stream head, with a
  count, written to a bucket with S3 Object Lock in compliance mode (nobody, root included,
  can change or delete it before its retention ends), so rewriting or removing history that a
  digest has seen is caught.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cairn.integrity import ChainVerifier, Verification, digest_of

__all__ = [
    "DIGEST_FORMAT",
    "DigestBucket",
    "StoreReport",
    "Witness",
    "build_digest",
    "checkpoint_witnesses",
    "scan_streams",
    "snapshot_witnesses",
    "verify_store",
]

DIGEST_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Witness:
    """Something outside the events table that saw a stream at a version (and maybe its hash)."""

    source: str  # "projection order_view", "snapshot", "digest 2026-…"
    version: int
    hash: str | None = None


@dataclass
class StoreReport:
    streams: int = 0
    events: int = 0
    problems: list[tuple[str, Verification, str]] = field(default_factory=list)  # (stream, result, witness)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _str(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("S", value.get("N"))
    return value


def scan_streams(
    client: Any, table: str, *, segments: int = 4, page_size: int | None = None, on_page: Callable[[int], None] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every item of the events table grouped by stream, each list sorted by version."""
    from concurrent.futures import ThreadPoolExecutor

    def segment(number: int) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        if segments > 1:
            request.update(Segment=number, TotalSegments=segments)
        if page_size:
            request["Limit"] = page_size
        found: list[dict[str, Any]] = []
        while True:
            page = client.scan(**request)
            items = page.get("Items", [])
            found.extend(items)
            if on_page is not None:
                on_page(len(items))
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    streams: dict[str, list[dict[str, Any]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, segments)) as pool:
        for items in pool.map(segment, range(max(1, segments))):
            for item in items:
                streams.setdefault(str(_str(item.get("stream_id"))), []).append(item)
    for items in streams.values():
        items.sort(key=lambda i: int(_str(i.get("version")) or 0))
    return streams


def checkpoint_witnesses(client: Any, table: str, name: str) -> dict[str, Witness]:
    """The highest version each stream's projection checkpoint (active generation) has applied."""
    from cairn.projections.generations import read_generations
    from cairn.projections.layout import CHECKPOINT_SK

    generation = read_generations(client, table).active
    prefix = f"g{generation}#s#"
    seen: dict[str, Witness] = {}
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :cp AND begins_with(pk, :p)",
        "ExpressionAttributeValues": {":cp": {"S": CHECKPOINT_SK}, ":p": {"S": prefix}},
        "ConsistentRead": True,
    }
    while True:
        page = client.scan(**request)
        for item in page.get("Items", []):
            try:
                stream_id = item["pk"]["S"][len(prefix) :]
                version = int(item["version"]["N"])
            except (KeyError, ValueError):
                continue
            seen[stream_id] = Witness(f"projection {name}", version)
        if not page.get("LastEvaluatedKey"):
            return seen
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def snapshot_witnesses(client: Any, bucket: str, prefix: str = "snapshots/") -> dict[str, list[Witness]]:
    """Every stored snapshot's (version, hash), by stream."""
    from cairn.snapshots import SnapshotError
    from cairn.snapshots.s3 import S3SnapshotStore

    store = S3SnapshotStore(client, bucket, prefix)
    seen: dict[str, list[Witness]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=store.prefix):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(store.prefix) :]
            stream_id, _, name = rest.rpartition("/")
            if not name.startswith("state-v") or not name.endswith(".json.gz"):
                continue
            try:
                snapshot = store.get(stream_id, int(name[len("state-v") : -len(".json.gz")]))
            except (SnapshotError, ValueError):
                continue
            if snapshot is not None and snapshot.version > 0:
                seen.setdefault(stream_id, []).append(Witness("snapshot", snapshot.version, snapshot.hash or None))
    return seen


def verify_store(
    streams: Mapping[str, list[dict[str, Any]]],
    witnesses: Mapping[str, Iterable[Witness]] = {},
    *,
    on_stream: Callable[[int], None] | None = None,
) -> StoreReport:
    """Every stream's chain, and its head against every witness (a stream a witness saw that is
    no longer in the table is reported too: removed whole)."""
    report = StoreReport()
    for stream_id in sorted(set(streams) | set(witnesses)):
        items = streams.get(stream_id, [])
        seen = list(witnesses.get(stream_id, ()))
        verifier = ChainVerifier(stream_id, witnesses={w.version: w.hash for w in seen if w.hash})
        for item in items:
            if not verifier.feed(item):
                break
        highest = max(seen, key=lambda w: w.version, default=None)
        result = verifier.finish(highest.version if highest else None)
        report.streams += 1
        report.events += len(items)
        if result.intact:
            report.heads[stream_id] = (result.version, result.head_hash)
        else:
            by = ""
            if result.first_bad_version is not None and highest is not None and result.first_bad_version > len(items):
                by = highest.source
            report.problems.append((stream_id, result, by))
        if on_stream is not None:
            on_stream(len(items))
    return report


def build_digest(heads: Mapping[str, tuple[int, str]], created_at: str) -> dict[str, Any]:
    """The digest document: root hash over every stream head, the count, and the heads."""
    return {
        "format": DIGEST_FORMAT,
        "created_at": created_at,
        "streams": len(heads),
        "events": sum(v for v, _ in heads.values()),
        "root": digest_of(heads),
        "heads": {s: [v, h] for s, (v, h) in sorted(heads.items())},
    }


class DigestError(Exception):
    """The latest digest cannot be read or does not hash to its root."""


class DigestBucket:
    """Digests as ``<prefix><created_at>.json`` (ISO times sort, so the last key is the latest).

    The bucket's default retention (Object Lock, compliance mode) protects each object; this
    class only ever creates new keys."""

    def __init__(self, client: Any, bucket: str, prefix: str = "digests/", *, retain_days: int = 400):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.retain_days = retain_days

    def put(self, digest: Mapping[str, Any]) -> str:
        key = f"{self.prefix}{digest['created_at']}.json"
        body = json.dumps(digest, separators=(",", ":"), sort_keys=True).encode()
        import base64
        import hashlib
        from datetime import UTC, datetime, timedelta

        self.client.put_object(
            # explicit as well as the bucket's default retention (moto does not apply the default)
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=self.retain_days),
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),  # Object Lock requires it  # noqa: S324
            IfNoneMatch="*",
        )
        return key

    def latest(self) -> tuple[str, dict[str, Any]] | None:
        last: str | None = None
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                if last is None or obj["Key"] > last:
                    last = obj["Key"]
        if last is None:
            return None
        try:
            digest = json.loads(self.client.get_object(Bucket=self.bucket, Key=last)["Body"].read())
            heads = {s: (int(v), str(h)) for s, (v, h) in digest["heads"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise DigestError(f"digest {last} is unreadable: {exc}") from exc
        if digest_of(heads) != digest.get("root") or len(heads) != digest.get("streams"):
            raise DigestError(f"digest {last} does not hash to its root")
        return last, digest

    @staticmethod
    def witnesses(key: str, digest: Mapping[str, Any]) -> dict[str, Witness]:
        return {s: Witness(f"digest {key}", int(v), str(h)) for s, (v, h) in digest["heads"].items()}
