"""Lambda glue: DynamoDB stream batch -> per-stream groups -> projection engines -> partial response.

The engines of one Lambda run the batch together (:func:`~cairn.projections.engine.process_together`):
one BatchGetItem for all their checkpoints, shared TransactWriteItems for their writes.

Partial batch responses (Powertools BatchProcessor, ``ReportBatchItemFailures``): for a stream
that failed, only its lowest failed record is reported; Lambda restarts the shard from the
lowest reported sequence number, so the failed stream gets its records again, and the other
streams' redelivered records are recognised as duplicates by their checkpoints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.events import EventRegistry
from cairn.projections.engine import ProjectionEngine, StreamBatch, StreamOutcome, process_together
from cairn.projections.generations import Generations, resolve_generations

__all__ = ["BatchReport", "RecordPosition", "StreamConsumer", "StreamFailedError", "group_records"]

logger = logging.getLogger(__name__)


class StreamFailedError(Exception):
    """Reported for a stream's lowest failed record (the shard is retried from there)."""


@dataclass(frozen=True, slots=True)
class RecordPosition:
    sequence_number: str
    version: int

    @property
    def order(self) -> int:
        return int(self.sequence_number) if self.sequence_number.isdigit() else 0


@dataclass(slots=True)
class BatchReport:
    """Totals over the batch and every projection: what the metrics and the log say."""

    records: int = 0
    events_applied: int = 0
    duplicates_skipped: int = 0
    gaps_repaired: int = 0
    streams_parked: int = 0
    parked_skipped: int = 0
    failed_streams: dict[str, str] = field(default_factory=dict)
    events_behind: int = 0  # records of the batch not applied at the end (any projection)
    lag_seconds: float = 0.0  # age of the batch's oldest record when it arrived
    outcomes: dict[str, dict[str, StreamOutcome]] = field(default_factory=dict)  # projection -> stream

    def add(self, projection: str, outcomes: Mapping[str, StreamOutcome]) -> None:
        self.outcomes[projection] = dict(outcomes)
        for outcome in outcomes.values():
            self.events_applied += outcome.applied
            self.duplicates_skipped += outcome.duplicates
            self.gaps_repaired += outcome.gaps_repaired
            self.parked_skipped += outcome.parked_skipped
            if outcome.parked_now is not None:
                self.streams_parked += 1


def group_records(
    records: Sequence[Mapping[str, Any]], decode: Callable[[Mapping[str, Any]], Any]
) -> tuple[dict[str, StreamBatch], dict[str, list[RecordPosition]]]:
    """Stream records -> {stream_id: StreamBatch} and each stream's record positions.

    Only INSERTs carry events (events are immutable). A record whose image does not decode keeps
    the error in place of the event: the stream fails at that version, the others go on.
    """
    batches: dict[str, StreamBatch] = {}
    positions: dict[str, list[RecordPosition]] = {}
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        body = record.get("dynamodb") or {}
        try:
            keys = body["Keys"]
            stream_id = keys["stream_id"]["S"]
            version = int(keys["version"]["N"])
            sequence = str(body["SequenceNumber"])
        except (KeyError, TypeError, ValueError):
            logger.error("stream record without event keys ignored: %s", record.get("eventID"))
            continue
        batch = batches.setdefault(stream_id, StreamBatch(stream_id))
        positions.setdefault(stream_id, []).append(RecordPosition(sequence, version))
        image = body.get("NewImage")
        if image is None:
            batch.note_delivered(version)
            continue
        try:
            event = decode(image)
        except Exception as exc:  # corrupt item, unknown type, newer schema: fails this version only
            batch.add(version, exc)
            continue
        if event.version != version or event.stream_id != stream_id:
            batch.add(version, ValueError(f"record keys {stream_id}@{version} do not match its image"))
            continue
        batch.add(version, event)
    return batches, positions


def lowest_failed_record(positions: Sequence[RecordPosition], failed_version: int) -> RecordPosition:
    """The record to report for a stream failed at ``failed_version``: the earliest (by sequence
    number) of its records at or after that version, so none of them is lost."""
    at_or_after = [p for p in positions if p.version >= failed_version]
    return min(at_or_after or positions, key=lambda p: p.order)


class StreamConsumer:
    """Feeds a batch to one or more projection engines (each with its own checkpoints)."""

    def __init__(
        self,
        registry: EventRegistry,
        engines: Sequence[ProjectionEngine],
        *,
        generations: Callable[[ProjectionEngine], Generations] | None = None,
    ):
        self.registry = registry
        self.engines = list(engines)
        self._generations = generations or (lambda engine: resolve_generations(engine.client, engine.table))

    def _decode(self, image: Mapping[str, Any]) -> Any:
        from cairn.store.dynamodb import envelope_from_item

        return envelope_from_item(image, self.registry)

    def process(self, records: Sequence[Mapping[str, Any]]) -> tuple[BatchReport, dict[str, StreamFailedError]]:
        """Run every projection over the batch; returns the report and the records to report failed
        (by sequence number)."""
        from cairn.lag import batch_lag_seconds

        report = BatchReport(records=len(records), lag_seconds=batch_lag_seconds(records))
        batches, positions = group_records(records, self._decode)
        failed_at: dict[str, tuple[int, str]] = {}
        # all projections together: one read of every checkpoint, shared transactions
        jobs = [(engine, self._generations(engine).live()) for engine in self.engines]
        for engine, outcomes in zip(self.engines, process_together(jobs, batches), strict=True):
            report.add(engine.name, outcomes)
            behind = sum(o.parked_skipped for o in outcomes.values())
            for stream_id, outcome in outcomes.items():
                if outcome.failed_version is not None:
                    behind += sum(1 for p in positions.get(stream_id, ()) if p.version >= outcome.failed_version)
                if outcome.ok:
                    continue
                assert outcome.failed_version is not None
                message = f"{engine.name}: {type(outcome.error).__name__}: {outcome.error}"
                current = failed_at.get(stream_id)
                if current is None or outcome.failed_version < current[0]:
                    failed_at[stream_id] = (outcome.failed_version, message)
                log = logger.info if outcome.transient else logger.warning
                failed_event = batches[stream_id].events.get(outcome.failed_version) if stream_id in batches else None
                log(
                    "%s failed at %s@%d: %s", engine.name, stream_id, outcome.failed_version, message,
                    extra={
                        "stream_id": stream_id, "projection": engine.name, "version": outcome.failed_version,
                        "correlation_id": getattr(getattr(failed_event, "metadata", None), "correlation_id", None),
                    },
                )
            report.events_behind = max(report.events_behind, behind)
        failures: dict[str, StreamFailedError] = {}
        for stream_id, (version, message) in failed_at.items():
            record = lowest_failed_record(positions[stream_id], version)
            failures[record.sequence_number] = StreamFailedError(f"{stream_id}@{version}: {message}")
            report.failed_streams[stream_id] = message
        return report, failures

    def handle(
        self, event: Mapping[str, Any], context: Any = None, metrics: Any = None, consumer: str | None = None
    ) -> dict[str, Any]:
        """The Lambda handler body: returns ``{"batchItemFailures": [...]}``. ``event`` comes from
        either source (DynamoDB Streams, or Kinesis Data Streams for DynamoDB: the fan-out), so no
        handler can forget to convert it. ``consumer`` names the function in the lag metrics
        (``CAIRN_CONSUMER`` wins)."""
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

        from cairn.lag import emit_lag
        from cairn.projections.kinesis import as_stream_event

        event = as_stream_event(event)
        records = event.get("Records") or []
        report, failures = self.process(records)
        if metrics is not None:
            emit_metrics(metrics, report)
            emit_lag(consumer or "projections", report.lag_seconds, report.events_behind)
        logger.info(
            "batch: %d records, %d applied, %d duplicates, %d gaps repaired, %d parked, %d failed streams, "
            "%d events behind, lag %.1f s",
            report.records,
            report.events_applied,
            report.duplicates_skipped,
            report.gaps_repaired,
            report.streams_parked,
            len(report.failed_streams),
            report.events_behind,
            report.lag_seconds,
        )

        def record_handler(record: Any) -> None:
            failure = failures.get(record.dynamodb.sequence_number)
            if failure is not None:
                raise failure

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        return process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )

    @classmethod
    def for_lambda(cls, registry: EventRegistry, projections: Mapping[Any, str]) -> StreamConsumer:
        """What a projection function builds once per execution environment: the event store
        (``EVENTS_TABLE``, and the archive tier when ``ARCHIVE_BUCKET`` is set, for gap repair) and :meth:`from_env`'s engines on one DynamoDB client."""
        from cairn.archive.store import store_from_env
        from cairn.aws import client

        dynamodb = client("dynamodb")
        store = store_from_env(registry, dynamodb, os.environ["EVENTS_TABLE"])  # gap repair reads archived ranges too
        return cls.from_env(registry, projections, store, client=dynamodb)

    @classmethod
    def from_env(
        cls,
        registry: EventRegistry,
        projections: Mapping[Any, str],
        store: Any,
        *,
        client: Any = None,
    ) -> StreamConsumer:
        """Engines for ``{projection: TABLE_ENV_VAR}`` with the parking queue from ``PARKED_QUEUE_URL``
        and the attempt limit from ``PROJECTION_MAX_ATTEMPTS`` (default 3)."""
        from cairn.projections.parking import Parking

        if client is None:
            from cairn.aws import client as make_client

            client = make_client("dynamodb")
        max_attempts = int(os.environ.get("PROJECTION_MAX_ATTEMPTS", "3"))
        queue_url = os.environ.get("PARKED_QUEUE_URL") or None
        engines = []
        for projection, env_var in projections.items():
            table = os.environ[env_var]
            parking = Parking(client, table, projection.name, queue_url=queue_url)
            engines.append(ProjectionEngine(projection, client, table, store, parking=parking, max_attempts=max_attempts))
        return cls(registry, engines)


def emit_metrics(metrics: Any, report: BatchReport) -> None:
    """EventsApplied, DuplicatesSkipped, GapsRepaired, StreamsParked (docs/architecture.md)."""
    from aws_lambda_powertools.metrics import MetricUnit

    for name, value in (
        ("EventsApplied", report.events_applied),
        ("DuplicatesSkipped", report.duplicates_skipped),
        ("GapsRepaired", report.gaps_repaired),
        ("StreamsParked", report.streams_parked),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
