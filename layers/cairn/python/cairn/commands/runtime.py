"""The command path: load (cache | snapshot + tail) -> decide (pure) -> conditional append.

Warm path: the cached (version, state) is trusted optimistically, so a warm command costs one
round trip (the conditional write). If another writer got there first, the write fails with
the current version; the runtime reads only the missing tail, re-decides and tries again
(bounded, with jitter). With an explicit expected version (HTTP If-Match) a version conflict is
never retried (412), but DynamoDB's ``TransactionConflict`` on an unmoved stream is (it is
transient and says nothing about versions).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cairn.commands.cache import StateCache
from cairn.commands.decider import Decider
from cairn.events import EventEnvelope, EventMetadata, NewEvent, utc_now_iso
from cairn.retry import full_jitter
from cairn.snapshots import Snapshot, SnapshotError, SnapshotStore
from cairn.store import (
    AnchorMismatchError,
    AppendResult,
    ConcurrencyError,
    EventStore,
    TransactionConflictError,
)

logger = logging.getLogger(__name__)

S = TypeVar("S")


class StreamNotFoundError(LookupError):
    """The stream has no events (at the requested point in time)."""

    def __init__(self, stream_id: str):
        super().__init__(f"stream {stream_id!r} not found")
        self.stream_id = stream_id


class RetriesExhaustedError(ConcurrencyError):
    """Writers kept winning the race for longer than the retry budget."""


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Who asked and why: flows into every event's metadata."""

    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def metadata(self) -> EventMetadata:
        return EventMetadata(
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            actor=self.actor,
            command_id=self.command_id,
        )


@dataclass(frozen=True, slots=True)
class CommandResult(Generic[S]):
    stream_id: str
    version: int
    state: S | None  # None for an idempotent replay (the first answer is in ``answer``)
    events: tuple[EventEnvelope, ...] = ()
    replayed: bool = False
    answer: Mapping[str, Any] | None = None
    retries: int = 0


AnswerFn = Callable[[Any, int], Mapping[str, Any]]


class CommandRuntime(Generic[S]):
    def __init__(
        self,
        store: EventStore,
        decider: Decider[Any, S],
        snapshots: SnapshotStore | None = None,
        cache: StateCache | None = None,
        *,
        max_retries: int = 8,
        base_delay: float = 0.005,
        max_delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        on_snapshot_rejected: Callable[[str, str], None] | None = None,
    ):
        self.store = store
        self.decider = decider
        self.snapshots = snapshots
        self.cache = cache if cache is not None else StateCache()
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self.on_snapshot_rejected = on_snapshot_rejected if on_snapshot_rejected is not None else emit_snapshot_rejected
        self.snapshots_rejected = 0

    # -- loading ------------------------------------------------------------------------------
    def _stored_snapshot(self, stream_id: str) -> Snapshot | None:
        if self.snapshots is None:
            return None
        try:
            return self.snapshots.get(stream_id, self.decider.state_schema_version)
        except SnapshotError as exc:  # a snapshot is an optimisation: replay instead
            logger.warning("snapshot unavailable for %s: %s", stream_id, exc)
            return None

    def _snapshot(self, stream_id: str, snapshot: Snapshot | None | bool = True) -> tuple[Snapshot, S] | None:
        """The stored snapshot (``True``: fetch it) and its restored state, or None: a snapshot is
        an optimisation, so one that cannot be read, has no hash or does not restore is "no
        snapshot", never an error."""
        if snapshot is True:
            snapshot = self._stored_snapshot(stream_id)
        if snapshot is None or snapshot is False or snapshot is True:
            return None
        if not snapshot.hash or snapshot.version < 1:
            self._rejected(stream_id, "snapshot carries no event hash")
            return None
        try:
            return snapshot, self.decider.restore(snapshot.state)
        except Exception as exc:  # state model changed without a schema bump, or a corrupt body
            self._rejected(stream_id, f"snapshot does not restore: {type(exc).__name__}")
            return None

    def _rejected(self, stream_id: str, reason: str) -> None:
        self.snapshots_rejected += 1
        logger.warning("snapshot of %s ignored: %s", stream_id, reason)
        try:
            self.on_snapshot_rejected(stream_id, reason)
        except Exception:  # a metric must never fail a command
            logger.exception("cannot count the rejected snapshot")

    def load(self, stream_id: str) -> tuple[int, S]:
        """(version, state) from the latest snapshot + the events after it; 0 if no events.

        The tail Query starts *at* the snapshot's version and the snapshot is used only if that
        event is still stored with the snapshot's hash; otherwise (a snapshot newer than the
        store, or of another history) the stream is replayed from version 1."""
        found = self._snapshot(stream_id)
        if found is not None:
            snapshot, state = found
            try:
                return self.store.fold(
                    stream_id, state, self.decider.evolve, after=snapshot.version, anchor=snapshot.hash
                )
            except AnchorMismatchError as exc:
                self._rejected(stream_id, str(exc))
        return self.store.fold(stream_id, self.decider.initial_state(), self.decider.evolve)

    def _catch_up(self, stream_id: str, version: int, state: S) -> tuple[int, S]:
        return self.store.fold(stream_id, state, self.decider.evolve, after=version)

    def _verified_start(
        self,
        stream_id: str,
        *,
        up_to_version: int | None = None,
        up_to_time: str | None = None,
        stored: Snapshot | None | bool = True,
    ) -> tuple[Any, int, S, str | None, bool]:
        """(events iterator, version, state, last occurred_at, snapshot used): the read for time
        travel and snapshots, starting at a verified snapshot when one applies (the snapshot's
        event is the first one read, and must carry the snapshot's hash)."""
        found = self._snapshot(stream_id, stored)
        if found is not None:
            snapshot, state = found
            if (up_to_version is None or snapshot.version <= up_to_version) and (
                up_to_time is None or (snapshot.last_occurred_at and snapshot.last_occurred_at <= up_to_time)
            ):
                events = self.store.read(
                    stream_id, after=snapshot.version - 1, up_to_version=up_to_version, up_to_time=up_to_time
                )
                first = next(events, None)
                if first is not None and first.version == snapshot.version and first.hash == snapshot.hash:
                    return events, snapshot.version, state, first.occurred_at, True
                self._rejected(stream_id, f"event {snapshot.version} is not stored with the snapshot's hash")
                if hasattr(events, "close"):
                    events.close()
        events = self.store.read(stream_id, up_to_version=up_to_version, up_to_time=up_to_time)
        return events, 0, self.decider.initial_state(), None, False

    def state_at(
        self, stream_id: str, *, up_to_version: int | None = None, up_to_time: str | None = None
    ) -> tuple[int, S, str | None]:
        """State as of a version or a time (time travel): (version, state, last occurred_at).

        "The state at time T" is the longest prefix of the stream whose events occurred at or
        before T (the store never writes an ``occurred_at`` below the previous event's, so this
        prefix is the same with or without a snapshot). Uses a snapshot only when it does not
        pass the requested point and verifies. Raises StreamNotFoundError when the stream had no
        events then.
        """
        from cairn.events import normalize_timestamp

        if up_to_time is not None:
            up_to_time = normalize_timestamp(up_to_time)
        events, version, state, last_at, _ = self._verified_start(
            stream_id, up_to_version=up_to_version, up_to_time=up_to_time
        )
        evolve = self.decider.evolve
        for envelope in events:
            state = evolve(state, envelope.data)
            version = envelope.version
            last_at = envelope.occurred_at
        if version == 0:
            raise StreamNotFoundError(stream_id)
        return version, state, last_at

    def current(self, stream_id: str, min_version: int = 0) -> tuple[int, S]:
        """Latest known (version, state), from cache when it is at least ``min_version``."""
        cached = self.cache.get(stream_id)
        if cached is not None and cached[0] >= min_version:
            return cached
        version, state = self.load(stream_id)
        self.cache.put(stream_id, version, state)
        return version, state

    # -- commands -----------------------------------------------------------------------------
    def handle(
        self,
        stream_id: str,
        command: Any,
        *,
        context: CommandContext | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        fingerprint: str = "",
        answer: AnswerFn | None = None,
    ) -> CommandResult[S]:
        """Decide ``command`` against the stream's state and append the events atomically.

        Domain errors raised by ``decide`` propagate unchanged (after making sure they were not
        caused by a stale cached state). ``answer(state, version)`` builds the response stored in
        the idempotency marker, so a repeat returns exactly the first answer.
        """
        context = context or CommandContext()
        metadata = context.metadata()
        cached = self.cache.get(stream_id)
        from_cache = cached is not None
        version, state = cached if cached is not None else self.load(stream_id)
        if expected_version is not None and from_cache and version < expected_version:
            version, state = self._catch_up(stream_id, version, state)
        retries = 0
        while True:
            if expected_version is not None and version != expected_version:
                if idempotency_key is not None:
                    replay = self._replay(idempotency_key, fingerprint)
                    if replay is not None:
                        return replay
                self.cache.put(stream_id, version, state)
                raise ConcurrencyError(stream_id, expected_version, version)
            try:
                decided = list(self.decider.decide(command, state))
            except Exception:
                if from_cache:
                    # the rejection may come from a stale cached state: decide once more on fresh state
                    from_cache = False
                    version, state = self._catch_up(stream_id, version, state)
                    continue
                if idempotency_key is not None:
                    replay = self._replay(idempotency_key, fingerprint)
                    if replay is not None:
                        return replay
                raise
            if not decided:
                if idempotency_key is not None:
                    # a no-op is a repeat if the key was used before: answer as the first time
                    replay = self._replay(idempotency_key, fingerprint)
                    if replay is not None:
                        return replay
                self.cache.put(stream_id, version, state)
                body = answer(state, version) if answer else None
                return CommandResult(stream_id, version, state, (), False, body, retries)
            new_state = self.decider.fold(state, decided)
            new_version = version + len(decided)
            body = answer(new_state, new_version) if answer else None
            try:
                result: AppendResult = self.store.append(
                    stream_id,
                    [NewEvent(data=e, metadata=metadata) for e in decided],
                    version,
                    idempotency_key,
                    fingerprint=fingerprint,
                    answer=body,
                )
            except ConcurrencyError as conflict:
                if expected_version is not None:
                    self.cache.invalidate(stream_id)
                    raise
                retries += 1
                if retries > self.max_retries:
                    self.cache.invalidate(stream_id)
                    raise RetriesExhaustedError(stream_id, version, conflict.current_version) from conflict
                self._backoff(retries)
                from_cache = False
                version, state = self._catch_up(stream_id, version, state)
                continue
            except TransactionConflictError as collision:
                # DynamoDB's TransactionConflict with the stream still at ``version``: nothing was
                # written, the caller's precondition still holds; try again (If-Match or not)
                retries += 1
                if retries > self.max_retries:
                    self.cache.invalidate(stream_id)
                    raise RetriesExhaustedError(stream_id, version, version) from collision
                self._backoff(retries)
                from_cache = False
                version, state = self._catch_up(stream_id, version, state)
                continue
            except BaseException:
                # unknown outcome (timeout, crash): the next command reloads
                self.cache.invalidate(stream_id)
                raise
            if result.replayed:
                self.cache.invalidate(stream_id)
                return CommandResult(stream_id, result.last_version, None, (), True, result.answer, retries)
            self.cache.put(stream_id, new_version, new_state)
            return CommandResult(stream_id, new_version, new_state, result.events, False, body, retries)

    def _replay(self, key: str, fingerprint: str) -> CommandResult[S] | None:
        from cairn.store import IdempotencyKeyReuseError

        record = self.store.get_idempotency_record(key)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReuseError(key)
        return CommandResult(record.stream_id, record.last_version, None, (), True, record.answer, 0)

    def _backoff(self, attempt: int) -> None:
        self._sleep(full_jitter(attempt, self.base_delay, self.max_delay))

    # -- snapshots ----------------------------------------------------------------------------
    def take_snapshot(self, stream_id: str) -> Snapshot | None:
        """Fold the stream (from the previous snapshot, if it verifies) and store a new snapshot
        at the head with the head event's hash; None if the stream is empty. A stored snapshot
        that does not verify is replaced (it may be newer than the store)."""
        if self.snapshots is None:
            raise SnapshotError("no snapshot store configured")
        stored = self._stored_snapshot(stream_id)
        events, version, state, last_at, used = self._verified_start(stream_id, stored=stored)
        head_hash = ""
        if used and stored is not None:
            head_hash = stored.hash
        for envelope in events:
            state = self.decider.evolve(state, envelope.data)
            version, last_at, head_hash = envelope.version, envelope.occurred_at, envelope.hash or ""
        if version == 0:
            return None
        if used and stored is not None and stored.version == version:
            return stored
        if not head_hash:
            raise SnapshotError(f"{stream_id}: event {version} has no hash (written before the chain)")
        new = Snapshot(
            stream_id=stream_id,
            version=version,
            state_schema_version=self.decider.state_schema_version,
            state=self.decider.state_to_dict(state),
            last_occurred_at=last_at or "",
            taken_at=utc_now_iso(),
            hash=head_hash,
        )
        self.snapshots.put(new, replace=stored is not None and not used)
        return new


def emit_snapshot_rejected(stream_id: str, reason: str) -> None:
    """The default: a ``SnapshotsRejected`` EMF metric (one line, flushed at once)."""
    import os

    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Cairn"
    with single_metric(name="SnapshotsRejected", unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
        metric.add_dimension(name="aggregate", value=stream_id.split("-", 1)[0])


__all__ = [
    "CommandContext",
    "CommandResult",
    "CommandRuntime",
    "RetriesExhaustedError",
    "StreamNotFoundError",
    "emit_snapshot_rejected",
]
