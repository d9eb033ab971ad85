"""Rebuild (a new generation without downtime), audit (read model vs. fold of the store) and
unpark (replay a parked stream after a fix). The CLI in ``cairn_tools`` is a thin shell on these.

Rebuild, step by step:

1. announce ``building = active + 1`` in the meta item; live consumers now write both
   generations (each with its own checkpoints);
2. wait longer than consumers cache the meta item, so every event appended from now on reaches
   a consumer that writes g+1;
3. scan the events table in parallel segments, group each segment's items per stream, and apply
   them to g+1 through the same engine (checkpoints make the scan and the live consumer's writes
   to g+1 commute: whoever comes second sees duplicates or repairs a gap);
4. when g+1 has applied at least as many events as g, switch ``active`` to g+1; readers follow
   within their cache TTL; after another wait, g's items are deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cairn.events import EventEnvelope
from cairn.projections.base import Writes
from cairn.projections.codec import from_item
from cairn.projections.engine import ProjectionEngine, StreamBatch, StreamOutcome
from cairn.projections.generations import (
    Generations,
    begin_rebuild,
    cache_seconds,
    read_generations,
    switch_generation,
)
from cairn.projections.layout import CHECKPOINT_SK, STATS_SK, checkpoint_key, gen_pk, generation_prefix
from cairn.projections.status import generation_stats

__all__ = [
    "AuditReport",
    "Difference",
    "RebuildProgress",
    "RebuildResult",
    "Rebuilder",
    "UnparkError",
    "UnparkResult",
    "audit",
    "drop_generation",
    "unpark",
]


# -- rebuild -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class RebuildProgress:
    generation: int
    total_estimate: int  # items in the events table (DescribeTable, refreshed every ~6 hours)
    scanned: int = 0  # events-table items read
    events: int = 0  # events of this projection's streams applied or confirmed
    streams: int = 0
    parked: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None  # the scan's end (the rate is the scan's, not the waits')

    @property
    def elapsed(self) -> float:
        return max((self.finished or time.monotonic()) - self.started, 1e-9)

    @property
    def rate(self) -> float:
        return self.scanned / self.elapsed

    @property
    def eta_seconds(self) -> float | None:
        if not self.total_estimate or not self.scanned:
            return None
        return max(self.total_estimate - self.scanned, 0) / max(self.rate, 1e-9)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    previous: int
    generation: int
    switched: bool
    resumed: bool
    events: int
    streams: int
    parked: int
    seconds: float
    dropped_items: int = 0


class RebuildError(RuntimeError):
    """The new generation did not catch up; the old one stays active (run again to resume)."""


class Rebuilder:
    """Builds generation g+1 of one projection next to the live g, then switches readers."""

    def __init__(
        self,
        engine: ProjectionEngine,
        *,
        segments: int = 4,
        settle_seconds: float | None = None,
        streams_per_batch: int = 25,
        catch_up_timeout: float = 120.0,
        drop_previous: bool = True,
        on_progress: Callable[[RebuildProgress], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        between_phases: Callable[[str], None] | None = None,
    ):
        self.engine = engine
        self.segments = max(1, segments)
        self.settle_seconds = cache_seconds() + 5.0 if settle_seconds is None else settle_seconds
        self.streams_per_batch = streams_per_batch
        self.catch_up_timeout = catch_up_timeout
        self.drop_previous = drop_previous
        self.on_progress = on_progress
        self._sleep = sleep
        self._hook = between_phases or (lambda phase: None)
        self._lock = threading.Lock()

    def run(self) -> RebuildResult:
        engine = self.engine
        client, table = engine.client, engine.table
        started = time.monotonic()
        generations, resumed = begin_rebuild(client, table)
        assert generations.building is not None
        self._hook("announced")
        self._sleep(self.settle_seconds)
        progress = RebuildProgress(generations.building, self._estimate())
        self._hook("scanning")
        with ThreadPoolExecutor(max_workers=self.segments, thread_name_prefix="rebuild") as pool:
            list(pool.map(lambda s: self._scan_segment(s, generations.building, progress), range(self.segments)))
        progress.finished = time.monotonic()
        self._report(progress, force=True)
        self._hook("scanned")
        self._wait_caught_up(generations)
        switched = switch_generation(client, table, generations)
        self._hook("switched")
        dropped = 0
        if self.drop_previous:
            self._sleep(self.settle_seconds)  # readers still on g for up to the cache TTL
            dropped = drop_generation(client, table, generations.active)
        return RebuildResult(
            previous=generations.active,
            generation=switched.active,
            switched=True,
            resumed=resumed,
            events=progress.events,
            streams=progress.streams,
            parked=progress.parked,
            seconds=time.monotonic() - started,
            dropped_items=dropped,
        )

    def _estimate(self) -> int:
        try:
            described = self.engine.client.describe_table(TableName=self.engine.store.events_table)
            return int(described["Table"].get("ItemCount", 0))
        except Exception:  # an estimate only
            return 0

    def _scan_segment(self, segment: int, generation: int, progress: RebuildProgress) -> None:
        store, projection = self.engine.store, self.engine.projection
        pending: dict[str, StreamBatch] = {}
        current: StreamBatch | None = None
        scanned = 0
        for item in store.scan_segment(segment, self.segments, raw=True):
            scanned += 1
            if scanned % 200 == 0:
                self._count(progress, scanned=200)
            stream_id = item["stream_id"]["S"]
            if not projection.handles(stream_id):
                continue
            if current is None or current.stream_id != stream_id:
                # a segment returns a partition's items together; if not, the engine still copes
                current = pending[stream_id] if stream_id in pending else StreamBatch(stream_id)
                pending[stream_id] = current
                if len(pending) > self.streams_per_batch:
                    done = {s: b for s, b in pending.items() if s != stream_id}
                    self._apply(done, generation, progress)
                    pending = {stream_id: current}
            version = int(item["version"]["N"])
            try:
                current.events[version] = store.envelope_from_item(item)
            except Exception as exc:  # fails that version: counted, parked after max_attempts
                current.events[version] = exc
        self._count(progress, scanned=scanned % 200)
        if pending:
            self._apply(pending, generation, progress)

    def _apply(self, batches: dict[str, StreamBatch], generation: int, progress: RebuildProgress) -> None:
        remaining = dict(batches)
        attempt = 0
        while remaining:
            outcomes = self.engine.process(remaining, (generation,))
            retry: dict[str, StreamBatch] = {}
            for stream_id, outcome in outcomes.items():
                if outcome.ok:
                    self._done(progress, remaining[stream_id], outcome)
                else:
                    retry[stream_id] = remaining[stream_id]
            remaining = retry
            if remaining:
                attempt += 1
                if attempt > self.engine.max_attempts + 5:
                    raise RebuildError(f"streams keep failing: {sorted(remaining)[:5]}")
                self._sleep(min(2.0, 0.05 * 2**attempt))

    def _done(self, progress: RebuildProgress, batch: StreamBatch, outcome: StreamOutcome) -> None:
        with self._lock:
            progress.streams += 1
            progress.events += outcome.applied
            if outcome.parked_now is not None:
                progress.parked += 1
        self._report(progress)

    def _count(self, progress: RebuildProgress, scanned: int) -> None:
        with self._lock:
            progress.scanned += scanned
        self._report(progress)

    _last_report = 0.0

    def _report(self, progress: RebuildProgress, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_report < 0.2:
                return
            self._last_report = now
            self.on_progress(progress)

    def _wait_caught_up(self, generations: Generations) -> None:
        client, table = self.engine.client, self.engine.table
        deadline = time.monotonic() + self.catch_up_timeout
        while True:
            active = generation_stats(client, table, generations.active)["events_applied"]
            building = generation_stats(client, table, generations.building or 0)["events_applied"]
            if building >= active:
                return
            if time.monotonic() > deadline:
                raise RebuildError(
                    f"generation {generations.building} has {building} events applied, "
                    f"{generations.active} has {active}: not switching (run again to resume)"
                )
            self._sleep(1.0)


def drop_generation(client: Any, table: str, generation: int) -> int:
    """Delete every item of a generation (prefix scan + batch deletes); returns how many."""
    prefix = generation_prefix(generation)
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :p)",
        "ExpressionAttributeValues": {":p": {"S": prefix}},
        "ProjectionExpression": "pk, sk",
    }
    deleted = 0
    while True:
        page = client.scan(**request)
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in page.get("Items", ())]
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if pending:
                    time.sleep(0.1)
        deleted += len(keys)
        if not page.get("LastEvaluatedKey"):
            return deleted
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# -- audit -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Difference:
    pk: str
    sk: str
    kind: str  # missing | unexpected | different
    expected: Any = None
    actual: Any = None

    def __str__(self) -> str:
        return f"{self.kind:10} {self.pk} / {self.sk}\n    expected: {self.expected}\n    actual:   {self.actual}"


@dataclass(slots=True)
class AuditReport:
    projection: str
    generation: int
    streams: int = 0
    events: int = 0
    items: int = 0
    differences: list[Difference] = field(default_factory=list)
    behind: list[tuple[str, int, int]] = field(default_factory=list)  # (stream, checkpoint, store head)

    @property
    def ok(self) -> bool:
        return not self.differences


_VOLATILE = {"pk", "sk", "updated_at"}


def _read_model_items(client: Any, table: str, generation: int) -> dict[tuple[str, str], dict[str, Any]]:
    prefix = generation_prefix(generation)
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :p)",
        "ExpressionAttributeValues": {":p": {"S": prefix}},
        "ConsistentRead": True,
    }
    items: dict[tuple[str, str], dict[str, Any]] = {}
    while True:
        page = client.scan(**request)
        for item in page.get("Items", ()):
            items[(item["pk"]["S"], item["sk"]["S"])] = item
        if not page.get("LastEvaluatedKey"):
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _stored_streams(engine: ProjectionEngine, segments: int) -> Iterator[tuple[str, list[Any]]]:
    """(stream_id, raw items sorted by version) for every stream of the projection."""
    streams: dict[str, list[Any]] = {}
    lock = threading.Lock()

    def scan(segment: int) -> None:
        local: dict[str, list[Any]] = {}
        for item in engine.store.scan_segment(segment, segments, raw=True, consistent=True):
            stream_id = item["stream_id"]["S"]
            if engine.projection.handles(stream_id):
                local.setdefault(stream_id, []).append(item)
        with lock:
            for stream_id, items in local.items():
                streams.setdefault(stream_id, []).extend(items)

    with ThreadPoolExecutor(max_workers=segments) as pool:
        list(pool.map(scan, range(segments)))
    for stream_id in sorted(streams):
        yield stream_id, sorted(streams[stream_id], key=lambda i: int(i["version"]["N"]))


def _merge(model: dict[tuple[str, str], dict[str, Any]], writes: Writes, generation: int) -> None:
    for write in writes:
        slot = (gen_pk(generation, write.pk), write.sk)
        if write.kind == "put":
            model[slot] = dict(write.attrs)
        elif write.kind == "delete":
            model.pop(slot, None)
        else:
            item = model.setdefault(slot, {})
            for name, value in write.counters.items():
                item[name] = item.get(name, 0) + value
            item.update(write.attrs)


def audit(
    engine: ProjectionEngine,
    *,
    generation: int | None = None,
    segments: int = 4,
    max_differences: int = 1000,
) -> AuditReport:
    """Recompute the read model from the store and compare it item by item.

    Each stream is folded up to *its checkpoint* (what the read model claims to include), so a
    projection that merely lags is not a difference: those streams are listed in ``behind``.
    Checked: every read-model item (missing, unexpected, different attributes), every
    checkpoint's state, and the generation's ``streams`` / ``events_applied`` counters.
    """
    client, table, projection = engine.client, engine.table, engine.projection
    generation = generation or read_generations(client, table).active
    report = AuditReport(projection.name, generation)
    actual = _read_model_items(client, table, generation)
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    checkpoints: dict[str, int] = {}
    for (_pk, sk), item in actual.items():
        if sk == CHECKPOINT_SK and "stream_id" in item:
            checkpoints[item["stream_id"]["S"]] = int(item["version"]["N"])
    parked = {p.stream_id for p in engine.parking.list()}
    for stream_id, items in _stored_streams(engine, segments):
        head = int(items[-1]["version"]["N"])
        upto = checkpoints.get(stream_id, 0)
        if upto < head and stream_id not in parked:
            report.behind.append((stream_id, upto, head))
        if upto == 0:
            continue
        events: list[EventEnvelope] = [engine.store.envelope_from_item(i) for i in items[:upto]]
        writes = Writes()
        state = projection.apply(stream_id, None, events, writes)
        _merge(expected, writes, generation)
        cp = checkpoint_key(generation, stream_id)
        expected[(cp["pk"]["S"], cp["sk"]["S"])] = {
            "stream_id": stream_id,
            "version": upto,
            "last_event_at": events[-1].occurred_at,
            **({"state": state} if state is not None else {}),
        }
        report.streams += 1
        report.events += upto
    stats = {"streams": 0, "events_applied": 0}
    for (pk, sk), item in sorted(actual.items()):
        if sk == STATS_SK:
            for name in stats:
                stats[name] += int(item.get(name, {"N": "0"})["N"])
            continue
        report.items += 1
        plain = {k: v for k, v in from_item(item).items() if k not in _VOLATILE}
        want = expected.pop((pk, sk), None)
        if want is None:
            report.differences.append(Difference(pk, sk, "unexpected", None, plain))
        elif not _same(want, plain):
            report.differences.append(Difference(pk, sk, "different", want, plain))
    for (pk, sk), want in sorted(expected.items()):
        report.differences.append(Difference(pk, sk, "missing", want, None))
    wanted_stats = {"streams": report.streams, "events_applied": report.events}
    if stats != wanted_stats:
        report.differences.append(Difference(gen_pk(generation, "stats#*"), STATS_SK, "different", wanted_stats, stats))
    del report.differences[max_differences:]
    return report


def _same(expected: Any, actual: Any) -> bool:
    """Equal as stored: numbers by value (3 == 3.00), containers element-wise."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and all(_same(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        return len(expected) == len(actual) and all(_same(a, b) for a, b in zip(expected, actual, strict=True))
    return expected == actual


# -- unpark ------------------------------------------------------------------------------------------
class UnparkError(RuntimeError):
    """The stream still fails: it stays parked (fix, deploy, run again)."""


@dataclass(frozen=True, slots=True)
class UnparkResult:
    stream_id: str
    was_parked: bool
    applied: int
    generations: tuple[int, ...]


def unpark(engine: ProjectionEngine, stream_id: str) -> UnparkResult:
    """Replay a parked stream from the store into every live generation, then let it flow.

    1. replay while still parked (the consumer keeps skipping): if it fails, nothing changes;
    2. delete the parked item and the attempt counters;
    3. replay again: events that arrived between 1 and 2 were skipped by the consumer.
    Replays go through the checkpoints, so running unpark twice is harmless.
    """
    parked = engine.parking.get(stream_id)
    generations = read_generations(engine.client, engine.table).live()
    first = engine.catch_up(stream_id, generations, ignore_parked=True)
    if not first.ok:
        raise UnparkError(f"{stream_id} still fails at version {first.failed_version}: {first.error}")
    if parked is not None:
        engine.parking.release(stream_id)
    engine.parking.clear_attempts(stream_id)
    second = engine.catch_up(stream_id, generations)
    if not second.ok:
        raise UnparkError(f"{stream_id} failed at version {second.failed_version} after unparking: {second.error}")
    return UnparkResult(stream_id, parked is not None, first.applied + second.applied, generations)

