"""The projection runtime: apply each stream's events exactly once, in version order.

DynamoDB Streams order records per item only, and Lambda delivers at least once, so a batch can
hold a stream's events out of order, twice, or with holes. Per (projection, generation, stream)
the runtime keeps a checkpoint ``version`` and:

- applies only ``checkpoint + 1, + 2, ...``: versions at or below the checkpoint are duplicates
  and are skipped; a missing version is read from the store (consistent Query) — a gap repaired;
- writes the read-model items and the new checkpoint in ONE TransactWriteItems per stream per
  batch, conditioned on the checkpoint still being the one read. A redelivered batch finds the
  checkpoint past its events and changes nothing: effects happen exactly once;
- on a failing event, bisects the stream's batch so every event before it is committed, counts
  an attempt at that (stream, version) and, after ``max_attempts``, parks the stream (see
  :mod:`cairn.projections.parking`) so the other streams keep flowing.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.events import EventEnvelope, utc_now_iso
from cairn.projections.base import Projection, Write, Writes
from cairn.projections.codec import from_attr, to_attr, to_item
from cairn.projections.layout import (
    STATS_SHARDS,
    checkpoint_key,
    gen_pk,
    key,
    parked_key,
    shard_of,
    stats_key,
)
from cairn.projections.parking import ParkedStream, Parking

__all__ = [
    "Checkpoint",
    "EventFailure",
    "GapUnrepairableError",
    "ProjectionEngine",
    "StreamBatch",
    "StreamOutcome",
    "TransientProjectionError",
]

logger = logging.getLogger(__name__)

MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
_RESERVED_PKS = ("s#", "stats#")

_TRANSIENT_CODES = {
    # DynamoDB
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    # S3 (snapshots), SQS (parking messages)
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "RequestThrottled",
    "Throttling",
}
_TRANSIENT_REASONS = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded", "InternalServerError"}


# -- data ------------------------------------------------------------------------------------
@dataclass(slots=True)
class StreamBatch:
    """One stream's part of a batch: events by version (or the error decoding that record).

    ``delivered`` are the versions that came as records (duplicate accounting); the runtime adds
    events it reads from the store to ``events`` so other projections of the batch reuse them.
    """

    stream_id: str
    events: dict[int, EventEnvelope | BaseException] = field(default_factory=dict)
    delivered: set[int] = field(default_factory=set)
    duplicate_records: int = 0  # the same version more than once in this batch

    def add(self, version: int, event: EventEnvelope | BaseException) -> None:
        if version in self.delivered:
            self.duplicate_records += 1
            if not isinstance(self.events.get(version), BaseException):
                return
        self.delivered.add(version)
        self.events[version] = event

    def note_delivered(self, version: int) -> None:
        """A record without an image (KEYS_ONLY view): the event is read from the store."""
        if version in self.delivered:
            self.duplicate_records += 1
        self.delivered.add(version)

    @property
    def head(self) -> int:
        return max(max(self.events, default=0), max(self.delivered, default=0))

    def __bool__(self) -> bool:
        return bool(self.events or self.delivered)

    @classmethod
    def of(cls, stream_id: str, events: Iterable[EventEnvelope]) -> StreamBatch:
        batch = cls(stream_id)
        for event in events:
            batch.add(event.version, event)
        return batch


@dataclass(slots=True)
class Checkpoint:
    version: int = 0
    state: Any = None


@dataclass(slots=True)
class StreamOutcome:
    """What happened to one stream in one projection (all its live generations)."""

    stream_id: str
    applied: int = 0
    duplicates: int = 0
    gaps_repaired: int = 0
    parked_skipped: int = 0
    parked_now: ParkedStream | None = None
    failed_version: int | None = None
    error: BaseException | None = None
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.failed_version is None


class EventFailure(Exception):
    """Applying the event at ``version`` failed (the events before it are committed)."""

    def __init__(self, version: int, error: BaseException):
        super().__init__(f"version {version}: {type(error).__name__}: {error}")
        self.version = version
        self.error = error


class TransientProjectionError(Exception):
    """Throttling, timeouts, transaction conflicts: retried, never counted as an attempt."""


class GapUnrepairableError(LookupError):
    """A version the stream delivered a later event for is not in the store."""


class _CheckpointMovedError(Exception):
    """Another writer advanced the checkpoint (a concurrent redelivery or the rebuild)."""


class _ConflictError(Exception):
    """A concurrent transaction touched one of our items (shared counters): retry soon."""


class _TooLargeError(Exception):
    """More items or bytes than one transaction holds: split the events."""


@dataclass(slots=True)
class _Cursor:
    checkpoint: Checkpoint


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying as is: throttling, service errors, network trouble (also when wrapped, as
    adapters re-raise AWS errors as their own with the original as ``__cause__``)."""
    depth = 0
    current: BaseException | None = exc
    while current is not None and depth < 5:
        if _transient_one(current):
            return True
        current, depth = current.__cause__, depth + 1
    return False


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, TransientProjectionError):
        return True
    code = _error_code(exc)
    if code is not None:
        return code in _TRANSIENT_CODES
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - botocore is always there on Lambda
        return False
    return isinstance(
        exc,
        bce.EndpointConnectionError | bce.ConnectionClosedError | bce.ReadTimeoutError | bce.ConnectTimeoutError,
    )


# -- the engine --------------------------------------------------------------------------------
class ProjectionEngine:
    """Runs one projection against its table. Shared by the Lambda consumer, rebuild and unpark.

    ``store`` is an EventStore of the projection's context (gap repair and replays read it).
    """

    def __init__(
        self,
        projection: Projection,
        client: Any,
        table: str,
        store: Any,
        *,
        parking: Parking | None = None,
        max_attempts: int = 3,
        max_retries: int = 8,
        base_delay: float = 0.02,
        sleep: Any = time.sleep,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.projection = projection
        self.client = client
        self.table = table
        self.store = store
        self.parking = parking or Parking(client, table, projection.name)
        self.max_attempts = max_attempts
        self.max_retries = max_retries
        self.base_delay = base_delay
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.projection.name

    # -- batch ------------------------------------------------------------------------------------
    def process(
        self,
        batch: Mapping[str, StreamBatch],
        generations: Sequence[int],
        *,
        count_attempts: bool = True,
        ignore_parked: bool = False,
    ) -> dict[str, StreamOutcome]:
        """Apply every stream of ``batch`` to each of ``generations``; one outcome per stream.

        Streams are independent: one stream failing never stops the others.
        """
        streams = sorted(s for s in batch if self.projection.handles(s) and batch[s])
        outcomes: dict[str, StreamOutcome] = {}
        if not streams:
            return outcomes
        try:
            checkpoints, parked = self._load(streams, generations)
        except Exception as exc:  # cannot read checkpoints: every stream retries as a whole
            logger.warning("%s: loading checkpoints failed: %s", self.name, exc)
            for stream_id in streams:
                outcomes[stream_id] = StreamOutcome(
                    stream_id,
                    failed_version=min(set(batch[stream_id].events) | batch[stream_id].delivered),
                    error=exc,
                    transient=is_transient(exc),
                )
            return outcomes
        for stream_id in streams:
            outcomes[stream_id] = self._process_stream(
                batch[stream_id],
                generations,
                checkpoints,
                None if ignore_parked else parked.get(stream_id),
                count_attempts=count_attempts,
            )
        return outcomes

    def _process_stream(
        self,
        batch: StreamBatch,
        generations: Sequence[int],
        checkpoints: Mapping[tuple[int, str], Checkpoint],
        parked: ParkedStream | None,
        *,
        count_attempts: bool,
    ) -> StreamOutcome:
        stream_id = batch.stream_id
        out = StreamOutcome(stream_id, duplicates=batch.duplicate_records)
        head = batch.head
        limit = head
        if parked is not None:
            # parked streams: nothing at or after the poison version is applied, in any generation
            limit = parked.version - 1
            out.parked_skipped = sum(1 for v in batch.delivered if v >= parked.version)
            try:
                self.parking.record_head(parked, head)
            except Exception as exc:  # bookkeeping only: never fail the batch for it
                logger.warning("%s: recording the head of parked %s failed: %s", self.name, stream_id, exc)
        cursor = _Cursor(Checkpoint())
        generation = generations[0] if generations else 0
        try:
            for generation in generations:
                cursor.checkpoint = checkpoints.get((generation, stream_id), Checkpoint())
                self._advance(generation, batch, cursor, limit, out)
        except EventFailure as failure:
            if is_transient(failure.error):
                out.failed_version, out.error, out.transient = failure.version, failure.error, True
                return out
            if not count_attempts:
                out.failed_version, out.error = failure.version, failure.error
                return out
            try:
                attempts = self.parking.count_attempt(stream_id, failure.version, failure.error)
                if attempts >= self.max_attempts:
                    out.parked_now = self.parking.park(
                        stream_id, failure.version, failure.error, attempts, head, generation
                    )
                    out.parked_skipped = sum(1 for v in batch.delivered if v >= failure.version)
                    logger.error(
                        "%s: parked %s at version %d after %d attempts: %s",
                        self.name, stream_id, failure.version, attempts, failure.error,
                    )
                    return out
            except Exception as exc:  # could not count or park: plain retry
                logger.warning("%s: attempt bookkeeping for %s failed: %s", self.name, stream_id, exc)
            out.failed_version, out.error = failure.version, failure.error
        except TransientProjectionError as exc:
            out.failed_version, out.error, out.transient = cursor.checkpoint.version + 1, exc, True
        except Exception as exc:  # checkpoint reads and the like: retry from the current checkpoint
            out.failed_version, out.error, out.transient = cursor.checkpoint.version + 1, exc, is_transient(exc)
        return out

    def _advance(self, generation: int, batch: StreamBatch, cursor: _Cursor, limit: int, out: StreamOutcome) -> None:
        out.duplicates += sum(1 for v in batch.delivered if v <= cursor.checkpoint.version)
        retries = 0
        while cursor.checkpoint.version < limit:
            try:
                events, failure = self._collect(batch, cursor.checkpoint.version, limit, out)
                if events:
                    self._apply_range(generation, batch.stream_id, cursor, events, out)
                if failure is not None:
                    raise failure
                return
            except _CheckpointMovedError:
                retries += 1
                if retries > self.max_retries:
                    raise TransientProjectionError(f"checkpoint of {batch.stream_id} keeps moving") from None
                cursor.checkpoint = self.read_checkpoint(generation, batch.stream_id)
            except _ConflictError:
                retries += 1
                if retries > self.max_retries:
                    raise TransientProjectionError(f"transaction conflicts on {batch.stream_id}") from None
                self._backoff(retries)

    def _collect(
        self, batch: StreamBatch, after: int, limit: int, out: StreamOutcome
    ) -> tuple[list[EventEnvelope], EventFailure | None]:
        """Events ``after+1 .. limit`` in order, repairing gaps from the store; stops before the
        first undecodable one (returned as the failure to raise once the prefix is applied)."""
        missing = [v for v in range(after + 1, limit + 1) if v not in batch.events]
        if missing:
            self._repair(batch, missing, out)
        events: list[EventEnvelope] = []
        for version in range(after + 1, limit + 1):
            event = batch.events.get(version)
            if event is None:
                return events, EventFailure(version, GapUnrepairableError(
                    f"{batch.stream_id} version {version} was not found in the store"
                ))
            if isinstance(event, BaseException):
                return events, EventFailure(version, event)
            events.append(event)
        return events, None

    def _repair(self, batch: StreamBatch, missing: list[int], out: StreamOutcome) -> None:
        wanted = set(missing)
        last = missing[0] - 1
        try:
            for event in self.store.read(batch.stream_id, after=missing[0] - 1, up_to_version=missing[-1]):
                last = event.version
                if event.version in wanted and event.version not in batch.events:
                    batch.events[event.version] = event
                    out.gaps_repaired += 1
        except Exception as exc:
            if is_transient(exc):
                raise TransientProjectionError(f"gap repair of {batch.stream_id}: {exc}") from exc
            batch.events.setdefault(last + 1, exc)  # that stored event cannot be decoded

    def _apply_range(
        self, generation: int, stream_id: str, cursor: _Cursor, events: list[EventEnvelope], out: StreamOutcome
    ) -> None:
        """Commit ``events`` in as few transactions as fit; bisect to find a failing event."""
        try:
            self._commit(generation, stream_id, cursor, events, out)
            return
        except (_CheckpointMovedError, _ConflictError, TransientProjectionError):
            raise
        except Exception as exc:
            if is_transient(exc):
                raise TransientProjectionError(str(exc)) from exc
            if len(events) == 1:
                raise EventFailure(events[0].version, exc) from exc
        middle = len(events) // 2
        self._apply_range(generation, stream_id, cursor, events[:middle], out)
        self._apply_range(generation, stream_id, cursor, events[middle:], out)

    def _commit(
        self, generation: int, stream_id: str, cursor: _Cursor, events: list[EventEnvelope], out: StreamOutcome
    ) -> None:
        checkpoint = cursor.checkpoint
        writes = Writes()
        state = self.projection.apply(stream_id, copy.deepcopy(checkpoint.state), events, writes)
        last = events[-1]
        items = self._transaction(generation, stream_id, checkpoint, last, state, len(events), writes)
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if _error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in (getattr(exc, "response", {}).get("CancellationReasons") or [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise _CheckpointMovedError() from None
            if "TransactionConflict" in reasons:
                raise _ConflictError() from None
            if any(code in _TRANSIENT_REASONS for code in reasons):
                raise TransientProjectionError(f"transaction cancelled: {reasons}") from exc
            raise
        cursor.checkpoint = Checkpoint(last.version, state)
        out.applied += len(events)

    def _transaction(
        self,
        generation: int,
        stream_id: str,
        checkpoint: Checkpoint,
        last: EventEnvelope,
        state: Any,
        count: int,
        writes: Writes,
    ) -> list[dict[str, Any]]:
        if len(writes) + 2 > MAX_TRANSACTION_ITEMS:
            raise _TooLargeError(f"{len(writes) + 2} items in one transaction")
        item = {
            **checkpoint_key(generation, stream_id),
            "stream_id": {"S": stream_id},
            "version": {"N": str(last.version)},
            "last_event_at": {"S": last.occurred_at},
            "updated_at": {"S": utc_now_iso()},
        }
        if state is not None:
            item["state"] = to_attr(state)
        put: dict[str, Any] = {"TableName": self.table, "Item": item}
        if checkpoint.version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "#v = :expected"
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":expected": {"N": str(checkpoint.version)}}
        items: list[dict[str, Any]] = [{"Put": put}]
        items.append(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": stats_key(generation, shard_of(stream_id, STATS_SHARDS)),
                    "UpdateExpression": "ADD events_applied :n, streams :s",
                    "ExpressionAttributeValues": {
                        ":n": {"N": str(count)},
                        ":s": {"N": "1" if checkpoint.version == 0 else "0"},
                    },
                }
            }
        )
        items.extend(self._write_item(generation, w) for w in writes)
        size = len(json.dumps(items))
        if size > MAX_TRANSACTION_BYTES:
            raise _TooLargeError(f"transaction of ~{size} bytes")
        return items

    def _write_item(self, generation: int, write: Write) -> dict[str, Any]:
        if write.pk.startswith(_RESERVED_PKS):
            raise ValueError(f"{self.name} wrote to a reserved key {write.pk!r}")
        item_key = key(gen_pk(generation, write.pk), write.sk)
        if write.kind == "put":
            return {"Put": {"TableName": self.table, "Item": {**item_key, **to_item(write.attrs)}}}
        if write.kind == "delete":
            return {"Delete": {"TableName": self.table, "Key": item_key}}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds, sets = [], []
        for i, (name, value) in enumerate(write.counters.items()):
            names[f"#c{i}"] = name
            values[f":c{i}"] = to_attr(value)
            adds.append(f"#c{i} :c{i}")
        for i, (name, value) in enumerate(write.attrs.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_attr(value)
            sets.append(f"#f{i} = :f{i}")
        expression = " ".join(
            part for part in ("ADD " + ", ".join(adds) if adds else "", "SET " + ", ".join(sets) if sets else "") if part
        )
        update: dict[str, Any] = {"TableName": self.table, "Key": item_key, "UpdateExpression": expression}
        if names:
            update["ExpressionAttributeNames"] = names
            update["ExpressionAttributeValues"] = values
        return {"Update": update}

    # -- reads ------------------------------------------------------------------------------------
    def read_checkpoint(self, generation: int, stream_id: str) -> Checkpoint:
        item = self.client.get_item(
            TableName=self.table, Key=checkpoint_key(generation, stream_id), ConsistentRead=True
        ).get("Item")
        return _checkpoint_from(item)

    def _load(
        self, streams: Sequence[str], generations: Sequence[int]
    ) -> tuple[dict[tuple[int, str], Checkpoint], dict[str, ParkedStream]]:
        """Checkpoints of every (generation, stream) and the parked streams: BatchGetItem, consistent."""
        keys: list[dict[str, Any]] = [parked_key(s) for s in streams]
        keys += [checkpoint_key(g, s) for g in generations for s in streams]
        checkpoints: dict[tuple[int, str], Checkpoint] = {}
        parked: dict[str, ParkedStream] = {}
        for item in self._batch_get(keys):
            pk = item["pk"]["S"]
            if pk == "_parked":
                found = ParkedStream.from_item(item)
                parked[found.stream_id] = found
            else:
                generation = int(pk[1 : pk.index("#")])
                checkpoints[(generation, item["stream_id"]["S"])] = _checkpoint_from(item)
        return checkpoints, parked

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {self.table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            attempt = 0
            while pending:
                response = self.client.batch_get_item(RequestItems=pending)
                found.extend(response.get("Responses", {}).get(self.table, ()))
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    attempt += 1
                    if attempt > self.max_retries:
                        raise TransientProjectionError("BatchGetItem kept returning unprocessed keys")
                    self._backoff(attempt)
        return found

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(1.0, self.base_delay * 2 ** attempt)))

    # -- whole streams (unpark, catch-up) ------------------------------------------------------------
    def catch_up(self, stream_id: str, generations: Sequence[int], *, ignore_parked: bool = False) -> StreamOutcome:
        """Apply every stored event after each generation's checkpoint (no attempt counting)."""
        after = min((self.read_checkpoint(g, stream_id).version for g in generations), default=0)
        batch = StreamBatch(stream_id)
        last = after
        try:
            for event in self.store.read(stream_id, after=after):
                batch.events[event.version] = event  # not "delivered": no duplicate accounting
                last = event.version
        except Exception as exc:
            if is_transient(exc):
                raise
            batch.events[last + 1] = exc  # applied up to it, then reported as the failure
        if not batch.events:
            return StreamOutcome(stream_id)
        return self.process({stream_id: batch}, generations, count_attempts=False, ignore_parked=ignore_parked)[
            stream_id
        ]


def _checkpoint_from(item: Mapping[str, Any] | None) -> Checkpoint:
    if not item:
        return Checkpoint()
    state = item.get("state")
    return Checkpoint(int(item["version"]["N"]), from_attr(state) if state is not None else None)
