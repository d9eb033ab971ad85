"""DynamoDB EventStore: one item per event, key (stream_id, version), conditional writes.

Why this shape (details in docs/event-store.md):

- A single event without an idempotency key is one conditional ``PutItem`` (1 WCU per KB);
  several events, or any idempotent append, are one ``TransactWriteItems`` (2 WCU per KB per
  item) so the batch and its idempotency marker land together or not at all.
- The condition ``attribute_not_exists(version)`` on ``(stream_id, expected_version + 1)`` makes
  two writers of the same version impossible; the loser learns the current version from a
  consistent one-item Query (the conflict path only).
- ``data`` and ``metadata`` are compact JSON strings, not DynamoDB maps: smaller items, and
  decoding is one pydantic-core ``model_validate_json`` per event instead of a map-tree walk.
- Reads are strongly consistent Queries, paginated and streamed (a generator).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from cairn.events import EventEnvelope, EventRegistry, NewEvent, normalize_timestamp, utc_now_iso
from cairn.store.base import (
    GENESIS_HEAD,
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_BYTES,
    AnchorMismatchError,
    AppendResult,
    ConcurrencyError,
    CorruptEventError,
    EncodedEvent,
    EventStore,
    EventStoreError,
    EventTooLargeError,
    Head,
    IdempotencyKeyReuseError,
    IdempotencyRecord,
    TransactionConflictError,
    decode_envelope,
    decode_payload,
    item_size,
)

__all__ = [
    "DEFAULT_MARKER_TTL_SECONDS",
    "DynamoDBEventStore",
    "create_tables",
    "envelope_from_item",
    "item_from_encoded",
]

S = TypeVar("S")

DEFAULT_MARKER_TTL_SECONDS = 24 * 3600  # how long a repeat of an idempotent command is recognised

_NOT_TAKEN = "attribute_not_exists(#v)"
_VERSION_NAME = {"#v": "version"}
_MARKER_FREE = "attribute_not_exists(idempotency_key) OR expires_at < :now"
# What ``fold`` reads of an item (names, because ``data`` and ``type`` are reserved words).
# ``hash`` and ``occurred_at`` too: the last item read is the head the next append chains to.
_FOLD_PROJECTION = (
    "#v, #t, #sv, #d, #h, occurred_at",
    {"#v": "version", "#t": "type", "#sv": "schema_version", "#d": "data", "#h": "hash"},
)
_HEAD_PROJECTION = ("#v, #h, occurred_at", {"#v": "version", "#h": "hash"})
# ``fold(verify_links=True)`` also reads ``prev_hash`` to check each item links to the one before.
_FOLD_VERIFY_PROJECTION = (_FOLD_PROJECTION[0] + ", prev_hash", _FOLD_PROJECTION[1])
# Items decoded before folding them: small enough that the objects alive at once stay below the
# garbage collector's first threshold (700), large enough to keep the two loops tight.
_FOLD_CHUNK = 100


# -- item codec --------------------------------------------------------------------------------
def item_from_encoded(stream_id: str, event: EncodedEvent) -> dict[str, dict[str, str]]:
    """The DynamoDB-JSON item of an encoded event (what PutItem sends)."""
    return {
        "stream_id": {"S": stream_id},
        "version": {"N": str(event.version)},
        "event_id": {"S": event.event_id},
        "type": {"S": event.type},
        "schema_version": {"N": str(event.schema_version)},
        "occurred_at": {"S": event.occurred_at},
        "data": {"S": event.data_json},
        "metadata": {"S": event.metadata_json},
        "hash": {"S": event.hash},
        "prev_hash": {"S": event.prev_hash},
    }


def _plain(value: Any, kind: str) -> Any:
    """An attribute either in DynamoDB JSON (``{"S": ...}``) or already deserialized."""
    if isinstance(value, dict):
        return value[kind]
    return value


def envelope_from_item(item: Mapping[str, Any], registry: EventRegistry) -> EventEnvelope:
    """A stored item -> envelope with the current-schema payload (upcast if needed).

    Takes the item as the low-level client returns it (also a stream record's ``NewImage``);
    already-deserialized items (plain values) are accepted too. Undecodable items raise
    CorruptEventError naming stream and version; registry errors (unknown type, newer schema,
    missing upcaster) keep their type and get a note naming stream and version.
    """
    try:
        # fast path: DynamoDB JSON exactly as written by this adapter
        stream_id = item["stream_id"]["S"]
        version = int(item["version"]["N"])
        type_name = item["type"]["S"]
        schema_version = int(item["schema_version"]["N"])
        data = item["data"]["S"]
        event_id = item["event_id"]["S"]
        occurred_at = item["occurred_at"]["S"]
        meta = item.get("metadata")
        metadata_raw = meta["S"] if meta is not None else None
        digest = item.get("hash")
        prev = item.get("prev_hash")
        digest = digest["S"] if digest is not None else None
        prev = prev["S"] if prev is not None else None
    except (KeyError, TypeError, ValueError):
        stream_id, version, type_name, schema_version, data, event_id, occurred_at, metadata_raw = _slow_fields(item)
        digest, prev = _optional(item, "hash"), _optional(item, "prev_hash")
    return decode_envelope(
        registry, event_id, stream_id, version, type_name, schema_version, occurred_at, data, metadata_raw, digest, prev
    )


def _optional(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    try:
        return str(_plain(value, "S")) if value is not None else None
    except (KeyError, TypeError):
        return None


def _slow_fields(item: Mapping[str, Any]) -> tuple[Any, ...]:
    stream_id: str = "?"
    version: int | None = None
    try:
        stream_id = str(_plain(item["stream_id"], "S"))
        version = int(_plain(item["version"], "N"))
        meta = item.get("metadata")
        return (
            stream_id,
            version,
            str(_plain(item["type"], "S")),
            int(_plain(item["schema_version"], "N")),
            str(_plain(item["data"], "S")),
            str(_plain(item["event_id"], "S")),
            str(_plain(item["occurred_at"], "S")),
            _plain(meta, "S") if meta is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptEventError(stream_id, version, f"malformed item ({type(exc).__name__}: {exc})") from exc


def _record_from_item(item: Mapping[str, Any]) -> IdempotencyRecord:
    answer = item.get("answer")
    return IdempotencyRecord(
        key=item["idempotency_key"]["S"],
        fingerprint=item.get("fingerprint", {}).get("S", ""),
        stream_id=item["stream_id"]["S"],
        first_version=int(item["first_version"]["N"]),
        last_version=int(item["last_version"]["N"]),
        answer=json.loads(answer["S"]) if answer is not None else None,
        created_at=item.get("created_at", {}).get("S", ""),
    )


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


# -- the store ---------------------------------------------------------------------------------
class DynamoDBEventStore(EventStore):
    """EventStore on DynamoDB. ``client`` is a low-level boto3 DynamoDB client (injected).

    ``page_size`` caps items per Query page (None: DynamoDB's 1 MB pages); tests use it to force
    pagination.
    """

    def __init__(
        self,
        registry: EventRegistry,
        client: Any,
        events_table: str,
        idempotency_table: str | None = None,
        marker_ttl_seconds: int = DEFAULT_MARKER_TTL_SECONDS,
        *,
        page_size: int | None = None,
    ):
        super().__init__(registry)
        if marker_ttl_seconds <= 0:
            raise ValueError("marker_ttl_seconds must be positive")
        self.client = client
        self.events_table = events_table
        self.idempotency_table = idempotency_table
        self.marker_ttl_seconds = marker_ttl_seconds
        self.page_size = page_size

    # -- append ---------------------------------------------------------------------------------
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
        head = self._head_at(stream_id, expected_version, idempotency_key, fingerprint)
        if isinstance(head, AppendResult):
            return head  # an idempotent repeat noticed while looking for the head
        encoded = self.encode_batch(stream_id, events, expected_version, head)
        items = [item_from_encoded(stream_id, e) for e in encoded]
        if idempotency_key is None and len(items) == 1:
            self._put_one(stream_id, expected_version, items[0])
        else:
            marker = None
            if idempotency_key is not None:
                marker = self._marker(idempotency_key, fingerprint, stream_id, encoded, answer)
                total = sum(e.item_size(stream_id) for e in encoded) + item_size(_flat(marker))
                if total > MAX_TRANSACTION_BYTES:
                    raise EventTooLargeError(f"append of {total} bytes exceeds the 4 MB transaction limit")
            replay = self._transact(stream_id, expected_version, items, idempotency_key, marker, fingerprint)
            if replay is not None:
                return replay
        last = encoded[-1]
        self._learn(stream_id, last.version, last.hash, last.occurred_at)
        return AppendResult(
            stream_id,
            encoded[0].version,
            encoded[-1].version,
            tuple(e.envelope for e in encoded),
            replayed=False,
            answer=answer,
        )

    def _head_at(
        self, stream_id: str, expected_version: int, key: str | None, fingerprint: str
    ) -> Head | AppendResult:
        """The event at ``expected_version`` to chain to: known (warm: no round trip) or read.

        A head this instance has not seen itself is read (one consistent Query of one item);
        a stream whose head is not ``expected_version`` is a conflict (beyond the head: refused,
        so no gap is ever written) — after checking the idempotency key, so a repeat still
        answers as the first time."""
        if expected_version <= 0:
            return GENESIS_HEAD  # version 1 is conditional on its own absence; negatives fail in encode
        known = self.known_head(stream_id)
        if known is not None and known.version == expected_version:
            return known
        head = self._read_head(stream_id)
        if head.version != expected_version:
            if key is not None:
                record = self.get_idempotency_record(key)
                if record is not None:
                    if record.fingerprint != fingerprint:
                        raise IdempotencyKeyReuseError(key)
                    return AppendResult(
                        record.stream_id, record.first_version, record.last_version, (), True, record.answer
                    )
            raise ConcurrencyError(stream_id, expected_version, head.version)
        if not head.hash:
            raise CorruptEventError(stream_id, head.version, "event has no hash (written before the chain)")
        return head

    def _read_head(self, stream_id: str) -> Head:
        """The stream's newest event (version, hash, occurred_at): one consistent Query."""
        names_projection, names = _HEAD_PROJECTION
        page = self.client.query(
            TableName=self.events_table,
            KeyConditionExpression="stream_id = :s",
            ExpressionAttributeValues={":s": {"S": stream_id}},
            ExpressionAttributeNames=names,
            ProjectionExpression=names_projection,
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items") or []
        if not items:
            return GENESIS_HEAD
        item = items[0]
        version = int(item["version"]["N"])
        digest = item.get("hash", {}).get("S", "")
        occurred_at = item.get("occurred_at", {}).get("S", "")
        self._learn(stream_id, version, digest, occurred_at)
        return Head(version, digest, occurred_at)

    def _put_one(self, stream_id: str, expected_version: int, item: dict[str, Any]) -> None:
        try:
            self.client.put_item(
                TableName=self.events_table,
                Item=item,
                ConditionExpression=_NOT_TAKEN,
                ExpressionAttributeNames=_VERSION_NAME,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            existing = exc.response.get("Item")
            if existing is not None and existing.get("event_id") == item["event_id"]:
                # the SDK retried a write whose first attempt landed (response lost): it is ours
                return
            raise self._conflict(stream_id, expected_version) from None

    def _marker(
        self,
        key: str,
        fingerprint: str,
        stream_id: str,
        encoded: Sequence[EncodedEvent],
        answer: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        if self.idempotency_table is None:
            raise ValueError("an idempotency key needs a store configured with idempotency_table")
        if not key:
            raise ValueError("idempotency_key must not be empty")
        marker: dict[str, Any] = {
            "idempotency_key": {"S": key},
            "fingerprint": {"S": fingerprint},
            "stream_id": {"S": stream_id},
            "first_version": {"N": str(encoded[0].version)},
            "last_version": {"N": str(encoded[-1].version)},
            "created_at": {"S": utc_now_iso()},
            "expires_at": {"N": str(int(time.time()) + self.marker_ttl_seconds)},
        }
        if answer is not None:
            try:
                marker["answer"] = {"S": json.dumps(answer, separators=(",", ":"), allow_nan=False)}
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the idempotent answer must be JSON-ready: {exc}") from exc
        size = item_size(_flat(marker))
        if size > MAX_ITEM_BYTES:
            raise EventTooLargeError(f"idempotency marker of {size} bytes exceeds the DynamoDB item limit")
        return marker

    def _transact(
        self,
        stream_id: str,
        expected_version: int,
        items: list[dict[str, Any]],
        key: str | None,
        marker: dict[str, Any] | None,
        fingerprint: str,
    ) -> AppendResult | None:
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.events_table,
                    "Item": item,
                    "ConditionExpression": _NOT_TAKEN,
                    "ExpressionAttributeNames": _VERSION_NAME,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for item in items
        ]
        if marker is not None:
            ops.append(
                {
                    "Put": {
                        "TableName": self.idempotency_table,
                        "Item": marker,
                        "ConditionExpression": _MARKER_FREE,
                        "ExpressionAttributeValues": {":now": {"N": str(int(time.time()))}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        try:
            # The token makes an SDK retry of a transaction that already committed succeed
            # instead of failing on its own writes (DynamoDB keeps tokens for 10 minutes).
            self.client.transact_write_items(TransactItems=ops, ClientRequestToken=str(uuid.uuid4()))
            return None
        except ClientError as exc:
            if _error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
        codes = [r.get("Code", "None") for r in reasons]
        if codes and codes[0] == "ConditionalCheckFailed":
            existing = reasons[0].get("Item")
            if existing is not None and existing.get("event_id") == items[0]["event_id"]:
                # the SDK retried a transaction that had committed (the token covers this on
                # DynamoDB; checked here too): event ids are unique, so these writes are ours
                return None
        if marker is not None and key is not None and len(codes) == len(ops) and codes[-1] == "ConditionalCheckFailed":
            existing = reasons[-1].get("Item")
            record = _record_from_item(existing) if existing else self.get_idempotency_record(key)
            if record is not None:
                if record.fingerprint != fingerprint:
                    raise IdempotencyKeyReuseError(key)
                return AppendResult(
                    record.stream_id,
                    record.first_version,
                    record.last_version,
                    (),
                    replayed=True,
                    answer=record.answer,
                )
            # the marker expired between the failed condition and our read: a conflict, retry
            raise self._conflict(stream_id, expected_version)
        if "ConditionalCheckFailed" in codes:
            raise self._conflict(stream_id, expected_version) from None
        if "TransactionConflict" in codes:
            # another transaction held one of our items: a version mismatch only if the stream moved
            conflict = self._conflict(stream_id, expected_version)
            if conflict.current_version != expected_version:
                raise conflict from None
            raise TransactionConflictError(stream_id, expected_version) from None
        raise EventStoreError(f"append to {stream_id!r} cancelled: {', '.join(codes) or 'no reason given'}")

    def _conflict(self, stream_id: str, expected_version: int) -> ConcurrencyError:
        current = self.current_version(stream_id)
        return ConcurrencyError(stream_id, expected_version, current)

    # -- read -----------------------------------------------------------------------------------
    def read(
        self,
        stream_id: str,
        after: int = 0,
        up_to_version: int | None = None,
        up_to_time: str | None = None,
    ) -> Iterator[EventEnvelope]:
        if up_to_time is not None:
            up_to_time = normalize_timestamp(up_to_time)
        if up_to_version is not None and up_to_version <= after:
            return
        values: dict[str, Any] = {":s": {"S": stream_id}, ":lo": {"N": str(after + 1)}}
        if up_to_version is None:
            condition = "stream_id = :s AND #v >= :lo"
        else:
            condition = "stream_id = :s AND #v BETWEEN :lo AND :hi"
            values[":hi"] = {"N": str(up_to_version)}
        registry = self.registry
        envelope = None
        for item in self._query_items(condition, values):
            if up_to_time is not None:
                at = item.get("occurred_at")
                if at is not None and _plain(at, "S") > up_to_time:
                    return  # decided on the raw attribute: later items are never decoded
            envelope = envelope_from_item(item, registry)
            yield envelope
        if envelope is not None:
            self._learn(stream_id, envelope.version, envelope.hash, envelope.occurred_at)

    def _query_items(self, condition: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for items in self._query_pages(condition, values):
            yield from items

    def _query_pages(
        self, condition: str, values: dict[str, Any], *, projection: tuple[str, dict[str, str]] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        request: dict[str, Any] = {
            "TableName": self.events_table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": _VERSION_NAME,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if projection is not None:
            request["ProjectionExpression"], request["ExpressionAttributeNames"] = projection
        if self.page_size:
            request["Limit"] = self.page_size
        while True:
            page = self.client.query(**request)
            items = page.get("Items")
            if items:
                yield items
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

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
        """The load path: payloads only. The Query asks for the four attributes a fold needs
        (version, type, schema version, data), so event ids, timestamps and metadata are neither
        transferred nor parsed by botocore (read capacity is the same: it counts whole items).

        Events are decoded a chunk at a time in one list comprehension, with a decoder looked up
        by (schema version, type) as stored: the registry's bound pydantic-core validator for the
        current version, the registry's upcasting decode for older ones. Then the chunk is
        folded: two tight loops are faster than alternating decode and evolve per event, and
        small chunks keep few objects alive, so the garbage collector does not run
        (docs/benchmarks.md). A chunk the fast path cannot decode is decoded again item by item,
        which raises the precise error naming stream and version. Versions are parsed once per page.

        With an ``anchor`` (a snapshot's hash) the Query starts *at* ``after`` and the first item
        must be that event with that hash (AnchorMismatchError otherwise): verifying a snapshot
        costs no extra round trip. The last item read becomes this instance's known head.

        ``verify_links``: also check the chain's structure as it is read — versions contiguous,
        every ``prev_hash`` equal to the stored hash before it (from the anchor, or the genesis
        value from version 1) — raising CorruptEventError at the first break. Content is not
        re-hashed here (``cairn.integrity`` does that: verification routes, ``make verify``).
        """
        version = after
        registry = self.registry
        by_version: dict[str, dict[str, Callable[[str], Any]]] = {}
        for name, (number, decode) in registry.decoders().items():
            by_version.setdefault(str(number), {})[name] = decode
            for older in range(1, number):
                by_version.setdefault(str(older), {})[name] = partial(registry.decode, name, older)
        anchored = anchor is not None and after > 0
        values = {":s": {"S": stream_id}, ":lo": {"N": str(after if anchored else after + 1)}}
        last: dict[str, Any] | None = None
        link: str | None = anchor if after > 0 else GENESIS_HEAD.hash
        expected = after + 1
        projection = _FOLD_VERIFY_PROJECTION if verify_links else _FOLD_PROJECTION
        for page in self._query_pages("stream_id = :s AND #v >= :lo", values, projection=projection):
            if anchored:
                anchored = False
                first = page[0]
                if first.get("version", {}).get("N") != str(after):
                    raise AnchorMismatchError(stream_id, after, "no such event")
                if first.get("hash", {}).get("S") != anchor:
                    raise AnchorMismatchError(stream_id, after, "hash differs")
                last = first
                page = page[1:]
                if not page:
                    continue
            last = page[-1]
            if verify_links:
                link = _check_links(stream_id, page, expected, link)
                expected += len(page)
            for start in range(0, len(page), _FOLD_CHUNK):
                items = page[start : start + _FOLD_CHUNK]
                try:
                    payloads = [
                        by_version[item["schema_version"]["N"]][item["type"]["S"]](item["data"]["S"])
                        for item in items
                    ]
                except Exception:
                    payloads = [self._payload_or_raise(stream_id, item) for item in items]
                for payload in payloads:
                    state = evolve(state, payload)
            try:
                version = int(page[-1]["version"]["N"])
            except (KeyError, TypeError, ValueError):
                self._payload_or_raise(stream_id, page[-1])
                raise
        if anchored:
            raise AnchorMismatchError(stream_id, after, "no such event")
        if last is not None:
            self._learn(stream_id, int(last["version"]["N"]), last.get("hash", {}).get("S"), last.get("occurred_at", {}).get("S"))
        return version, state

    def _payload_or_raise(self, stream_id: str, item: Mapping[str, Any]) -> Any:
        """``fold``'s slow path for one item: the payload, or the error ``read`` would raise for it
        (CorruptEventError naming stream and version; registry errors with a note naming them).
        Takes DynamoDB JSON or plain values, as ``envelope_from_item`` does."""
        version: int | None = None
        try:
            version = int(_plain(item["version"], "N"))
            type_name = str(_plain(item["type"], "S"))
            schema_version = int(_plain(item["schema_version"], "N"))
            data = str(_plain(item["data"], "S"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptEventError(stream_id, version, f"malformed item ({type(exc).__name__}: {exc})") from exc
        return decode_payload(self.registry, stream_id, version, type_name, schema_version, data)

    def read_items(self, stream_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """Raw items of a stream after ``after`` (DynamoDB JSON), for tools that decode later."""
        values = {":s": {"S": stream_id}, ":lo": {"N": str(after + 1)}}
        return self._query_items("stream_id = :s AND #v >= :lo", values)

    def raw_items(self, stream_id: str) -> Iterator[dict[str, Any]]:
        return self.read_items(stream_id)

    def envelope_from_item(self, item: Mapping[str, Any]) -> EventEnvelope:
        """Decode one stored item (or stream ``NewImage``) with this store's registry."""
        return envelope_from_item(item, self.registry)

    def current_version(self, stream_id: str) -> int:
        return self._read_head(stream_id).version

    def get_idempotency_record(self, key: str) -> IdempotencyRecord | None:
        if self.idempotency_table is None:
            return None
        response = self.client.get_item(
            TableName=self.idempotency_table,
            Key={"idempotency_key": {"S": key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        expires = item.get("expires_at")
        if expires is not None and int(expires["N"]) < int(time.time()):
            return None  # TTL deletion lags by up to days; an expired marker no longer counts
        return _record_from_item(item)

    # -- whole-table iteration (rebuild tools) ----------------------------------------------------
    def scan_segment(
        self, segment: int, total_segments: int, *, raw: bool = False, consistent: bool = False
    ) -> Iterator[Any]:
        """Every event in one segment of a parallel Scan, in no particular order.

        Run segments ``0..total_segments-1`` in parallel workers to rebuild read models; callers
        group by stream and sort by version. ``raw=True`` yields DynamoDB-JSON items undecoded.
        """
        if not 0 <= segment < total_segments:
            raise ValueError("segment must be in [0, total_segments)")
        request: dict[str, Any] = {"TableName": self.events_table, "ConsistentRead": consistent}
        if total_segments > 1:
            request["Segment"] = segment
            request["TotalSegments"] = total_segments
        if self.page_size:
            request["Limit"] = self.page_size
        registry = self.registry
        while True:
            page = self.client.scan(**request)
            for item in page.get("Items", ()):
                yield item if raw else envelope_from_item(item, registry)
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def scan_all(self, *, raw: bool = False, consistent: bool = False) -> Iterator[Any]:
        """Every event in the table, one segment (see :meth:`scan_segment` for parallel scans)."""
        return self.scan_segment(0, 1, raw=raw, consistent=consistent)


def _check_links(stream_id: str, page: list[dict[str, Any]], expected: int, link: str | None) -> str:
    """Versions ``expected..`` without a hole, each ``prev_hash`` the hash before it; the last hash.

    Whole-page comparisons (two list comprehensions and two compares), so a verified fold costs
    little more than an unverified one."""
    try:
        contiguous = int(page[0]["version"]["N"]) == expected and int(page[-1]["version"]["N"]) == expected + len(page) - 1
        hashes = [item["hash"]["S"] for item in page]
        prevs = [item["prev_hash"]["S"] for item in page]
    except (KeyError, TypeError, ValueError):
        contiguous, hashes, prevs = False, [], []
    if contiguous and hashes and (link is None or prevs[0] == link) and prevs[1:] == hashes[:-1]:
        return hashes[-1]
    previous = link
    for offset, item in enumerate(page):  # slow path: name the first bad version
        version = expected + offset
        try:
            if int(item["version"]["N"]) != version:
                raise CorruptEventError(stream_id, version, "chain broken: version missing")
            if previous is not None and item["prev_hash"]["S"] != previous:
                raise CorruptEventError(stream_id, version, "chain broken: prev_hash does not link")
            previous = item["hash"]["S"]
        except (KeyError, TypeError, ValueError):
            raise CorruptEventError(stream_id, version, "chain broken: no hash") from None
    raise CorruptEventError(stream_id, expected, "chain broken")  # pragma: no cover - found above


def _flat(item: Mapping[str, Mapping[str, str]]) -> dict[str, str | int]:
    """DynamoDB-JSON flat item -> {name: str | int} for :func:`cairn.store.base.item_size`."""
    flat: dict[str, str | int] = {}
    for name, value in item.items():
        if "N" in value:
            flat[name] = int(value["N"])
        else:
            flat[name] = value["S"]
    return flat


def create_tables(
    client: Any,
    events_table: str,
    idempotency_table: str | None = None,
    *,
    stream: bool = True,
) -> None:
    """Create the tables with the production key layout (tests, benchmarks and tools).

    Deployed tables come from the CDK ``EventStore`` construct; this mirrors its keys.
    """
    spec: dict[str, Any] = {
        "TableName": events_table,
        "KeySchema": [
            {"AttributeName": "stream_id", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "stream_id", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream:
        spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    client.create_table(**spec)
    if idempotency_table is not None:
        client.create_table(
            TableName=idempotency_table,
            KeySchema=[{"AttributeName": "idempotency_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "idempotency_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.update_time_to_live(
            TableName=idempotency_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
