"""The projection runtime: apply each stream's events exactly once, in version order.

DynamoDB Streams order records per item only, and Lambda delivers at least once, so a batch can
hold a stream's events out of order, twice, or with holes. Per (projection, generation, stream)
the runtime keeps a checkpoint ``version`` and:

- applies only ``checkpoint + 1, + 2, ...``: versions at or below the checkpoint are duplicates
  and are skipped; a missing version is read from the store (consistent Query) — a gap repaired;
- writes a stream's read-model items and its new checkpoint in the SAME TransactWriteItems,
  conditioned on the checkpoint still being the one read. A redelivered batch finds the
  checkpoint past its events and changes nothing: effects happen exactly once;
- to save calls, reads every checkpoint of every projection of a batch with one BatchGetItem and
  packs many streams' (and projections') advances into shared transactions (each item once:
  ADDs to a shared counter merged). A shared transaction that does not commit leaves everything
  unchanged, and its streams then go the per-stream path (one transaction per stream);
- on a failing event, bisects the stream's batch so every event before it is committed, counts
  an attempt at that (stream, version) and, after ``max_attempts``, parks the stream (see
  :mod:`cairn.projections.parking`) so the other streams keep flowing.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.events import EventEnvelope, utc_now_iso
from cairn.projections.base import Projection, Write, Writes
from cairn.projections.codec import from_attr, to_attr, to_item
from cairn.projections.layout import (
    CHECKPOINT_SK,
    PARKED_PK,
    STATS_SHARDS,
    checkpoint_key,
    gen_pk,
    key,
    parked_key,
    shard_of,
    stats_key,
)
from cairn.projections.parking import ParkedStream, Parking
from cairn.retry import (
    TRANSIENT_CANCELLATION_REASONS,
    cancellation_reasons,
    error_code,
    full_jitter,
    is_transient,
)

__all__ = [
    "Checkpoint",
    "EventFailure",
    "GapUnrepairableError",
    "ProjectionEngine",
    "StreamBatch",
    "StreamOutcome",
    "TransientProjectionError",
    "batch_get",
    "process_together",
]

logger = logging.getLogger(__name__)

MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
_RESERVED_PKS = ("s#", "stats#")

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


# -- the engine --------------------------------------------------------------------------------
@dataclass(slots=True)
class _Run:
    """One stream in one projection for one batch: where each live generation stands.

    ``planned`` remembers ``apply`` results by (generation, from version, to version): the
    shared-transaction plan and the per-stream path fold the same range once, not twice.
    """

    batch: StreamBatch
    generations: tuple[int, ...]
    parked: ParkedStream | None
    out: StreamOutcome
    limit: int
    cursors: dict[int, Checkpoint]
    planned: dict[tuple[int, int, int], tuple[Any, Writes]] = field(default_factory=dict)


@dataclass(slots=True)
class _Entry:
    """One item of a transaction: a mergeable ``write`` or a final ``action`` (a checkpoint Put)."""

    table: str
    key: dict[str, Any]
    write: Write | None = None
    action: dict[str, Any] | None = None

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.table, self.key["pk"]["S"], self.key["sk"]["S"])

    def render(self) -> dict[str, Any]:
        if self.action is not None:
            return self.action
        assert self.write is not None
        return _write_action(self.table, self.key, self.write)


@dataclass(slots=True)
class _Commit:
    """One (projection, generation, stream) advance, ready to share a transaction with others:
    its checkpoint Put (conditioned on the checkpoint read), the stats ADD and its writes."""

    engine: ProjectionEngine
    run: _Run
    generation: int
    after: Checkpoint
    count: int
    entries: list[_Entry]
    size: int


class ProjectionEngine:
    """Runs one projection against its table. Shared by the Lambda consumer, rebuild and unpark.

    ``store`` is an EventStore of the projection's context (gap repair and replays read it).
    Several engines (the projections of one Lambda) run a batch together with
    :func:`process_together`: one read of every checkpoint, shared transactions.
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
        return process_together(
            [(self, generations)], batch, count_attempts=count_attempts, ignore_parked=ignore_parked
        )[0]

    def _streams(self, batch: Mapping[str, StreamBatch]) -> list[str]:
        return sorted(s for s in batch if self.projection.handles(s) and batch[s])

    def _load_keys(self, streams: Sequence[str], generations: Sequence[int]) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = [parked_key(s) for s in streams]
        keys += [checkpoint_key(g, s) for g in generations for s in streams]
        return keys

    def _begin(
        self,
        batch: StreamBatch,
        generations: Sequence[int],
        checkpoints: Mapping[tuple[int, str], Checkpoint],
        parked: ParkedStream | None,
    ) -> _Run:
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
        cursors = {g: checkpoints.get((g, stream_id), Checkpoint()) for g in generations}
        for checkpoint in cursors.values():
            out.duplicates += sum(1 for v in batch.delivered if v <= checkpoint.version)
        return _Run(batch, tuple(generations), parked, out, limit, cursors)

    def _plan(self, run: _Run) -> list[_Commit] | None:
        """Each generation's advance as a commit that may share a transaction, or None: the
        stream takes the per-stream path (an undecodable event, a projection error, too big)."""
        commits: list[_Commit] = []
        try:
            for generation in run.generations:
                checkpoint = run.cursors[generation]
                if checkpoint.version >= run.limit:
                    continue
                events, failure = self._collect(run.batch, checkpoint.version, run.limit, run.out)
                if failure is not None or not events:
                    return None
                commits.append(self._prepare(generation, run, checkpoint, events))
        except Exception as exc:  # reproduced (and bisected, counted, parked) by the per-stream path
            logger.debug("%s: %s takes the per-stream path: %r", self.name, run.batch.stream_id, exc)
            return None
        return commits

    def _prepare(self, generation: int, run: _Run, checkpoint: Checkpoint, events: list[EventEnvelope]) -> _Commit:
        state, writes = self._applied(generation, run, checkpoint, events)
        if len(writes) + 2 > MAX_TRANSACTION_ITEMS:
            raise _TooLargeError(f"{len(writes) + 2} items in one transaction")
        stream_id, last = run.batch.stream_id, events[-1]
        put = self._checkpoint_action(generation, stream_id, checkpoint, last, state)
        entries = [
            _Entry(self.table, checkpoint_key(generation, stream_id), action=put),
            _Entry(self.table, self._stats_key(generation, stream_id), _stats_write(len(events), checkpoint)),
            *(_Entry(self.table, self._scoped_key(generation, w), w) for w in writes),
        ]
        size = len(json.dumps([e.render() for e in entries]))
        if size > MAX_TRANSACTION_BYTES:
            raise _TooLargeError(f"transaction of ~{size} bytes")
        return _Commit(self, run, generation, Checkpoint(last.version, state), len(events), entries, size)

    def _finish(self, run: _Run, *, count_attempts: bool) -> StreamOutcome:
        """The per-stream path: whatever the shared transactions did not commit, one stream at a
        time, with bisection to the failing event, attempt counting and parking."""
        stream_id, out = run.batch.stream_id, run.out
        generation = run.generations[0] if run.generations else 0
        try:
            for generation in run.generations:
                self._advance(generation, run)
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
                        stream_id, failure.version, failure.error, attempts, run.batch.head, generation
                    )
                    out.parked_skipped = sum(1 for v in run.batch.delivered if v >= failure.version)
                    logger.error(
                        "%s: parked %s at version %d after %d attempts: %s",
                        self.name, stream_id, failure.version, attempts, failure.error,
                        extra={"stream_id": stream_id, "projection": self.name, "version": failure.version},
                    )
                    return out
            except Exception as exc:  # could not count or park: plain retry
                logger.warning("%s: attempt bookkeeping for %s failed: %s", self.name, stream_id, exc)
            out.failed_version, out.error = failure.version, failure.error
        except TransientProjectionError as exc:
            out.failed_version, out.error, out.transient = run.cursors[generation].version + 1, exc, True
        except Exception as exc:  # checkpoint reads and the like: retry from the current checkpoint
            out.failed_version, out.error = run.cursors[generation].version + 1, exc
            out.transient = is_transient(exc)
        return out

    def _advance(self, generation: int, run: _Run) -> None:
        batch, limit = run.batch, run.limit
        retries = 0
        while run.cursors[generation].version < limit:
            try:
                events, failure = self._collect(batch, run.cursors[generation].version, limit, run.out)
                if events:
                    self._apply_range(generation, run, events)
                if failure is not None:
                    raise failure
                return
            except _CheckpointMovedError:
                retries += 1
                if retries > self.max_retries:
                    raise TransientProjectionError(f"checkpoint of {batch.stream_id} keeps moving") from None
                run.cursors[generation] = self.read_checkpoint(generation, batch.stream_id)
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

    def _apply_range(self, generation: int, run: _Run, events: list[EventEnvelope]) -> None:
        """Commit ``events`` in as few transactions as fit; bisect to find a failing event."""
        try:
            self._commit(generation, run, events)
            return
        except (_CheckpointMovedError, _ConflictError, TransientProjectionError):
            raise
        except Exception as exc:
            if is_transient(exc):
                raise TransientProjectionError(str(exc)) from exc
            if len(events) == 1:
                raise EventFailure(events[0].version, exc) from exc
        middle = len(events) // 2
        self._apply_range(generation, run, events[:middle])
        self._apply_range(generation, run, events[middle:])

    def _applied(
        self, generation: int, run: _Run, checkpoint: Checkpoint, events: list[EventEnvelope]
    ) -> tuple[Any, Writes]:
        """``apply`` on a private copy of the checkpoint's state; memoised per run (deterministic)."""
        memo = (generation, checkpoint.version, events[-1].version)
        found = run.planned.get(memo)
        if found is None:
            writes = Writes()
            state = self.projection.apply(run.batch.stream_id, copy.deepcopy(checkpoint.state), events, writes)
            found = run.planned[memo] = (state, writes)
        return found

    def _commit(self, generation: int, run: _Run, events: list[EventEnvelope]) -> None:
        checkpoint = run.cursors[generation]
        state, writes = self._applied(generation, run, checkpoint, events)
        last = events[-1]
        items = self._transaction(generation, run.batch.stream_id, checkpoint, last, state, len(events), writes)
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise _CheckpointMovedError() from None
            if "TransactionConflict" in reasons:
                raise _ConflictError() from None
            if any(code in TRANSIENT_CANCELLATION_REASONS for code in reasons):
                raise TransientProjectionError(f"transaction cancelled: {reasons}") from exc
            raise
        run.cursors[generation] = Checkpoint(last.version, state)
        run.out.applied += len(events)

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
        """One stream's transaction: the conditional checkpoint Put first, the stats ADD, the writes."""
        if len(writes) + 2 > MAX_TRANSACTION_ITEMS:
            raise _TooLargeError(f"{len(writes) + 2} items in one transaction")
        items: list[dict[str, Any]] = [self._checkpoint_action(generation, stream_id, checkpoint, last, state)]
        items.append(_write_action(self.table, self._stats_key(generation, stream_id), _stats_write(count, checkpoint)))
        items.extend(_write_action(self.table, self._scoped_key(generation, w), w) for w in writes)
        size = len(json.dumps(items))
        if size > MAX_TRANSACTION_BYTES:
            raise _TooLargeError(f"transaction of ~{size} bytes")
        return items

    def _checkpoint_action(
        self, generation: int, stream_id: str, checkpoint: Checkpoint, last: EventEnvelope, state: Any
    ) -> dict[str, Any]:
        """The checkpoint's Put, conditioned on it still being the one read: exactly once."""
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
        return {"Put": put}

    @staticmethod
    def _stats_key(generation: int, stream_id: str) -> dict[str, Any]:
        return stats_key(generation, shard_of(stream_id, STATS_SHARDS))

    def _scoped_key(self, generation: int, write: Write) -> dict[str, Any]:
        if write.pk.startswith(_RESERVED_PKS):
            raise ValueError(f"{self.name} wrote to a reserved key {write.pk!r}")
        return key(gen_pk(generation, write.pk), write.sk)

    # -- reads ------------------------------------------------------------------------------------
    def read_checkpoint(self, generation: int, stream_id: str) -> Checkpoint:
        item = self.client.get_item(
            TableName=self.table, Key=checkpoint_key(generation, stream_id), ConsistentRead=True
        ).get("Item")
        return _checkpoint_from(item)

    def _backoff(self, attempt: int) -> None:
        self._sleep(full_jitter(attempt + 1, self.base_delay, 1.0))

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


# -- several projections and streams together ---------------------------------------------------
def process_together(
    jobs: Sequence[tuple[ProjectionEngine, Sequence[int]]],
    batch: Mapping[str, StreamBatch],
    *,
    count_attempts: bool = True,
    ignore_parked: bool = False,
) -> list[dict[str, StreamOutcome]]:
    """Run ``(engine, generations)`` jobs over one batch; the outcomes per job, per stream.

    1. one consistent BatchGetItem (<= 100 keys a call, across tables) reads every checkpoint and
       parked flag of every job;
    2. each (projection, generation, stream) with events to apply is folded into a commit;
       commits are packed into shared TransactWriteItems (<= 100 items, <= 4 MB, each item once:
       ADDs to one item merged), every stream's checkpoint condition inside;
    3. whatever a shared transaction did not commit (a checkpoint moved, a conflict, throttling,
       a lost response) and every stream the plan left out goes the per-stream path: one
       transaction per stream, bisection, attempts and parking — exactly as for a lone stream.
    """
    results: list[dict[str, StreamOutcome]] = [{} for _ in jobs]
    streams = [engine._streams(batch) for engine, _ in jobs]
    loaded = _load_together(jobs, streams)
    runs: list[tuple[int, _Run]] = []
    for index, (engine, generations) in enumerate(jobs):
        found = loaded[index]
        if isinstance(found, BaseException):  # cannot read checkpoints: every stream retries as a whole
            logger.warning("%s: loading checkpoints failed: %s", engine.name, found)
            for stream_id in streams[index]:
                stream = batch[stream_id]
                results[index][stream_id] = StreamOutcome(
                    stream_id,
                    failed_version=min(set(stream.events) | stream.delivered),
                    error=found,
                    transient=is_transient(found),
                )
            continue
        checkpoints, parked = found
        for stream_id in streams[index]:
            run = engine._begin(
                batch[stream_id], generations, checkpoints, None if ignore_parked else parked.get(stream_id)
            )
            runs.append((index, run))
    commits: list[_Commit] = []
    for index, run in runs:
        planned = jobs[index][0]._plan(run)
        if planned:
            commits.extend(planned)
    for group in _pack(commits):
        if len(group.commits) > 1:  # a lone commit is exactly the per-stream transaction
            _commit_group(group)
    for index, run in runs:
        results[index][run.batch.stream_id] = jobs[index][0]._finish(run, count_attempts=count_attempts)
    return results


def _load_together(
    jobs: Sequence[tuple[ProjectionEngine, Sequence[int]]], streams: Sequence[Sequence[str]]
) -> list[tuple[dict[tuple[int, str], Checkpoint], dict[str, ParkedStream]] | BaseException]:
    """Checkpoints of every (generation, stream) and the parked streams of each job, in as few
    BatchGetItem calls as the keys need (jobs on the same client share them)."""
    by_client: dict[int, list[int]] = {}
    for index, (engine, _) in enumerate(jobs):
        if streams[index]:
            by_client.setdefault(id(engine.client), []).append(index)
    loaded: list[Any] = [({}, {}) for _ in jobs]
    for indexes in by_client.values():
        first = jobs[indexes[0]][0]
        wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        for index in indexes:
            engine, generations = jobs[index]
            for item_key in engine._load_keys(streams[index], generations):
                wanted[(engine.table, item_key["pk"]["S"], item_key["sk"]["S"])] = item_key
        try:
            items = batch_get(first.client, wanted, sleep=first._backoff, max_retries=first.max_retries)
        except Exception as exc:
            for index in indexes:
                loaded[index] = exc
            continue
        for index in indexes:
            engine = jobs[index][0]
            checkpoints: dict[tuple[int, str], Checkpoint] = {}
            parked: dict[str, ParkedStream] = {}
            for item in items.get(engine.table, ()):
                pk = item["pk"]["S"]
                if pk == PARKED_PK:
                    found = ParkedStream.from_item(item)
                    parked[found.stream_id] = found
                elif item["sk"]["S"] == CHECKPOINT_SK and "stream_id" in item:
                    generation = int(pk[1 : pk.index("#")])
                    checkpoints[(generation, item["stream_id"]["S"])] = _checkpoint_from(item)
            loaded[index] = (checkpoints, parked)
    return loaded


def batch_get(
    client: Any,
    keys: Mapping[tuple[str, str, str], dict[str, Any]],
    *,
    sleep: Any,
    max_retries: int = 8,
) -> dict[str, list[dict[str, Any]]]:
    """Consistent BatchGetItem of ``{(table, pk, sk): key}``: <= 100 keys a call, unprocessed keys
    retried with backoff (``sleep(attempt)``); the items found, per table."""
    found: dict[str, list[dict[str, Any]]] = {}
    flat = list(keys.items())
    for start in range(0, len(flat), 100):
        pending: dict[str, Any] = {}
        for (table, _pk, _sk), item_key in flat[start : start + 100]:
            pending.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(item_key)
        attempt = 0
        while pending:
            response = client.batch_get_item(RequestItems=pending)
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                attempt += 1
                if attempt > max_retries:
                    raise TransientProjectionError("BatchGetItem kept returning unprocessed keys")
                sleep(attempt)
    return found


class _Group:
    """Commits sharing one TransactWriteItems: every item once (ADDs to a shared item merged)."""

    def __init__(self) -> None:
        self.commits: list[_Commit] = []
        self.entries: dict[tuple[str, str, str], _Entry] = {}
        self.size = 0

    def admit(self, commit: _Commit) -> bool:
        """Take ``commit`` if it fits: item count, bytes, and no item written twice unmergeably."""
        if self.size + commit.size > MAX_TRANSACTION_BYTES:
            return False
        merged: dict[tuple[str, str, str], Write] = {}
        new = 0
        for entry in commit.entries:
            have = self.entries.get(entry.ident)
            if have is None:
                new += 1
                continue
            combined = _merge_writes(have.write, entry.write)
            if combined is None:
                return False
            merged[entry.ident] = combined
        if len(self.entries) + new > MAX_TRANSACTION_ITEMS:
            return False
        for entry in commit.entries:
            if entry.ident in merged:
                self.entries[entry.ident] = _Entry(entry.table, entry.key, merged[entry.ident])
            else:
                self.entries[entry.ident] = entry
        self.commits.append(commit)
        self.size += commit.size
        return True

    def actions(self) -> list[dict[str, Any]]:
        return [entry.render() for entry in self.entries.values()]


def _pack(commits: Sequence[_Commit]) -> list[_Group]:
    """First fit: each commit joins the first group it fits in (per client), else a new one."""
    groups: list[tuple[int, _Group]] = []
    for commit in commits:
        client = id(commit.engine.client)
        for owner, group in groups:
            if owner == client and group.admit(commit):
                break
        else:
            group = _Group()
            group.admit(commit)
            groups.append((client, group))
    return [group for _, group in groups]


def _commit_group(group: _Group) -> bool:
    """One shared transaction. On success every commit's checkpoint moves; on any failure
    nothing moved (a transaction is all or nothing) and the per-stream path takes over — also
    after a lost response: the checkpoints then make the per-stream retries duplicates."""
    client = group.commits[0].engine.client
    try:
        client.transact_write_items(TransactItems=group.actions())
    except Exception as exc:
        reasons = cancellation_reasons(exc) if error_code(exc) == "TransactionCanceledException" else []
        logger.info(
            "shared transaction of %d streams not committed (%s%s): per-stream path",
            len(group.commits), error_code(exc) or type(exc).__name__, f" {sorted(set(reasons))}" if reasons else "",
        )
        return False
    for commit in group.commits:
        commit.run.cursors[commit.generation] = commit.after
        commit.run.out.applied += commit.count
    return True


def _merge_writes(first: Write | None, second: Write | None) -> Write | None:
    """Two writes of one item as one, or None. Only ADD-counter updates merge (sums commute);
    SET fields must agree; puts, deletes and checkpoints never share an item."""
    if first is None or second is None or first.kind != "add" or second.kind != "add":
        return None
    if set(first.counters) & set(second.attrs) or set(second.counters) & set(first.attrs):
        return None
    if any(first.attrs[name] != second.attrs[name] for name in set(first.attrs) & set(second.attrs)):
        return None
    counters = dict(first.counters)
    for name, value in second.counters.items():
        counters[name] = counters.get(name, 0) + value
    return Write("add", first.pk, first.sk, {**first.attrs, **second.attrs}, counters)


def _stats_write(count: int, checkpoint: Checkpoint) -> Write:
    """The generation's sharded counters: events applied, and a new stream on its first event."""
    return Write("add", "", "", counters={"events_applied": count, "streams": 1 if checkpoint.version == 0 else 0})


def _write_action(table: str, item_key: dict[str, Any], write: Write) -> dict[str, Any]:
    if write.kind == "put":
        return {"Put": {"TableName": table, "Item": {**item_key, **to_item(write.attrs)}}}
    if write.kind == "delete":
        return {"Delete": {"TableName": table, "Key": item_key}}
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
    update: dict[str, Any] = {"TableName": table, "Key": item_key, "UpdateExpression": expression}
    if names:
        update["ExpressionAttributeNames"] = names
        update["ExpressionAttributeValues"] = values
    return {"Update": update}


def _checkpoint_from(item: Mapping[str, Any] | None) -> Checkpoint:
    if not item:
        return Checkpoint()
    state = item.get("state")
    return Checkpoint(int(item["version"]["N"]), from_attr(state) if state is not None else None)
