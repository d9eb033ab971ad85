"""The event store with an archive tier: DynamoDB for the recent suffix, S3 for the archived prefix.

Reads stay one ordered sequence. Every read path of :class:`DynamoDBEventStore` (``read``,
``fold`` with or without an anchor or link checks, ``read_items`` / ``raw_items``) goes through
one paginated Query; this subclass watches the versions that Query returns and, where one is
missing, reads that range from the archive — *only* then. So a warm command (nothing read), a
snapshot-based load (the Query starts at the snapshot's event, still in DynamoDB) and a read of
a stream that was never archived make no archive call at all.

Why a gap is enough to know: the archiver removes a prefix only, in ascending version order,
never the stream's newest event, and only after the manifest covers it. So an unbounded Query
``version >= lo`` returns nothing only when ``lo`` is past the head, and its first item is
``lo`` unless ``lo..first-1`` were archived. A bounded read that ends short is checked with a
one-item Query (is there anything after?). A range the manifest covers but cannot deliver (a
missing or corrupt segment): ArchiveCorruptError naming stream and range (never a shorter
history); S3 out of its budget: ArchiveUnavailableError. A hole the manifest does not cover was
never archived: it is tampering, and reads exactly as on the plain store (the chain checks and
verification report the missing version, as before the archive tier).

Known heads (the warm append path chains to a head it saw, with no read) expire after
``head_max_age`` seconds: an event is archived only once it has been superseded for longer than
that (the archiver's ``settle_seconds``), so a stale head can never re-create a removed version
(docs/archive.md, "Appends and removed versions").
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from cairn.archive.base import ArchiveStore
from cairn.store.base import Head
from cairn.store.dynamodb import DynamoDBEventStore

__all__ = ["DEFAULT_HEAD_MAX_AGE", "ArchivedEventStore", "store_from_env"]

DEFAULT_HEAD_MAX_AGE = 15.0  # seconds; the archiver settles 3x that (ArchivePolicy.settle_seconds)


class ArchivedEventStore(DynamoDBEventStore):
    """A DynamoDBEventStore that reads archived ranges from ``archive`` (injected)."""

    def __init__(
        self,
        *args: Any,
        archive: ArchiveStore,
        head_max_age: float = DEFAULT_HEAD_MAX_AGE,
        segment_cache_size: int = 16,
        clock: Any = time.monotonic,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.archive = archive
        self.head_max_age = head_max_age
        self.segment_cache_size = segment_cache_size
        self.archive_reads = 0  # ranges read from the archive (tests and metrics count them)
        self._clock = clock
        self._learned_at: dict[str, float] = {}
        self._ranges: OrderedDict[tuple[str, int, int], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    # -- heads expire: a stale head must not chain past a removed version ------------------------
    def _learn(self, stream_id: str, version: int, hash: str | None, occurred_at: str | None) -> None:
        super()._learn(stream_id, version, hash, occurred_at)
        if hash:
            with self._lock:
                self._learned_at[stream_id] = self._clock()
                if len(self._learned_at) > 2 * max(self.head_cache_size, 1):
                    self._learned_at = {s: t for s, t in self._learned_at.items() if s in self._heads}

    def known_head(self, stream_id: str) -> Head | None:
        head = super().known_head(stream_id)
        if head is None:
            return None
        learned = self._learned_at.get(stream_id)
        if learned is None or self._clock() - learned > self.head_max_age:
            return None  # too old to trust without a read
        return head

    # -- reads: fill what DynamoDB no longer holds -------------------------------------------------
    def _query_pages(
        self, condition: str, values: dict[str, Any], *, projection: tuple[str, dict[str, str]] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        stream_id = values[":s"]["S"]
        expected = int(values[":lo"]["N"])
        bound = int(values[":hi"]["N"]) if ":hi" in values else None
        for page in super()._query_pages(condition, values, projection=projection):
            try:
                first = int(page[0]["version"]["N"])
                last = int(page[-1]["version"]["N"])
            except (KeyError, TypeError, ValueError):
                yield page  # malformed: the caller names the bad item
                continue
            if first == expected and last == expected + len(page) - 1:
                yield page  # the common case: contiguous, nothing archived here
                expected = last + 1
                continue
            run: list[dict[str, Any]] = []
            for item in page:  # a hole (a removal raced this read, or an archived prefix): fill it
                try:
                    version = int(item["version"]["N"])
                except (KeyError, TypeError, ValueError):
                    run.append(item)
                    continue
                if version > expected:
                    if run:
                        yield run
                        run = []
                    archived = self._archived(stream_id, expected, version - 1)
                    if archived:
                        yield archived
                if version >= expected:
                    expected = version + 1
                run.append(item)
            if run:
                yield run
        if bound is not None and expected <= bound:
            after = self._next_stored(stream_id, expected)
            archived = self._archived(stream_id, expected, min(bound, after - 1)) if after is not None else []
            if archived:
                yield archived

    def _next_stored(self, stream_id: str, version: int) -> int | None:
        """The first version >= ``version`` still in DynamoDB (one-item Query), if any."""
        page = self.client.query(
            TableName=self.events_table,
            KeyConditionExpression="stream_id = :s AND #v >= :lo",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":s": {"S": stream_id}, ":lo": {"N": str(version)}},
            ProjectionExpression="#v",
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items") or []
        return int(items[0]["version"]["N"]) if items else None

    def _archived(self, stream_id: str, first: int, last: int) -> list[dict[str, Any]]:
        """Items ``first..last`` from the archive, verified; cached (segments never change)."""
        key = (stream_id, first, last)
        with self._lock:
            cached = self._ranges.get(key)
            if cached is not None:
                self._ranges.move_to_end(key)
                return cached
        self.archive_reads += 1
        manifest = self.archive.get_manifest(stream_id)
        through = manifest.archived_through if manifest is not None else 0
        if through < first:
            # never archived: a hole in DynamoDB alone is tampering, reported as before (the chain
            # checks, verification routes and `make verify` name the missing version)
            return []
        items = self.archive.read_items(stream_id, first, min(last, through), manifest)
        if self.segment_cache_size > 0:
            with self._lock:
                self._ranges[key] = items
                while len(self._ranges) > self.segment_cache_size:
                    self._ranges.popitem(last=False)
        return items


def store_from_env(registry: Any, dynamodb: Any, events_table: str, idempotency_table: str | None = None) -> DynamoDBEventStore:
    """The composition roots' store: an ArchivedEventStore when ``ARCHIVE_BUCKET`` is set (its S3
    reads on :data:`cairn.aws.ARCHIVE_READ_CONFIG`, a bounded wait), else the plain DynamoDB store."""
    import os

    bucket = os.environ.get("ARCHIVE_BUCKET")
    if not bucket:
        return DynamoDBEventStore(registry, dynamodb, events_table, idempotency_table)
    from cairn.archive.s3 import S3ArchiveStore
    from cairn.aws import ARCHIVE_READ_CONFIG, client

    archive = S3ArchiveStore(client("s3", config=ARCHIVE_READ_CONFIG), bucket)
    return ArchivedEventStore(registry, dynamodb, events_table, idempotency_table, archive=archive)
