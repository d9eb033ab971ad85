"""The archiver: moves each stream's old prefix from DynamoDB into verified S3 segments.

Pure policy over injected clients (a low-level DynamoDB client, an :class:`ArchiveStore`, a
snapshot lookup). Per stream, every step is safe to crash after and to repeat:

1. read the next archivable items (versions after the manifest's ``archived_through``) — the
   policy decides how far: older than N days and/or below a verified snapshot, never the
   stream's newest event, never anything younger than ``settle_seconds``;
2. write a segment (deterministic key and bytes: a rerun rewrites the same object);
3. read it back and verify it: checksum, every hash recomputed, the chain continuing from the
   manifest's last hash, the items equal to what DynamoDB holds;
4. write the manifest (compare-and-swap on its ETag: two archivers never both extend it);
5. only then delete the archived items from DynamoDB, in ascending version order, each
   conditional on its hash being the archived one (a removal never loses an event, and a
   reader that finds a hole in DynamoDB always finds it covered by the manifest).

A rerun first finishes step 5 for whatever the manifest already covers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from cairn.archive.base import (
    ArchiveCorruptError,
    ArchiveError,
    ArchiveStore,
    Manifest,
    ManifestConflictError,
    encode_segment,
    segment_ref,
    verify_segment,
)
from cairn.archive.store import DEFAULT_HEAD_MAX_AGE
from cairn.events import normalize_timestamp

__all__ = ["ArchivePolicy", "Archiver", "RunReport", "StreamReport", "aggregate_type"]

logger = logging.getLogger(__name__)

SnapshotLookup = Callable[[str], "tuple[int, str] | None"]


def aggregate_type(stream_id: str) -> str:
    """``order-…`` -> ``order``: the policy key of a stream."""
    return stream_id.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class ArchivePolicy:
    """When an event may leave DynamoDB. ``older_than_days`` None: any age; ``require_snapshot``:
    only below a verified snapshot's version (that event itself stays: snapshot loads need it)."""

    older_than_days: float | None = 90.0
    require_snapshot: bool = True
    settle_seconds: float = 3 * DEFAULT_HEAD_MAX_AGE  # > the store's head_max_age + clock skew
    segment_events: int = 1000

    def __post_init__(self) -> None:
        if self.older_than_days is None and not self.require_snapshot:
            raise ValueError("a policy needs an age, a snapshot, or both")
        if self.segment_events < 1:
            raise ValueError("segment_events must be >= 1")


@dataclass
class StreamReport:
    stream_id: str
    archived_through: int = 0
    segments_written: int = 0
    events_archived: int = 0
    items_deleted: int = 0
    error: str | None = None


@dataclass
class RunReport:
    streams: list[StreamReport] = field(default_factory=list)

    @property
    def events_archived(self) -> int:
        return sum(s.events_archived for s in self.streams)

    @property
    def items_deleted(self) -> int:
        return sum(s.items_deleted for s in self.streams)

    @property
    def errors(self) -> list[StreamReport]:
        return [s for s in self.streams if s.error]


class Archiver:
    """``policies`` by aggregate type (``order``); ``default`` for the rest (None: not archived)."""

    def __init__(
        self,
        client: Any,
        events_table: str,
        archive: ArchiveStore,
        *,
        policies: Mapping[str, ArchivePolicy] | None = None,
        default: ArchivePolicy | None = None,
        snapshot_of: SnapshotLookup | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        step: Callable[[str], None] | None = None,
    ):
        self.client = client
        self.events_table = events_table
        self.archive = archive
        self.policies = dict(policies or {})
        self.default = default
        self.snapshot_of = snapshot_of or (lambda stream_id: None)
        self._now = now
        self._step = step or (lambda name: None)  # tests inject a crash after any step

    # -- the whole table -------------------------------------------------------------------------
    def stream_ids(self) -> Iterator[str]:
        """Every stream in the table (a keys-only Scan of versions 1: one item per stream)."""
        request: dict[str, Any] = {
            "TableName": self.events_table,
            "ProjectionExpression": "stream_id",
            "ConsistentRead": True,
        }
        seen: set[str] = set()
        while True:
            page = self.client.scan(**request)
            for item in page.get("Items", ()):
                stream_id = item["stream_id"]["S"]
                if stream_id not in seen:
                    seen.add(stream_id)
                    yield stream_id
            if not page.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def run(self, streams: Iterable[str] | None = None) -> RunReport:
        report = RunReport()
        for stream_id in streams if streams is not None else list(self.stream_ids()):
            if self.policy_for(stream_id) is None:
                continue
            try:
                report.streams.append(self.archive_stream(stream_id))
            except (ArchiveError, ManifestConflictError) as exc:
                logger.error("archiving %s stopped: %s", stream_id, exc)
                report.streams.append(StreamReport(stream_id, error=str(exc)))
        return report

    def policy_for(self, stream_id: str) -> ArchivePolicy | None:
        return self.policies.get(aggregate_type(stream_id), self.default)

    # -- one stream --------------------------------------------------------------------------------
    def archive_stream(self, stream_id: str) -> StreamReport:
        policy = self.policy_for(stream_id)
        if policy is None:
            return StreamReport(stream_id)
        manifest = self.archive.get_manifest(stream_id) or Manifest(stream_id)
        problems = manifest.problems()
        if problems:
            raise ArchiveCorruptError(stream_id, 1, manifest.archived_through, "; ".join(problems))
        report = StreamReport(stream_id, manifest.archived_through)
        report.items_deleted += self._remove_archived(manifest)  # finish a crashed run first
        cutoff = self._cutoff(stream_id, policy, manifest.archived_through)
        while manifest.archived_through < cutoff:
            first = manifest.archived_through + 1
            last = min(cutoff, first + policy.segment_events - 1)
            items = self._items(stream_id, first, last)
            if not items or int(items[0]["version"]["N"]) != first:
                raise ArchiveCorruptError(stream_id, first, last, "DynamoDB no longer holds the next events to archive")
            if items[0].get("prev_hash", {}).get("S") != manifest.last_hash:
                raise ArchiveCorruptError(stream_id, first, last, "does not chain to the last archived event")
            last = int(items[-1]["version"]["N"])
            key = self.archive.segment_key(stream_id, first, last)
            body = encode_segment(items)
            ref = segment_ref(stream_id, key, items, body)
            self.archive.put_segment(stream_id, key, body)
            self._step("segment_written")
            back = verify_segment(stream_id, ref, self.archive.get_segment(stream_id, ref))
            if back != items:
                raise ArchiveCorruptError(stream_id, first, last, f"segment {key} read back differs from DynamoDB")
            self._step("segment_verified")
            manifest = self.archive.put_manifest(manifest.with_segment(ref))
            self._step("manifest_written")
            report.segments_written += 1
            report.events_archived += len(items)
            report.items_deleted += self._delete(stream_id, items)
        report.archived_through = manifest.archived_through
        return report

    def _cutoff(self, stream_id: str, policy: ArchivePolicy, archived_through: int) -> int:
        """The highest version the policy lets go (<= the one before the head)."""
        head = self._head(stream_id)
        if head is None:
            return archived_through
        limit = head - 1
        if policy.require_snapshot:
            snapshot = self._verified_snapshot(stream_id)
            if snapshot is None:
                return archived_through
            limit = min(limit, snapshot - 1)
        if limit <= archived_through:
            return archived_through
        now = self._now()
        ages = [timedelta(seconds=policy.settle_seconds)]
        if policy.older_than_days is not None:
            ages.append(timedelta(days=policy.older_than_days))
        before = normalize_timestamp(now - max(ages))
        # occurred_at never decreases along a stream: the eligible events are a prefix
        newest = archived_through
        for item in self._iter_items(stream_id, archived_through + 1, limit, projection=True):
            if item["occurred_at"]["S"] > before:
                break
            newest = int(item["version"]["N"])
        return newest

    def _verified_snapshot(self, stream_id: str) -> int | None:
        """The snapshot's version if DynamoDB still holds that event with the snapshot's hash."""
        found = self.snapshot_of(stream_id)
        if found is None:
            return None
        version, digest = found
        if version < 1 or not digest:
            return None
        item = self.client.get_item(
            TableName=self.events_table,
            Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}},
            ProjectionExpression="#h",
            ExpressionAttributeNames={"#h": "hash"},
            ConsistentRead=True,
        ).get("Item")
        if item is None or item.get("hash", {}).get("S") != digest:
            logger.warning("snapshot of %s at %s does not verify: not archiving by it", stream_id, version)
            return None
        return version

    def _head(self, stream_id: str) -> int | None:
        page = self.client.query(
            TableName=self.events_table,
            KeyConditionExpression="stream_id = :s",
            ExpressionAttributeValues={":s": {"S": stream_id}},
            ProjectionExpression="#v",
            ExpressionAttributeNames={"#v": "version"},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items") or []
        return int(items[0]["version"]["N"]) if items else None

    def _iter_items(self, stream_id: str, first: int, last: int, *, projection: bool = False) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.events_table,
            "KeyConditionExpression": "stream_id = :s AND #v BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {
                ":s": {"S": stream_id},
                ":lo": {"N": str(first)},
                ":hi": {"N": str(last)},
            },
            "ConsistentRead": True,
        }
        if projection:
            request["ProjectionExpression"] = "#v, occurred_at"
        while True:
            page = self.client.query(**request)
            yield from page.get("Items", ())
            if not page.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _items(self, stream_id: str, first: int, last: int) -> list[dict[str, Any]]:
        return list(self._iter_items(stream_id, first, last))

    def _remove_archived(self, manifest: Manifest) -> int:
        """Delete what the manifest covers and DynamoDB still holds (a crashed run's remainder)."""
        if manifest.archived_through == 0:
            return 0
        stream_id = manifest.stream_id
        still = [int(i["version"]["N"]) for i in self._iter_items(stream_id, 1, manifest.archived_through, projection=True)]
        if not still:
            return 0
        archived = self.archive.read_items(stream_id, still[0], still[-1], manifest)
        by_version = {int(i["version"]["N"]): i for i in archived}
        return self._delete(stream_id, [by_version[v] for v in still])

    def _delete(self, stream_id: str, items: list[dict[str, Any]]) -> int:
        """Conditional deletes in ascending order: each only if the stored hash is the archived one."""
        deleted = 0
        for item in items:
            version = item["version"]["N"]
            try:
                self.client.delete_item(
                    TableName=self.events_table,
                    Key={"stream_id": {"S": stream_id}, "version": {"N": version}},
                    ConditionExpression="#h = :h",
                    ExpressionAttributeNames={"#h": "hash"},
                    ExpressionAttributeValues={":h": item["hash"]},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                if exc.response.get("Item"):
                    raise ArchiveCorruptError(
                        stream_id, int(version), int(version), "DynamoDB holds another event than the archived one"
                    ) from exc
                continue  # already gone (another archiver run)
            deleted += 1
            self._step(f"deleted:{version}")
        return deleted
