"""Snapshotter: events stream -> an S3 snapshot of a stream every N of its events.

Off the command path by design: commands load snapshot + tail, and this consumer keeps the tail
short. N is per aggregate type (``SNAPSHOT_EVERY=order=50,account=100``; types not listed are
never snapshotted). A stream is due when the batch's records of it include a multiple of N;
the snapshot is then folded with the context's own decider (``CommandRuntime.take_snapshot``:
previous snapshot + events from the store, strongly consistent), so arrival order, duplicates
and gaps in the batch do not matter, and taking the same snapshot twice is harmless.

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

__all__ = ["CONTEXT_APPS", "due_streams", "handler", "parse_every", "process"]

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))

# aggregate type (stream id prefix) -> the context's composition root (exposes ``runtime()``)
CONTEXT_APPS = {"order": "orders.app", "account": "accounts.app"}


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


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    every = parse_every(os.environ.get("SNAPSHOT_EVERY", "order=50,account=100"))
    taken, failures = process(event.get("Records") or [], every)
    metrics.add_metric(name="SnapshotsTaken", unit=MetricUnit.Count, value=taken)

    def record_handler(record: Any) -> None:
        failure = failures.get(record.dynamodb.sequence_number)
        if failure is not None:
            raise failure

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
