"""Snapshotter: events stream -> an S3 snapshot of a stream every N of its events.

Off the command path by design: commands load snapshot + tail, and this consumer keeps the tail
short. N is per aggregate type (``SNAPSHOT_EVERY=order=50,account=100``; types not listed are
never snapshotted). A stream is due when the batch's records of it include a multiple of N;
the snapshot is then folded with the context's own decider (``CommandRuntime.take_snapshot``:
previous snapshot + events from the store, strongly consistent), so arrival order, duplicates
and gaps in the batch do not matter, and taking the same snapshot twice is harmless.

On demand (``POST /ops/snapshots``, ``make snapshot STREAM=…``): :func:`snapshot_now`. On a
schedule (a daily EventBridge rule -> :func:`scheduled_handler`): every stream of a snapshotted
type whose head is past its snapshot gets a new one, so streams that grow slowly (never reaching
a multiple of N in one batch) still load from a recent snapshot.

Failures: transient ones (throttling, timeouts) report the stream's lowest record for a retry;
a stream that cannot be folded (a corrupt event) is logged and skipped — a snapshot is an
optimisation, and blocking the shard for it would stall every other stream's snapshots.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cairn.events import utc_now_iso
from cairn.logs import structured

__all__ = [
    "CONTEXT_APPS",
    "UnknownStreamError",
    "due_streams",
    "handler",
    "parse_every",
    "process",
    "scheduled_handler",
    "snapshot_grown",
    "snapshot_now",
    "stream_heads",
]

logger = structured(Logger())  # cairn.* and the contexts' loggers too (cairn.logs)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))

# aggregate type (stream id prefix) -> the context's composition root (exposes ``runtime()``)
CONTEXT_APPS = {"order": "orders.app", "account": "accounts.app"}


class UnknownStreamError(LookupError):
    """No such stream (no events), or a stream of a type that is never snapshotted."""


class SnapshotFailedError(Exception):
    """Reported for a stream's lowest record: the snapshot is retried with the shard."""


def parse_every(text: str | None) -> dict[str, int]:
    """``"order=50,account=100"`` -> ``{"order": 50, "account": 100}`` (bad entries raise)."""
    every: dict[str, int] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"SNAPSHOT_EVERY entry {part!r} is not <type>=<positive int>")
        every[name.strip()] = int(value)
    return every


def aggregate_type(stream_id: str) -> str:
    return stream_id.split("-", 1)[0]


def due_streams(records: Sequence[Mapping[str, Any]], every: Mapping[str, int]) -> dict[str, list[str]]:
    """{stream_id: its records' sequence numbers} for streams whose batch reaches a multiple of N."""
    versions: dict[str, list[int]] = {}
    sequences: dict[str, list[str]] = {}
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        try:
            keys = record["dynamodb"]["Keys"]
            stream_id, version = keys["stream_id"]["S"], int(keys["version"]["N"])
            sequence = record["dynamodb"]["SequenceNumber"]
        except (KeyError, TypeError, ValueError):
            continue
        if aggregate_type(stream_id) not in every:
            continue
        versions.setdefault(stream_id, []).append(version)
        sequences.setdefault(stream_id, []).append(sequence)
    due = {}
    for stream_id, seen in versions.items():
        n = every[aggregate_type(stream_id)]
        if any(v % n == 0 for v in seen):
            due[stream_id] = sequences[stream_id]
    return due


@cache
def _runtime(kind: str) -> Any:
    return importlib.import_module(CONTEXT_APPS[kind]).runtime()


def process(
    records: Sequence[Mapping[str, Any]], every: Mapping[str, int], runtime_for: Any = _runtime
) -> tuple[int, dict[str, SnapshotFailedError]]:
    """Take the due snapshots; returns (snapshots taken, failures by sequence number)."""
    from cairn.retry import is_transient

    taken = 0
    failures: dict[str, SnapshotFailedError] = {}
    for stream_id, sequences in sorted(due_streams(records, every).items()):
        kind = aggregate_type(stream_id)
        if kind not in CONTEXT_APPS:
            logger.warning("no context for aggregate type %r: %s not snapshotted", kind, stream_id)
            continue
        started = utc_now_iso()
        try:
            snapshot = runtime_for(kind).take_snapshot(stream_id)
        except Exception as exc:
            if is_transient(exc):
                lowest = min(sequences, key=lambda s: int(s) if s.isdigit() else 0)
                failures[lowest] = SnapshotFailedError(f"{stream_id}: {exc}")
                logger.info("snapshot of %s will be retried: %s", stream_id, exc)
            else:
                logger.exception("snapshot of %s skipped", stream_id)
            continue
        if snapshot is not None and snapshot.taken_at >= started:
            taken += 1
            logger.debug("snapshot of %s at version %d", stream_id, snapshot.version)
    return taken, failures


def snapshot_now(stream_id: str, runtime_for: Any = None) -> int:
    """Take a snapshot of ``stream_id`` at its current version now; returns that version."""
    kind = aggregate_type(stream_id)
    if kind not in CONTEXT_APPS:
        raise UnknownStreamError(f"{stream_id!r}: streams of type {kind!r} have no snapshots")
    snapshot = (runtime_for or _runtime)(kind).take_snapshot(stream_id)
    if snapshot is None:
        raise UnknownStreamError(f"{stream_id} has no events")
    logger.info("snapshot on demand", extra={"stream_id": stream_id, "version": snapshot.version})
    return snapshot.version


def stream_heads(client: Any, events_table: str, kinds: Sequence[str]) -> dict[str, int]:
    """{stream_id: highest version} of every stream of ``kinds`` (a keys-only scan of the store)."""
    heads: dict[str, int] = {}
    prefixes = tuple(f"{kind}-" for kind in kinds)
    for page in client.get_paginator("scan").paginate(
        TableName=events_table, ProjectionExpression="stream_id, version"
    ):
        for item in page.get("Items", ()):
            stream_id = item["stream_id"]["S"]
            if stream_id.startswith(prefixes):
                version = int(item["version"]["N"])
                if version > heads.get(stream_id, 0):
                    heads[stream_id] = version
    return heads


def snapshot_grown(
    heads: Mapping[str, int],
    runtime_for: Any = _runtime,
    *,
    time_left: Any = lambda: 1e9,
    reserve_seconds: float = 30.0,
    progress: Any = None,
) -> dict[str, int]:
    """Snapshot every stream whose head is past its last snapshot; the counts (``taken``,
    ``current``, ``failed``, ``left`` when the time ran out)."""
    counts = {"taken": 0, "current": 0, "failed": 0, "left": 0}
    ordered = sorted(heads)
    for index, stream_id in enumerate(ordered):
        if time_left() < reserve_seconds:
            counts["left"] = len(ordered) - index
            logger.warning("scheduled snapshots: time is up", extra={"left": counts["left"]})
            break
        kind = aggregate_type(stream_id)
        runtime = runtime_for(kind)
        try:
            before = runtime.snapshots.get(stream_id, runtime.decider.state_schema_version)
            if before is not None and before.version >= heads[stream_id]:
                counts["current"] += 1
                continue
            runtime.take_snapshot(stream_id)
            counts["taken"] += 1
        except Exception:
            counts["failed"] += 1
            logger.exception("scheduled snapshot failed", extra={"stream_id": stream_id})
        finally:
            if progress is not None:
                progress(index + 1, len(ordered), counts)
    return counts


@logger.inject_lambda_context
@metrics.log_metrics
def scheduled_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """The daily rule's target: snapshot the streams that grew since their last snapshot."""
    from cairn.aws import client

    every = parse_every(os.environ.get("SNAPSHOT_EVERY", "order=50,account=100"))
    kinds = [kind for kind in every if kind in CONTEXT_APPS]
    heads = stream_heads(client("dynamodb"), os.environ["EVENTS_TABLE"], kinds)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    counts = snapshot_grown(heads, time_left=(lambda: remaining() / 1000) if remaining else (lambda: 1e9))
    metrics.add_metric(name="ScheduledSnapshotsTaken", unit=MetricUnit.Count, value=counts["taken"])
    metrics.add_metric(name="ScheduledSnapshotsFailed", unit=MetricUnit.Count, value=counts["failed"])
    logger.info("scheduled snapshots", extra={"streams": len(heads), **counts})
    return counts


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from cairn.projections.kinesis import as_stream_event

    event = dict(as_stream_event(event))  # DynamoDB Streams or Kinesis Data Streams for DynamoDB
    every = parse_every(os.environ.get("SNAPSHOT_EVERY", "order=50,account=100"))
    from cairn.lag import batch_lag_seconds, emit_lag

    records = event.get("Records") or []
    taken, failures = process(records, every)
    metrics.add_metric(name="SnapshotsTaken", unit=MetricUnit.Count, value=taken)
    emit_lag("Snapshotter", batch_lag_seconds(records), len(failures))

    def record_handler(record: Any) -> None:
        failure = failures.get(record.dynamodb.sequence_number)
        if failure is not None:
            raise failure

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
