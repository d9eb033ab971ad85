"""Publisher: events-table stream (``order-…`` and ``payment-…`` items) -> integration events on the bus.

One ``Publisher`` per publishing service (its stream prefix, store, decider and translation):
the order service (source ``cairn.orders``) and the payment service (``cairn.payments``).

Correctness: every stored order event is published at least once, with a stable id
(``integration_event_id`` of the internal event id), in per-stream order as far as PutEvents
allows; consumers dedupe on the id and tolerate reordering.

How a batch is handled:

1. INSERT records are grouped by stream; only keys are used (``stream_id``, ``version``).
2. Per stream, the events from the batch's lowest to highest version are read from the store
   (strongly consistent, from a snapshot when one is older than that range) and folded, so each
   integration event carries the order *after* it (event-carried state). Reading the range
   also repairs gaps: a version whose record sits in another batch is published here too
   (a harmless duplicate with the same id).
3. Entries go out in PutEvents calls of at most 10 entries / 256 KiB; failed entries (the
   response's per-entry ErrorCode) are retried with backoff; what still fails marks its
   stream failed.
4. The response reports the failed streams' records as ``batchItemFailures``: Lambda retries
   from the lowest failed sequence number (re-publishing is idempotent for consumers).

Not Powertools' BatchProcessor: it handles records one by one, while the publisher folds per
stream and batches entries across records into PutEvents calls.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cairn.commands import Decider
from cairn.events import EventEnvelope
from cairn.logs import structured
from cairn.retry import full_jitter
from cairn.snapshots import SnapshotError, SnapshotStore
from cairn.store import EventStore
from integration import IntegrationEvent

logger = structured(Logger())  # cairn.* and the contexts' loggers too (cairn.logs)
metrics = Metrics()

MAX_ENTRIES_PER_CALL = 10  # PutEvents limit
MAX_REQUEST_BYTES = 256 * 1024  # PutEvents limit (sum of entry sizes)
STREAM_PREFIX = "order-"

Translate = Callable[[EventEnvelope, Any], list[IntegrationEvent]]


class EntryTooLargeError(ValueError):
    """One integration event is bigger than a PutEvents request may be."""


@dataclass(slots=True)
class _StreamBatch:
    stream_id: str
    versions: list[int] = field(default_factory=list)
    sequence_numbers: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PublishReport:
    published: int  # entries accepted by EventBridge (duplicates of earlier batches included)
    failed_sequence_numbers: tuple[str, ...]  # records to report as batchItemFailures
    failed_streams: tuple[str, ...] = ()

    def batch_response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failed_sequence_numbers]}


def entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size as EventBridge counts it (Time 14 bytes + UTF-8 of the strings)."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(entry.get(name, "").encode())
    size += sum(len(r.encode()) for r in entry.get("Resources", ()))
    return size


def _time_of(occurred_at: str) -> datetime:
    return datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))


def stream_batches(records: Iterable[Mapping[str, Any]], prefix: str = STREAM_PREFIX) -> list[_StreamBatch]:
    """INSERT records of streams with ``prefix``, grouped by stream in first-seen order."""
    batches: dict[str, _StreamBatch] = {}
    for record in records:
        if record.get("eventName") != "INSERT":
            continue  # the log is append-only: nothing else is an event
        ddb = record.get("dynamodb", {})
        keys = ddb.get("Keys", {})
        stream_id = keys.get("stream_id", {}).get("S")
        if not stream_id or not stream_id.startswith(prefix):
            continue
        batch = batches.setdefault(stream_id, _StreamBatch(stream_id))
        batch.versions.append(int(keys["version"]["N"]))
        batch.sequence_numbers.append(ddb.get("SequenceNumber", ""))
    return list(batches.values())


class Publisher:
    def __init__(
        self,
        store: EventStore,
        decider: Decider,
        translate: Translate,
        events_client: Any,
        bus_name: str,
        *,
        snapshots: SnapshotStore | None = None,
        prefix: str = STREAM_PREFIX,
        max_attempts: int = 5,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.decider = decider
        self.translate = translate
        self.client = events_client
        self.bus_name = bus_name
        self.snapshots = snapshots
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep

    # -- stream records -> integration events -------------------------------------------------
    def integration_events(self, stream_id: str, from_version: int, to_version: int) -> list[IntegrationEvent]:
        """Integration events of versions ``from_version..to_version`` of a stream, in order."""
        version, state, anchor = self._state_before(stream_id, from_version)
        events = self.store.read(stream_id, after=max(version - 1, 0), up_to_version=to_version)
        if anchor is not None:
            first = next(events, None)  # the snapshot's own event: used only if the store still holds it
            if first is None or first.version != version or first.hash != anchor:
                logger.warning("snapshot of %s does not verify: replaying from version 1", stream_id)
                version, state = 0, self.decider.initial_state()
                events = self.store.read(stream_id, up_to_version=to_version)
        out: list[IntegrationEvent] = []
        evolve = self.decider.evolve
        last = version
        for envelope in events:
            state = evolve(state, envelope.data)
            last = envelope.version
            if envelope.version >= from_version:
                out.extend(self.translate(envelope, state))
        if last < to_version:
            raise LookupError(f"{stream_id} ends at version {last}; the stream said {to_version} exists")
        return out

    def _state_before(self, stream_id: str, from_version: int) -> tuple[int, Any, str | None]:
        """(version, state, hash the event at that version must have) to start from."""
        if self.snapshots is not None and from_version > 1:
            try:
                snapshot = self.snapshots.get(stream_id, self.decider.state_schema_version)
            except SnapshotError as exc:
                logger.warning("snapshot unavailable for %s: %s", stream_id, exc)
                snapshot = None
            if snapshot is not None and snapshot.hash and 0 < snapshot.version < from_version:
                try:
                    return snapshot.version, self.decider.restore(snapshot.state), snapshot.hash
                except Exception:  # a snapshot that does not restore is no snapshot
                    logger.warning("snapshot of %s does not restore: replaying", stream_id)
        return 0, self.decider.initial_state(), None

    def entry(self, event: IntegrationEvent) -> dict[str, Any]:
        entry = {
            "Source": event.source,
            "DetailType": event.type,
            "Detail": json.dumps(event.to_detail(), separators=(",", ":"), sort_keys=True),
            "EventBusName": self.bus_name,
            "Time": _time_of(event.occurred_at),
        }
        if entry_size(entry) > MAX_REQUEST_BYTES:
            raise EntryTooLargeError(f"{event.type} {event.id} is {entry_size(entry)} bytes (limit {MAX_REQUEST_BYTES})")
        return entry

    # -- the batch ----------------------------------------------------------------------------
    def publish_records(self, records: Sequence[Mapping[str, Any]]) -> PublishReport:
        batches = stream_batches(records, self.prefix)
        failed: set[str] = set()
        pending: list[tuple[str, dict[str, Any]]] = []
        for batch in batches:
            try:
                events = self.integration_events(batch.stream_id, min(batch.versions), max(batch.versions))
                pending.extend((batch.stream_id, self.entry(e)) for e in events)
            except Exception:
                logger.exception("cannot build integration events for %s", batch.stream_id,
                                 extra={"stream_id": batch.stream_id})
                failed.add(batch.stream_id)
        published, unsent = self.put_all(pending)
        failed.update(unsent)
        sequence_numbers = tuple(
            seq for batch in batches if batch.stream_id in failed for seq in batch.sequence_numbers
        )
        return PublishReport(published, sequence_numbers, tuple(b.stream_id for b in batches if b.stream_id in failed))

    def republish(self, stream_id: str, from_version: int = 1, to_version: int | None = None) -> int:
        """Publish a stream's events again (same ids): the repair for a stream the event source
        mapping gave up on (its batch went to the on-failure queue). Returns the entries accepted."""
        last = to_version if to_version is not None else self.store.current_version(stream_id)
        if last < from_version:
            return 0
        pending = [(stream_id, self.entry(e)) for e in self.integration_events(stream_id, from_version, last)]
        published, failed = self.put_all(pending)
        if failed:
            raise RuntimeError(f"{stream_id}: {len(pending) - published} entries still failing")
        return published

    def put_all(self, pending: list[tuple[str, dict[str, Any]]]) -> tuple[int, set[str]]:
        """PutEvents everything, retrying failed entries; (accepted count, streams with failures)."""
        published = 0
        attempt = 0
        while pending:
            attempt += 1
            retry: list[tuple[str, dict[str, Any]]] = []
            for chunk in _chunks(pending):
                try:
                    response = self.client.put_events(Entries=[entry for _, entry in chunk])
                except Exception as exc:  # the call failed as a whole (after boto3's own retries)
                    logger.warning("PutEvents failed (%s): retrying %d entries", exc, len(chunk))
                    retry.extend(chunk)
                    continue
                results = response.get("Entries", [])
                for index, item in enumerate(chunk):
                    result = results[index] if index < len(results) else {"ErrorCode": "MissingResult"}
                    if result.get("ErrorCode"):
                        retry.append(item)
                    else:
                        published += 1
                if response.get("FailedEntryCount"):
                    logger.warning("PutEvents: %d of %d entries failed", response["FailedEntryCount"], len(chunk))
            pending = retry
            if pending and attempt >= self.max_attempts:
                streams = {stream for stream, _ in pending}
                logger.error("giving up on %d entries of %s after %d attempts", len(pending), sorted(streams), attempt)
                return published, streams
            if pending:
                self._sleep(full_jitter(attempt, self.base_delay, self.max_delay))
        return published, set()


def _chunks(entries: list[tuple[str, dict[str, Any]]]) -> Iterable[list[tuple[str, dict[str, Any]]]]:
    chunk: list[tuple[str, dict[str, Any]]] = []
    size = 0
    for item in entries:
        item_size = entry_size(item[1])
        if chunk and (len(chunk) == MAX_ENTRIES_PER_CALL or size + item_size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


# -- Lambda ---------------------------------------------------------------------------------
_publisher: Publisher | None = None


_payments_publisher: Publisher | None = None


def payments_publisher() -> Publisher:
    """The payment service's publisher (``payment-…`` streams -> source ``cairn.payments``)."""
    global _payments_publisher
    if _payments_publisher is None:
        from cairn.archive.store import store_from_env
        from cairn.aws import client
        from integration.payment_translation import to_integration_events
        from payments.app import STREAM_PREFIX, decider, registry

        store = store_from_env(registry, client("dynamodb"), os.environ["EVENTS_TABLE"])
        _payments_publisher = Publisher(
            store, decider, to_integration_events, client("events"), os.environ["EVENT_BUS_NAME"],
            prefix=STREAM_PREFIX,
        )
    return _payments_publisher


def publish_all(records: Sequence[Mapping[str, Any]]) -> PublishReport:
    """Each service's publisher takes its own streams' records; one report for the batch."""
    reports = [publisher().publish_records(records), payments_publisher().publish_records(records)]
    return PublishReport(
        sum(r.published for r in reports),
        tuple(s for r in reports for s in r.failed_sequence_numbers),
        tuple(s for r in reports for s in r.failed_streams),
    )


def publisher() -> Publisher:
    """The process-wide publisher (clients and the orders store built once per container)."""
    global _publisher
    if _publisher is None:
        from cairn.aws import client
        from integration.order_translation import to_integration_events
        from orders.app import runtime

        orders = runtime()
        _publisher = Publisher(
            orders.store,
            orders.decider,
            to_integration_events,
            client("events"),
            os.environ["EVENT_BUS_NAME"],
            snapshots=orders.snapshots,
        )
    return _publisher


def main(argv: list[str] | None = None) -> int:
    """``python -m cairn_platform.publisher STREAM_ID... [--from-version N]`` (env as the Lambda's)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cairn_platform.publisher", description=Publisher.republish.__doc__)
    parser.add_argument("streams", nargs="+", help="order stream ids (order-…)")
    parser.add_argument("--from-version", type=int, default=1)
    args = parser.parse_args(argv)
    for stream_id in args.streams:
        chosen = payments_publisher() if stream_id.startswith("payment-") else publisher()
        print(f"{stream_id}: {chosen.republish(stream_id, args.from_version)} integration events published")
    return 0


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict, context: Any) -> dict:
    from cairn.projections.kinesis import as_stream_event

    records = as_stream_event(event).get("Records", [])  # DynamoDB Streams or Kinesis for DynamoDB
    report = publish_all(records)
    metrics.add_metric(name="IntegrationEventsPublished", unit=MetricUnit.Count, value=report.published)
    from cairn.lag import batch_lag_seconds, emit_lag

    emit_lag("Publisher", batch_lag_seconds(records), len(report.failed_sequence_numbers))
    if report.failed_streams:
        logger.warning("streams left for retry", extra={"streams": list(report.failed_streams)})
    logger.info("published", extra={"records": len(records), "entries": report.published})
    return report.batch_response()


if __name__ == "__main__":
    raise SystemExit(main())
