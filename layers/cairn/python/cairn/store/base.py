"""The EventStore contract every adapter honours (checked by tests/contract)."""

from __future__ import annotations

import hashlib
import json
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cairn.events import EventEnvelope, EventMetadata, EventRegistry, NewEvent
from cairn.events.registry import SchemaVersionError, UnknownEventTypeError, UpcasterMissingError
from cairn.integrity import GENESIS, event_hash

S = TypeVar("S")

MAX_EVENTS_PER_APPEND = 100  # TransactWriteItems limit (the marker takes one slot when present)
MAX_ITEM_BYTES = 400 * 1024  # DynamoDB item limit: attribute names + values, UTF-8 bytes
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024  # TransactWriteItems aggregate limit
MAX_PARTITION_KEY_BYTES = 2048  # DynamoDB partition key value limit (the stream id)

# Attribute names of an event item (the DynamoDB layout; sizes count names too).
EVENT_ITEM_ATTRIBUTES = (
    "stream_id",
    "version",
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "data",
    "metadata",
    "hash",
    "prev_hash",
)
_EVENT_ITEM_NAME_BYTES = sum(len(name) for name in EVENT_ITEM_ATTRIBUTES)
_HASH_BYTES = 2 * 64  # hash and prev_hash: hex SHA-256


def number_size(value: int) -> int:
    """DynamoDB's size of a number: 1 byte per two significant digits + 1 (rounded up, so safe)."""
    digits = str(abs(value)).strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def item_size(attributes: Mapping[str, str | int | None]) -> int:
    """Size of a flat item by DynamoDB's rules: UTF-8 bytes of names and string values, numbers
    as :func:`number_size`. ``None`` values are attributes that will not be written."""
    total = 0
    for name, value in attributes.items():
        if value is None:
            continue
        total += len(name.encode())
        if isinstance(value, int):
            total += number_size(value)
        else:
            total += len(value.encode())
    return total


class EventStoreError(Exception):
    """Base class of the store's errors."""


class ConcurrencyError(EventStoreError):
    """The stream is not at the expected version. ``current_version`` says where it is."""

    def __init__(self, stream_id: str, expected_version: int, current_version: int):
        super().__init__(
            f"stream {stream_id!r} is at version {current_version}, expected {expected_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.current_version = current_version


class TransactionConflictError(EventStoreError):
    """DynamoDB cancelled the append because another transaction was using one of its items
    at that moment (``TransactionConflict``), though the stream is still at the expected
    version: nothing was written and nothing was decided against the caller. Transient: retry."""

    def __init__(self, stream_id: str, version: int):
        super().__init__(f"append to {stream_id!r} at version {version} collided with another transaction")
        self.stream_id = stream_id
        self.version = version


class IdempotencyKeyReuseError(EventStoreError):
    """The idempotency key was already used for a different command."""

    def __init__(self, key: str):
        super().__init__(f"idempotency key {key!r} was already used with a different request")
        self.key = key


class EventTooLargeError(EventStoreError):
    """An event (or the whole append) exceeds what DynamoDB can store; nothing was written."""


class TooManyEventsError(EventStoreError):
    """More events in one append than one transaction can hold; nothing was written."""


class AnchorMismatchError(EventStoreError):
    """A fold was asked to start at an event (a snapshot's) the store does not hold with that hash."""

    def __init__(self, stream_id: str, version: int, reason: str):
        super().__init__(f"stream {stream_id!r} has no event {version} with the expected hash: {reason}")
        self.stream_id = stream_id
        self.version = version


@dataclass(frozen=True, slots=True)
class Head:
    """The newest event a store instance has seen of a stream (read or written by itself)."""

    version: int
    hash: str
    occurred_at: str


GENESIS_HEAD = Head(0, GENESIS, "")


class CorruptEventError(EventStoreError):
    """A stored item cannot be decoded. Names the stream and version so an operator can look."""

    def __init__(self, stream_id: str, version: int | None, reason: str):
        super().__init__(f"corrupt event in stream {stream_id!r} at version {version}: {reason}")
        self.stream_id = stream_id
        self.version = version


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What a repeat of an idempotent command needs to answer exactly as the first time."""

    key: str
    fingerprint: str
    stream_id: str
    first_version: int
    last_version: int
    answer: Mapping[str, Any] | None
    created_at: str


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream_id: str
    first_version: int
    last_version: int
    events: tuple[EventEnvelope, ...] = ()
    replayed: bool = False  # True: an idempotent repeat; nothing was written
    answer: Mapping[str, Any] | None = None

    @property
    def version(self) -> int:
        return self.last_version


@dataclass(slots=True)
class EncodedEvent:
    """An event ready for an adapter: ids, timestamps and compact JSON fixed before writing."""

    event_id: str
    version: int
    type: str
    schema_version: int
    occurred_at: str
    data_json: str
    metadata_json: str
    envelope: EventEnvelope = field(repr=False)
    prev_hash: str = GENESIS
    hash: str = ""

    def item_size(self, stream_id: str) -> int:
        """Exact size of this event's DynamoDB item (see :func:`item_size`)."""
        return (
            _EVENT_ITEM_NAME_BYTES
            + len(stream_id.encode())
            + number_size(self.version)
            + len(self.event_id.encode())
            + len(self.type.encode())
            + number_size(self.schema_version)
            + len(self.occurred_at.encode())
            + len(self.data_json.encode())
            + len(self.metadata_json.encode())
            + _HASH_BYTES
        )


_REGISTRY_ERRORS = (UnknownEventTypeError, SchemaVersionError, UpcasterMissingError)


def metadata_from_json(raw: str | None) -> EventMetadata:
    if not raw or raw == "{}":
        return EventMetadata()
    parsed = json.loads(raw)
    return EventMetadata(
        parsed.get("correlation_id"), parsed.get("causation_id"), parsed.get("actor"), parsed.get("command_id")
    )


def decode_envelope(
    registry: EventRegistry,
    event_id: str,
    stream_id: str,
    version: int,
    type_name: str,
    schema_version: int,
    occurred_at: str,
    data_json: str,
    metadata_json: str | None,
    hash: str | None = None,
    prev_hash: str | None = None,
) -> EventEnvelope:
    """Stored fields -> envelope with the current-schema payload (upcast on the way).

    Undecodable data raises CorruptEventError naming stream and version; registry errors
    (unknown type, newer schema, missing upcaster) keep their type and get a note naming them.
    """
    try:
        payload = registry.decode(type_name, schema_version, data_json)
        metadata = metadata_from_json(metadata_json)
    except _REGISTRY_ERRORS as exc:
        exc.add_note(f"stream {stream_id!r}, version {version}")
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # bad JSON, failed validation
        raise CorruptEventError(stream_id, version, f"{type_name} v{schema_version}: {exc}") from exc
    return EventEnvelope(
        event_id, stream_id, version, type_name, schema_version, occurred_at, payload, metadata, hash, prev_hash
    )


def decode_payload(
    registry: EventRegistry,
    stream_id: str,
    version: int,
    type_name: str,
    schema_version: int,
    data_json: str,
) -> Any:
    """Stored payload -> current model, with :func:`decode_envelope`'s errors (for folds, which
    need no envelope)."""
    try:
        return registry.decode(type_name, schema_version, data_json)
    except _REGISTRY_ERRORS as exc:
        exc.add_note(f"stream {stream_id!r}, version {version}")
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # bad JSON, failed validation
        raise CorruptEventError(stream_id, version, f"{type_name} v{schema_version}: {exc}") from exc


def fingerprint_of(payload: Any) -> str:
    """Stable hash of a request, to tell a true repeat from a reused key."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class EventStore(ABC):
    """Append-only streams of events, versions contiguous from 1.

    ``append`` is all-or-nothing: either every event (and the idempotency marker) is stored, or
    nothing is and an error says why.
    """

    def __init__(self, registry: EventRegistry, *, head_cache_size: int = 4096):
        self.registry = registry
        self.head_cache_size = head_cache_size
        self._heads: OrderedDict[str, Head] = OrderedDict()
        self._heads_lock = threading.Lock()

    # -- heads: what this instance has itself seen of each stream -----------------------------
    def _learn(self, stream_id: str, version: int, hash: str | None, occurred_at: str | None) -> None:
        """Remember the newest event seen of a stream (from a read or a write of this instance).

        Only events really read or written get here, so an append that starts from a known head
        can never leave a gap (docs/event-store.md, "Contiguity")."""
        if not hash or self.head_cache_size <= 0:
            return
        with self._heads_lock:
            known = self._heads.get(stream_id)
            if known is None or known.version <= version:
                self._heads[stream_id] = Head(version, hash, occurred_at or "")
                self._heads.move_to_end(stream_id)
                while len(self._heads) > self.head_cache_size:
                    self._heads.popitem(last=False)

    def known_head(self, stream_id: str) -> Head | None:
        """The newest event this instance has seen of the stream, if any."""
        with self._heads_lock:
            return self._heads.get(stream_id)

    @abstractmethod
    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int,
        idempotency_key: str | None = None,
        *,
        fingerprint: str = "",
        answer: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Append ``events`` at ``expected_version + 1..``.

        ``expected_version`` beyond the stream's head is a ConcurrencyError in every store: no
        store can write a gap. (The DynamoDB adapter chains the new event to the head it has
        itself read or written; when it knows no head at ``expected_version`` it reads it first.)

        Raises ConcurrencyError (with the current version) if the stream moved on. With an
        ``idempotency_key``: a repeat (same key, same ``fingerprint``) returns the first result
        (``replayed=True``, the stored ``answer``) and writes nothing; same key, other fingerprint
        raises IdempotencyKeyReuseError.
        """

    @abstractmethod
    def read(
        self,
        stream_id: str,
        after: int = 0,
        up_to_version: int | None = None,
        up_to_time: str | None = None,
    ) -> Iterator[EventEnvelope]:
        """Events with ``after < version <= up_to_version`` in version order, strongly consistent.

        ``up_to_time`` (ISO 8601 UTC) stops at the first event that occurred after it.
        """

    @abstractmethod
    def current_version(self, stream_id: str) -> int:
        """Latest version of the stream (0 if it does not exist)."""

    @abstractmethod
    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        """The marker written with the first success of ``key``, if any."""

    def fold(
        self,
        stream_id: str,
        state: S,
        evolve: Callable[[S, Any], S],
        after: int = 0,
        *,
        anchor: str | None = None,
        verify_links: bool = False,
    ) -> tuple[int, S]:
        """``state`` evolved by every event after ``after``: (last version, state).

        ``anchor``: the hash event ``after`` must have (a snapshot's). The read then starts *at*
        ``after`` (the same one Query) and raises AnchorMismatchError unless that event exists
        with that hash: a snapshot is only trusted if the store still holds what it was taken at.

        The load path needs only payloads, so adapters may override this to skip building
        envelopes and metadata (the DynamoDB store does). Returns ``(after, state)`` when there
        is nothing newer.
        """
        version = after
        events = self.read(stream_id, after=after - 1 if anchor is not None and after > 0 else after)
        if anchor is not None and after > 0:
            first = next(events, None)
            if first is None or first.version != after:
                raise AnchorMismatchError(stream_id, after, "no such event")
            if first.hash != anchor:
                raise AnchorMismatchError(stream_id, after, "hash differs")
        link = anchor if after > 0 else GENESIS
        for envelope in events:
            if verify_links:  # versions contiguous, each prev_hash the hash before it
                if envelope.version != version + 1 or (link is not None and envelope.prev_hash != link):
                    raise CorruptEventError(stream_id, version + 1, "chain broken")
                link = envelope.hash
            state = evolve(state, envelope.data)
            version = envelope.version
        return version, state

    def raw_items(self, stream_id: str) -> Iterable[Mapping[str, Any]]:
        """The stream's stored items, undecoded, in version order (what a verifier reads)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list raw items")

    # -- shared helpers for adapters ----------------------------------------------------------
    def encode_batch(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int, head: Head = GENESIS_HEAD
    ) -> list[EncodedEvent]:
        """Validate limits and encode, chained to ``head`` (the event at ``expected_version``);
        raises before anything is written.

        ``occurred_at`` never goes below the previous event's: "the state at time T" is then the
        same prefix of the stream however it is computed (with or without a snapshot)."""
        from cairn.events import EventEnvelope, new_event_id, utc_now_iso

        if not stream_id:
            raise ValueError("stream_id must not be empty")
        if len(stream_id.encode()) > MAX_PARTITION_KEY_BYTES:
            raise ValueError(f"stream_id is longer than {MAX_PARTITION_KEY_BYTES} bytes")
        if expected_version < 0:
            raise ValueError("expected_version must be >= 0")
        if not events:
            raise ValueError("append needs at least one event")
        if len(events) > MAX_EVENTS_PER_APPEND - 1:
            # one transaction slot is kept for the idempotency marker
            raise TooManyEventsError(
                f"{len(events)} events in one append; at most {MAX_EVENTS_PER_APPEND - 1} fit a transaction"
            )
        now = utc_now_iso()
        encoded: list[EncodedEvent] = []
        total = 0
        prev_hash, last_at = head.hash, head.occurred_at
        for offset, new in enumerate(events, start=1):
            type_name, schema_version, data_json = self.registry.encode(new.data)
            metadata_json = json.dumps(
                {k: v for k, v in new.metadata.to_dict().items() if v is not None}, separators=(",", ":")
            )
            event_id = new.event_id or new_event_id()
            occurred_at = new.occurred_at or now
            if occurred_at < last_at:
                occurred_at = last_at  # clocks differ between instances: time never runs backwards
            version = expected_version + offset
            digest = event_hash(
                stream_id, version, event_id, type_name, schema_version, occurred_at, data_json, metadata_json, prev_hash
            )
            envelope = EventEnvelope(
                event_id=event_id,
                stream_id=stream_id,
                version=version,
                type=type_name,
                schema_version=schema_version,
                occurred_at=occurred_at,
                data=new.data,
                metadata=new.metadata,
                hash=digest,
                prev_hash=prev_hash,
            )
            enc = EncodedEvent(
                event_id,
                version,
                type_name,
                schema_version,
                occurred_at,
                data_json,
                metadata_json,
                envelope,
                prev_hash,
                digest,
            )
            prev_hash, last_at = digest, occurred_at
            size = enc.item_size(stream_id)
            if size > MAX_ITEM_BYTES:
                raise EventTooLargeError(
                    f"{type_name} for stream {stream_id!r} is {size} bytes; a DynamoDB item holds at most {MAX_ITEM_BYTES}"
                )
            total += size
            encoded.append(enc)
        if total > MAX_TRANSACTION_BYTES:
            raise EventTooLargeError(f"append of {total} bytes exceeds the 4 MB transaction limit")
        return encoded
