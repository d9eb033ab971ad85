"""In-memory EventStore: same contract as the DynamoDB store, for unit tests and local tools.

Events are kept encoded (compact JSON, as in DynamoDB) and decoded through the registry on
read, so upcasting, Decimal round trips and corrupt-data handling behave as in production.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cairn.events import EventEnvelope, EventRegistry, NewEvent, normalize_timestamp, utc_now_iso
from cairn.store.base import (
    GENESIS_HEAD,
    AppendResult,
    ConcurrencyError,
    EncodedEvent,
    EventStore,
    Head,
    IdempotencyKeyReuseError,
    IdempotencyRecord,
    decode_envelope,
)


class InMemoryEventStore(EventStore):
    def __init__(self, registry: EventRegistry):
        super().__init__(registry)
        self._streams: dict[str, list[EncodedEvent]] = {}
        self._markers: dict[str, IdempotencyRecord] = {}
        self._lock = threading.Lock()

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
        self.encode_batch(stream_id, events, expected_version)  # validate before any conflict check
        if idempotency_key is not None and answer is not None:
            try:  # stored as JSON, like the DynamoDB marker: a repeat gets an equal copy
                answer = json.loads(json.dumps(answer, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the idempotent answer must be JSON-ready: {exc}") from exc
        with self._lock:
            if idempotency_key is not None and idempotency_key in self._markers:
                return self._replay(self._markers[idempotency_key], fingerprint)
            stream = self._streams.setdefault(stream_id, [])
            if len(stream) != expected_version:
                raise ConcurrencyError(stream_id, expected_version, len(stream))
            head = GENESIS_HEAD
            if stream:
                last = stream[-1]
                head = Head(last.version, last.hash, last.occurred_at)
            encoded = self.encode_batch(stream_id, events, expected_version, head)
            envelopes = tuple(e.envelope for e in encoded)
            stream.extend(encoded)
            first, last = encoded[0].version, encoded[-1].version
            if idempotency_key is not None:
                self._markers[idempotency_key] = IdempotencyRecord(
                    key=idempotency_key,
                    fingerprint=fingerprint,
                    stream_id=stream_id,
                    first_version=first,
                    last_version=last,
                    answer=dict(answer) if answer is not None else None,
                    created_at=utc_now_iso(),
                )
        return AppendResult(stream_id, first, last, envelopes, replayed=False, answer=answer)

    @staticmethod
    def _replay(record: IdempotencyRecord, fingerprint: str) -> AppendResult:
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReuseError(record.key)
        return AppendResult(
            record.stream_id, record.first_version, record.last_version, (), replayed=True, answer=record.answer
        )

    def read(
        self,
        stream_id: str,
        after: int = 0,
        up_to_version: int | None = None,
        up_to_time: str | None = None,
    ) -> Iterator[EventEnvelope]:
        if up_to_time is not None:
            up_to_time = normalize_timestamp(up_to_time)
        with self._lock:
            stored = list(self._streams.get(stream_id, ())[after:])
        registry = self.registry
        for event in stored:
            if up_to_version is not None and event.version > up_to_version:
                return
            if up_to_time is not None and event.occurred_at > up_to_time:
                return
            yield decode_envelope(
                registry,
                event.event_id,
                stream_id,
                event.version,
                event.type,
                event.schema_version,
                event.occurred_at,
                event.data_json,
                event.metadata_json,
                event.hash,
                event.prev_hash,
            )

    def current_version(self, stream_id: str) -> int:
        with self._lock:
            return len(self._streams.get(stream_id, ()))

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        with self._lock:
            return self._markers.get(key)

    def raw_items(self, stream_id: str) -> list[dict[str, Any]]:
        """The stream's stored items as plain values (what a verifier reads)."""
        with self._lock:
            stored = list(self._streams.get(stream_id, ()))
        return [
            {
                "stream_id": stream_id,
                "version": e.version,
                "event_id": e.event_id,
                "type": e.type,
                "schema_version": e.schema_version,
                "occurred_at": e.occurred_at,
                "data": e.data_json,
                "metadata": e.metadata_json,
                "hash": e.hash,
                "prev_hash": e.prev_hash,
            }
            for e in stored
        ]

    def all_stream_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._streams)
