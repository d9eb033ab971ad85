"""The local cloud: a moto server in this process, and the template's resources created on it.

Why a middleware around moto: DynamoDB guarantees per-item atomicity of conditional writes;
moto checks a condition and then stores the item without a lock, so two concurrent requests can
both pass ``attribute_not_exists`` and one event silently overwrites the other. The local runtime
serializes every DynamoDB and DynamoDB Streams request (they are in-memory operations of a
millisecond), which gives DynamoDB's guarantee; ``tests/local/test_cloud.py`` shows the race
without the lock and its absence with it. The same middleware injects throttling for chaos tests.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local.template import REGION, Resource, Template

__all__ = [
    "LocalCloud",
    "MotoServer",
    "RUNTIME_USER_AGENT",
    "STREAM_ACTIVITY",
    "StreamActivity",
    "StreamRetention",
    "TTL_IDENTITY",
    "TimeToLive",
    "aws_client",
    "moto_own",
    "stream_bounds",
    "table_of_stream",
]

log = logging.getLogger("cairn.local")

RUNTIME_USER_AGENT = "cairn-local-runtime"  # marks the runtime's own calls (exempt from chaos)

_DYNAMO_PREFIXES = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")
_THROTTLE_BODY = {
    "DynamoDB_20120810": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded (local chaos)",
    ),
}


def aws_client(service: str, endpoint_url: str, **config: Any) -> Any:
    """A boto3 client for the local cloud, tagged as the runtime's own (never throttled by chaos)."""
    cfg = Config(
        user_agent_extra=RUNTIME_USER_AGENT,
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=32,
        **config,
    )
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=cfg,
    )


@dataclass
class MotoChaos:
    """Fault injection at the AWS API: ``throttle`` is the probability a DynamoDB call is refused."""

    throttle: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    throttled: int = 0


@dataclass
class StreamRetention:
    """What the local cloud keeps of a table's stream, so a long session stays flat.

    moto appends every stream record to one list forever and keeps every shard iterator.
    DynamoDB keeps records 24 hours and expires an iterator 15 minutes after handing it out.
    Here a shard drops the records every reader has passed (the lowest position of the
    iterators handed out and not used yet) beyond the newest ``keep_passed`` of them, and the
    records older than ``retention_s``; a shard nobody ever read keeps its records for
    ``retention_s``. The passed records kept are what an on-failure destination points at: a
    discarded batch stays readable for ``make redrive`` (as the Kinesis hub keeps its own). A used iterator is kept
    ``used_iterator_ttl_s`` for a retried GetRecords; one that points at trimmed records
    gets ``TrimmedDataAccessException``, as on AWS."""

    retention_s: float = 24 * 3600.0
    iterator_ttl_s: float = 15 * 60.0
    used_iterator_ttl_s: float = 60.0
    keep_passed: int = 1000
    interval_s: float = 1.0
    trimmed: int = 0
    _last: float = 0.0

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s

    def trim(self, now: float | None = None) -> int:
        """Drop what no reader needs; returns the number of records dropped. Call under the lock."""
        import datetime as dt

        from moto.core.utils import utcnow
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        now = time.monotonic() if now is None else now
        self._last = now
        floors: dict[int, int] = {}
        for _account, regions in list(dynamodbstreams_backends.items()):
            for _region, backend in list(regions.items()):
                iterators = backend.shard_iterators
                for arn, it in list(iterators.items()):
                    seen = it.__dict__.setdefault("_cairn_seen", now)
                    used = it.__dict__.get("_cairn_used", False)
                    if now - seen > (self.used_iterator_ttl_s if used else self.iterator_ttl_s):
                        iterators.pop(arn, None)
                        continue
                    shard = it.stream_shard
                    shard.__dict__["_cairn_read"] = True
                    if not used:
                        floors[id(shard)] = min(floors.get(id(shard), it.sequence_number), it.sequence_number)
        cutoff = utcnow() - dt.timedelta(seconds=self.retention_s)
        dropped = 0
        for _account, regions in list(dynamodb_backends.items()):
            for _region, backend in list(regions.items()):
                for table in list(backend.tables.values()):
                    shard = table.stream_shard
                    if shard is None or not shard.items:
                        continue
                    items = shard.items
                    n = 0
                    if shard.__dict__.get("_cairn_read"):
                        head = shard.starting_sequence_number + len(items)
                        passed = max(0, floors.get(id(shard), head) - shard.starting_sequence_number)
                        n = min(len(items), max(0, passed - self.keep_passed))
                    while n < len(items) and items[n].record["dynamodb"]["ApproximateCreationDateTime"] < cutoff:
                        n += 1
                    if n:
                        del items[:n]
                        shard.starting_sequence_number += n
                        dropped += n
        self.trimmed += dropped
        return dropped


# who a TTL deletion's stream record names (the Streams API's Identity; Lambda hands it on as
# ``{"type": "Service", "principalId": "dynamodb.amazonaws.com"}``)
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}


@dataclass
class TimeToLive:
    """DynamoDB's Time to Live, locally: moto records a table's ``TimeToLiveSpecification`` and
    never deletes anything, so idempotency records, inventory holds, payment intents and
    WebSocket connections would stay for ever in a long ``make dev``.

    As DynamoDB's background sweep does: an item whose TTL attribute is a Number of epoch seconds
    in the past (but not more than five years past: DynamoDB ignores those) is deleted; a table
    with a stream gets a ``REMOVE`` record whose ``userIdentity`` is the TTL service's
    (``TTL_IDENTITY``). Expired items stay readable until swept (DynamoDB: within days; here
    within ``interval_s``), which the code already allows for (``expires_at < :now``). Each sweep
    looks at no more than ``per_sweep`` items, resuming where the last one stopped, so its cost
    under the lock does not grow with the table."""

    interval_s: float = 5.0
    per_sweep: int = 2000
    deleted: int = 0
    _last: float = 0.0
    _pass: list[tuple[Any, str, Any, list[Any]]] = field(default_factory=list)  # (backend, name, table, keys left)

    MAX_AGE_S = 5 * 365 * 24 * 3600

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s

    def sweep(self, now: float | None = None) -> int:
        """Delete the expired items of the tables with TTL enabled; returns how many. Call under
        the lock.

        Sweeps walk one pass at a time: a pass lists every TTL table's partition keys once, and
        the next pass starts only when this one is done, so a large table (the idempotency
        records of a long session) cannot starve the ones after it."""
        from moto.dynamodb.models import dynamodb_backends

        self._last = time.monotonic()
        wall = time.time() if now is None else now
        if not self._pass:
            for _account, regions in list(dynamodb_backends.items()):
                for _region, backend in list(regions.items()):
                    for name, table in list(backend.tables.items()):
                        if self._attribute(table):
                            self._pass.append((backend, name, table, list(table.items.keys())))
            self._pass.reverse()  # popped from the end: tables in creation order
        budget = self.per_sweep
        deleted = 0
        while self._pass and budget > 0:
            backend, name, table, pending = self._pass[-1]
            attribute = self._attribute(table) if backend.tables.get(name) is table else None
            while attribute and pending and budget > 0:
                hash_key = pending.pop()
                partition = table.items.get(hash_key)
                if partition is None:
                    continue
                items = list(partition.values()) if table.range_key_attr else [partition]
                budget -= len(items)
                for item in items:
                    if self._expired(item, attribute, wall):
                        deleted += self._delete(table, item)
            if not attribute or not pending:
                self._pass.pop()
        self.deleted += deleted
        return deleted

    @staticmethod
    def _attribute(table: Any) -> str | None:
        ttl = table.ttl or {}
        return ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None

    def _expired(self, item: Any, attribute: str, now: float) -> bool:
        value = item.attrs.get(attribute)
        if value is None or value.type != "N":
            return False
        try:
            at = float(value.value)
        except (TypeError, ValueError):
            return False
        return at < now and now - at <= self.MAX_AGE_S

    @staticmethod
    def _delete(table: Any, item: Any) -> int:
        shard = table.stream_shard
        before = len(shard.items) if shard is not None else 0
        previous, _scope.active = getattr(_scope, "active", False), True
        try:
            gone = table.delete_item(item.hash_key, item.range_key if table.range_key_attr else None)
        finally:
            _scope.active = previous
        if gone is None:
            return 0
        if shard is not None and len(shard.items) > before:
            shard.items[-1].record["userIdentity"] = dict(TTL_IDENTITY)
        return 1


def stream_bounds(stream_arn: str) -> tuple[int, int] | None:
    """(oldest retained, next) sequence numbers of a stream served by this process's local
    cloud, or None when its table is not here."""
    from moto.dynamodb.models import dynamodb_backends

    parts = stream_arn.split(":")
    if len(parts) < 6 or "/" not in parts[5]:
        return None
    account, region, table_name = parts[4], parts[3], parts[5].split("/")[1]
    try:
        table = dynamodb_backends[account][region].tables.get(table_name)
    except KeyError:
        return None
    shard = table.stream_shard if table is not None else None
    if shard is None:
        return None
    start = shard.starting_sequence_number
    return start, start + len(shard.items)


class StreamActivity:
    """Wakes the runtime's stream readers when a record is appended to the stream they read.

    They run in this process, beside moto: instead of polling every stream 4x a second while
    nothing happens (with the SQS polls, half a core for an idle ``make dev``), an idle reader
    waits here and is woken by the append (``StreamShard.add``; Kinesis puts, ``local.kinesis``).
    Keyed by a stream's name (the table's for DynamoDB Streams)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq: dict[str, int] = {}

    def seen(self, key: str) -> int:
        with self._cond:
            return self._seq.get(key, 0)

    def bump(self, key: str) -> None:
        with self._cond:
            self._seq[key] = self._seq.get(key, 0) + 1
            self._cond.notify_all()

    def wait(self, key: str, seen: int, timeout: float, stop: threading.Event) -> None:
        """Until ``key`` has an append after ``seen``, ``stop`` is set (see ``wake_all``) or
        ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq.get(key, 0) != seen or stop.is_set(), timeout)

    def wake_all(self) -> None:
        """Let every waiter look at its stop event again."""
        with self._cond:
            self._cond.notify_all()


STREAM_ACTIVITY = StreamActivity()


def table_of_stream(stream_arn: str) -> str:
    """``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`` -> ``<name>``."""
    return stream_arn.split(":table/", 1)[-1].split("/", 1)[0]


class _SerializingMiddleware:
    """WSGI middleware: one lock around DynamoDB (+ Streams); optional throttling chaos."""

    def __init__(self, app: Callable[..., Any], chaos: MotoChaos, serialize: bool = True):
        self.app = app
        self.chaos = chaos
        self.serialize = serialize
        self.lock = threading.RLock()
        self.retention = StreamRetention()
        self.ttl = TimeToLive()
        self.put_events_observers: list[Callable[[dict[str, Any]], None]] = []

    def _put_events(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Let moto deliver (it knows SQS targets) and tell observers (Lambda targets) afterwards."""
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        status: list[str] = []

        def capture(s: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(s)
            return start_response(s, headers, exc_info) if exc_info else start_response(s, headers)

        body = list(self.app(environ, capture))
        if status and status[0].startswith("200"):
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                request = {}
            for observer in self.put_events_observers:
                try:
                    observer(request)
                except Exception:
                    log.exception("EventBridge observer failed")
        return body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == "AWSEvents.PutEvents" and self.put_events_observers:
            return self._put_events(environ, start_response)
        if not target.startswith(_DYNAMO_PREFIXES):
            _scope.active = True
            try:
                return list(self.app(environ, start_response))
            finally:
                _scope.active = False
        agent = environ.get("HTTP_USER_AGENT", "")
        if (
            self.chaos.throttle > 0
            and RUNTIME_USER_AGENT not in agent
            and target.startswith("DynamoDB_20120810.")
            and self.chaos.rng.random() < self.chaos.throttle
        ):
            self.chaos.throttled += 1
            kind, message = _THROTTLE_BODY["DynamoDB_20120810"]
            body = json.dumps({"__type": kind, "message": message}).encode()
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
            )
            return [body]
        _scope.active = True
        try:
            if not self.serialize:
                body = list(self.app(environ, start_response))
            else:
                with self.lock:
                    # The whole response is produced under the lock (moto builds it eagerly).
                    body = list(self.app(environ, start_response))
        finally:
            _scope.active = False
        if self.retention.due():
            with self.lock:
                self.retention.trim()
        if self.ttl.due():
            with self.lock:
                self.ttl.sweep()
        return body


_PATCHED = False
_PATCHED_TX = False
_PATCHED_STREAMS = False
_PATCHED_QUERY = False
_PATCHED_SQS = False
_PATCHED_INSTANCES = False


_scope = threading.local()  # ``active`` while the middleware serves a request of the local cloud


def _in_local_cloud() -> bool:
    """The moto fixes below apply to requests the local cloud serves, not to in-process moto
    of other tests sharing this interpreter (``tests/unit/test_store_moto_atomicity.py`` pins
    moto's own behaviour)."""
    return bool(getattr(_scope, "active", False))


def _stream_head(table: Any) -> int | None:
    shard = table.stream_shard
    return None if shard is None else shard.starting_sequence_number + len(shard.items)


def _transact_with_undo_log(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2's TransactWriteItems, with the rollback done from an undo log.

    moto backs up every table a transaction touches with ``copy.deepcopy`` (once per item of
    the transaction, stream shard included) and, on cancellation, swaps the copies in: the cost
    of every transaction grows with everything ever written (measured in docs/decisions.md),
    and open shard iterators keep reading the discarded table. Here each write first records the
    item it replaces (a copy of that one item, or "absent"); a cancelled transaction puts those
    back in place and cuts the stream records it added. Same checks, same errors, same
    all-or-nothing; the table object and its shard never change identity."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, item before | None)
    heads: dict[int, tuple[Any, int]] = {}  # id(table) -> (table, stream head before)

    def rollback() -> None:
        for table, hash_value, range_value, before in reversed(undo):
            if table.range_key_attr is not None:
                bucket = table.items[hash_value]
                if before is None:
                    bucket.pop(range_value, None)
                else:
                    bucket[range_value] = before
                _index_sync(table, hash_value, range_value, before is not None)
            elif before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before
        for table, head in heads.values():
            shard = table.stream_shard
            if shard is not None:
                del shard.items[max(0, head - shard.starting_sequence_number):]

    target_items: set[tuple[str, str]] = set()
    errors: list[tuple[str | None, str | None, Any]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            rollback()
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            table = backend.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in target_items:
                raise MultipleTransactionsException()
            target_items.add(unique)

            current = backend.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                hash_value, range_value = backend.get_keys_value(table, key)
                heads.setdefault(id(table), (table, _stream_head(table) or 0))
                undo.append((table, hash_value, range_value,
                             copy.deepcopy(current) if current is not None else None))
            if op_type == "Put":
                backend.put_item(table_name, op["Item"], condition_expression=condition_expression,
                                 expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                backend.delete_item(table_name, key, condition_expression=condition_expression,
                                    expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Update":
                backend.update_item(table_name, key, update_expression=op["UpdateExpression"],
                                    condition_expression=condition_expression,
                                    expression_attribute_names=names, expression_attribute_values=values)
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: BLE001 - moto reports any other failure per item too
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


_FLAT_IN_PROCESS = 0  # open ``flat_in_process()`` blocks (the ``aws`` fixture, the reliability World)
_MOTO_OWN = 0  # open ``moto_own()`` blocks


@contextmanager
def flat_in_process() -> Iterator[None]:
    """The undo-log transactions and partition queries for in-process moto too, while open.

    The ``aws`` fixture of tests/conftest.py and tests/reliability's World enter it: moto's own
    rollback swaps a table for its backup (open stream iterators keep reading the discarded one)
    and copies every table a transaction touches, which made the 10k suite quadratic. Inside
    ``moto_own()`` moto's behaviour applies again."""
    global _FLAT_IN_PROCESS
    _flat_transactions()
    _partition_queries()
    _FLAT_IN_PROCESS += 1
    try:
        yield
    finally:
        _FLAT_IN_PROCESS -= 1


@contextmanager
def moto_own() -> Iterator[None]:
    """moto's own TransactWriteItems and Query in this process while open, whatever
    ``flat_in_process`` blocks are open around it (``tests/unit/test_store_moto_atomicity.py``
    pins moto's behaviour). The local cloud's server requests are not affected."""
    global _MOTO_OWN
    _MOTO_OWN += 1
    try:
        yield
    finally:
        _MOTO_OWN -= 1


def _flat() -> bool:
    return _in_local_cloud() or (_FLAT_IN_PROCESS > 0 and _MOTO_OWN == 0)


def _flat_transactions() -> None:
    """Install the undo-log TransactWriteItems for requests served by the local cloud (and in
    ``flat_in_process`` blocks)."""
    global _PATCHED_TX
    if _PATCHED_TX:
        return
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if _flat():
            return _transact_with_undo_log(self, transact_items)
        return original(self, transact_items)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _PATCHED_TX = True


_SORTED = "_cairn_sorted_keys"  # table attribute: partition key -> its sort keys, in order
_LOWER = {">=": "left", "GE": "left", ">": "right", "GT": "right"}
_UPPER = {"<=": "right", "LE": "right", "<": "left", "LT": "left"}


def _sort_key(k: Any) -> Any:
    return k.cast_value


def _sorted_keys(table: Any, hash_key: Any, partition: dict[Any, Any]) -> list[Any]:
    index = table.__dict__.setdefault(_SORTED, {})
    keys = index.get(hash_key)
    if keys is None or len(keys) != len(partition):  # first query of it (or out of step): build
        keys = index[hash_key] = sorted(partition, key=_sort_key)
    return keys


def _index_sync(table: Any, hash_key: Any, range_key: Any, present: bool) -> None:
    """Keep a partition's sorted keys in step with a write (only for partitions queried before)."""
    import bisect

    keys = table.__dict__.get(_SORTED, {}).get(hash_key)
    if keys is None or range_key is None:
        return
    value = range_key.cast_value
    i = bisect.bisect_left(keys, value, key=_sort_key)
    found = i < len(keys) and keys[i].cast_value == value
    if present and not found:
        keys.insert(i, range_key)
    elif not present and found:
        del keys[i]


def _candidates(table: Any, hash_key: Any, partition: dict[Any, Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> list[Any]:
    """The items of a partition a Query can answer with: narrowed by binary search on the sort key
    condition, the exclusive start key and the limit (plus one, so moto still sees there is more),
    so a read costs O(log n + answer), as on DynamoDB, not O(stream)."""
    import bisect

    names = ("range_comparison", "range_objs", "limit", "exclusive_start_key", "scan_index_forward")
    given = dict(zip(names, args[:5], strict=False))
    given.update({k: v for k, v in kwargs.items() if k in names})
    comparison, objs = given.get("range_comparison"), given.get("range_objs") or []
    keys = _sorted_keys(table, hash_key, partition)
    lo, hi = 0, len(keys)

    def at(value: Any, side: str) -> int:
        f = bisect.bisect_left if side == "left" else bisect.bisect_right
        return f(keys, value, key=_sort_key)

    if comparison and objs:
        first = objs[0].cast_value
        if comparison in _LOWER:
            lo = at(first, _LOWER[comparison])
        elif comparison in _UPPER:
            hi = at(first, _UPPER[comparison])
        elif comparison in ("=", "EQ"):
            lo, hi = at(first, "left"), at(first, "right")
        elif comparison == "BETWEEN" and len(objs) > 1:
            lo, hi = at(first, "left"), at(objs[1].cast_value, "right")
    forward = given.get("scan_index_forward", True) is not False
    start = given.get("exclusive_start_key")
    if start and table.range_key_attr in start:
        from moto.dynamodb.models.dynamo_type import DynamoType

        value = DynamoType(start[table.range_key_attr]).cast_value
        if forward:
            lo = max(lo, at(value, "right"))
        else:
            hi = min(hi, at(value, "left"))
    limit = given.get("limit")
    extra = {k for k in kwargs if k not in names and k not in (
        "index_name", "consistent_read", "filter_expression", "hash_key_conditions", "range_key_conditions",
        "projection_expressions")}
    if limit and not extra and hi - lo > limit + 1:
        lo, hi = (lo, lo + limit + 1) if forward else (hi - limit - 1, hi)
    return [partition[k] for k in keys[lo:hi]]


def _partition_queries() -> None:
    """moto answers a Query on a table by sorting every item of the table (``all_items``) and
    keeping those of the partition: each event-store read costs O(table), so a local session
    slows as it is used. For a Query of the table itself (not an index) with its partition key,
    the candidates here are that partition's items; the filtering, sorting, paging and limits
    that follow are moto's own. Index queries (no stored index in moto) still scan."""
    global _PATCHED_QUERY
    if _PATCHED_QUERY:
        return
    from moto.dynamodb.models.table import Table

    original = Table.query
    original_all_items = Table.all_items

    def all_items(self: Any) -> list[Any]:
        only = getattr(_scope, "partition", None)
        if only is not None and only[0] is self:
            return list(only[1])
        return original_all_items(self)

    original_put, original_delete = Table.put_item, Table.delete_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, *args, **kwargs)
        _index_sync(self, item.hash_key, item.range_key, True)
        return item

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        item = original_delete(self, hash_key, range_key)
        if item is not None:
            _index_sync(self, hash_key, range_key, False)
        return item

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if not _flat() or index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key) or {}
        _scope.partition = (self, _candidates(self, hash_key, partition, args, kwargs))
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            _scope.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    _PATCHED_QUERY = True


class _RecentKeys(dict):  # type: ignore[type-arg]
    """The set of moto's SQS ``deleted_messages`` (every receipt handle ever deleted, kept so a
    repeated delete succeeds), remembering only the latest ``cap`` of them."""

    def __init__(self, keys: Iterable[str] = (), cap: int = 10_000):
        super().__init__()
        self.cap = cap
        self.update(keys)

    def update(self, keys: Iterable[str]) -> None:  # type: ignore[override]
        for key in keys:
            self.pop(key, None)
            self[key] = None
        while len(self) > self.cap:
            del self[next(iter(self))]


def _bounded_sqs_deletes() -> None:
    global _PATCHED_SQS
    if _PATCHED_SQS:
        return
    from moto.sqs.models import Queue

    original = Queue.delete_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        if _in_local_cloud() and not isinstance(self.deleted_messages, _RecentKeys):
            self.deleted_messages = _RecentKeys(self.deleted_messages)
        return original(self, receipt_handle)

    Queue.delete_message = delete_message  # type: ignore[method-assign]
    _PATCHED_SQS = True


def _trimmable_streams() -> None:
    """Three small changes to moto's stream classes (harmless outside the local cloud, where
    nothing trims or waits): an iterator remembers it was used, reading before the oldest retained
    record is AWS's ``TrimmedDataAccessException`` rather than an assertion (a 500), and an
    append wakes the readers of its table's stream (``STREAM_ACTIVITY``)."""
    global _PATCHED_STREAMS
    if _PATCHED_STREAMS:
        return
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import ShardIterator

    class TrimmedDataAccessError(JsonRESTError):
        code = 400

        def __init__(self, sequence: int, oldest: int):
            super().__init__("TrimmedDataAccessException",
                             f"sequence number {sequence} is before the oldest record kept ({oldest})")

    original_get = ShardIterator.get
    original_shard_get = StreamShard.get
    original_add = StreamShard.add

    def iterator_get(self: Any, limit: int = 1000) -> dict[str, Any]:
        self._cairn_used = True
        return original_get(self, limit)

    def shard_get(self: Any, start: int, quantity: int) -> list[dict[str, Any]]:
        if start < self.starting_sequence_number:
            raise TrimmedDataAccessError(start, self.starting_sequence_number)
        return original_shard_get(self, start, quantity)

    def shard_add(self: Any, old: Any, new: Any) -> None:
        original_add(self, old, new)
        STREAM_ACTIVITY.bump(self.table.name)

    ShardIterator.get = iterator_get  # type: ignore[method-assign]
    StreamShard.get = shard_get  # type: ignore[method-assign]
    StreamShard.add = shard_add  # type: ignore[method-assign]
    _PATCHED_STREAMS = True


class _WeakInstances:
    """moto's ``instances_tracked`` (a class's list of every instance ever made, for its
    dashboard and its reset) without keeping them alive: weak references, the dead ones dropped
    as the list doubles. Iterating yields the live instances, as the list did."""

    __slots__ = ("_refs", "_prune_at")

    def __init__(self, instances: Iterable[Any] = ()) -> None:
        self._refs: list[weakref.ref[Any]] = []
        self._prune_at = 1024
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        try:
            self._refs.append(weakref.ref(instance))
        except TypeError:  # a class without weak references: not tracked
            return
        if len(self._refs) >= self._prune_at:
            self._refs = [r for r in self._refs if r() is not None]
            self._prune_at = max(1024, 2 * len(self._refs))

    def _live(self) -> list[Any]:
        return [o for o in (r() for r in self._refs) if o is not None]

    def __iter__(self) -> Any:
        return iter(self._live())

    def __len__(self) -> int:
        return len(self._live())


def _untracked_moto_instances() -> None:
    """moto's ``BaseModel.__new__`` appends every model instance to its class's
    ``instances_tracked`` and nothing ever removes it: every item version a write replaced
    (read-model rows, checkpoints, a transaction's undo copies), every stream record the shard
    trimmed, every Kinesis record trimmed, every SQS message deleted, every shard iterator a
    GetRecords handed out stays in memory for the life of the process. The same lists, weak."""
    global _PATCHED_INSTANCES
    if _PATCHED_INSTANCES:
        return
    from moto.core.common_models import BaseModel

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)  # type: ignore[misc]
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, _WeakInstances):
            tracked = _WeakInstances(tracked or ())
            cls.instances_tracked = tracked  # type: ignore[attr-defined]
        tracked.append(instance)
        return instance

    BaseModel.__new__ = staticmethod(__new__)  # type: ignore[assignment, method-assign]
    _PATCHED_INSTANCES = True


def _let_moto_skip_lambda_targets() -> None:
    """moto raises NotImplementedError for a rule's Lambda target, failing the whole PutEvents.
    The runtime delivers those (``local.bus``), so moto is told to skip them; the targets stay
    registered and visible through ListTargetsByRule."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        targets = self.targets
        self.targets = [t for t in targets if ":lambda:" not in str(t.get("Arn", ""))]
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = targets

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    _PATCHED = True


class MotoServer:
    """moto's server app on 127.0.0.1:<port> in a daemon thread, behind the middleware."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, serialize: bool = True,
                 chaos: MotoChaos | None = None):
        self.host = host
        self.port = port
        self.chaos = chaos or MotoChaos()
        self.serialize = serialize
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.middleware: _SerializingMiddleware | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class _QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # moto access log is noise
                pass

        from local import attribute_values, moto_memo

        attribute_values.install()
        moto_memo.install()
        _let_moto_skip_lambda_targets()
        _untracked_moto_instances()
        _flat_transactions()
        _trimmable_streams()
        _partition_queries()
        _bounded_sqs_deletes()
        self.middleware = _SerializingMiddleware(
            DomainDispatcherApplication(create_backend_app), self.chaos, self.serialize
        )
        self._server = make_server(
            self.host, self.port, self.middleware, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _str_attrs(attrs: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = str(v)
    return out


class LocalCloud:
    """Creates the template's tables, buckets, queues, topics, buses and rules on the moto server."""

    TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")

    def __init__(self, template: Template, endpoint: str):
        self.template = template
        self.endpoint = endpoint
        self.created: list[tuple[str, str, str]] = []  # (type, logical id, physical name)
        self.skipped: dict[str, int] = {}

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint)

    def provision(self) -> None:
        t = self.template
        for res in t.of_type(*self.TABLE_TYPES):
            self._table(res)
        for res in t.of_type("AWS::KMS::Key"):
            self._kms_key(res)
        for res in t.of_type("AWS::S3::Bucket"):
            self._bucket(res)
        for res in t.dependency_order(t.of_type("AWS::SQS::Queue")):
            self._queue(res)
        for res in t.of_type("AWS::SNS::Topic"):
            self._topic(res)
        for res in t.of_type("AWS::SQS::QueuePolicy"):
            self._queue_policy(res)
        for res in t.of_type("AWS::SNS::Subscription"):
            self._subscription(res)
        for res in t.of_type("AWS::Events::EventBus"):
            self._bus(res)
        for res in t.of_type("AWS::Events::Rule"):
            self._rule(res)
        handled = set(self.HANDLED_TYPES)
        for res in t.resources.values():
            if res.type not in handled:
                self.skipped[res.type] = self.skipped.get(res.type, 0) + 1

    HANDLED_TYPES: tuple[str, ...] = (
        *TABLE_TYPES,
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        # Served by the runtime itself rather than created on moto:
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Kinesis::Stream",  # local/kinesis.py
        "AWS::Kinesis::StreamConsumer",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Authorizer",
        "AWS::ApiGatewayV2::Stage",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
    )

    # -- DynamoDB --------------------------------------------------------------------------

    def _table(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.ref
        assert name
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
        }
        provisioned = p.get("BillingMode") == "PROVISIONED" and "ProvisionedThroughput" in p
        if provisioned:
            kwargs["BillingMode"] = "PROVISIONED"
            kwargs["ProvisionedThroughput"] = {
                k: int(v) for k, v in p["ProvisionedThroughput"].items()
            }
        else:
            kwargs["BillingMode"] = "PAY_PER_REQUEST"

        def index(spec: dict[str, Any]) -> dict[str, Any]:
            out = {k: spec[k] for k in ("IndexName", "KeySchema", "Projection") if k in spec}
            if provisioned:
                out["ProvisionedThroughput"] = spec.get(
                    "ProvisionedThroughput", kwargs["ProvisionedThroughput"]
                )
            return out

        if p.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [index(i) for i in p["GlobalSecondaryIndexes"]]
        if p.get("LocalSecondaryIndexes"):
            kwargs["LocalSecondaryIndexes"] = [
                {k: i[k] for k in ("IndexName", "KeySchema", "Projection")}
                for i in p["LocalSecondaryIndexes"]
            ]
        stream = p.get("StreamSpecification")
        if stream and stream.get("StreamViewType"):
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        tags = p.get("Tags") or []
        if tags:
            kwargs["Tags"] = [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]
        ddb = self.client("dynamodb")
        desc = ddb.create_table(**kwargs)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled", False)).lower() == "true":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = p.get("PointInTimeRecoverySpecification") or next(
            (r.get("PointInTimeRecoverySpecification") for r in p.get("Replicas") or []
             if r.get("PointInTimeRecoverySpecification")),
            None,
        )
        if pitr and str(pitr.get("PointInTimeRecoveryEnabled", False)).lower() == "true":
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        res.attributes["Arn"] = desc["TableArn"]
        if desc.get("LatestStreamArn"):
            res.attributes["StreamArn"] = desc["LatestStreamArn"]
        self.created.append((res.type, res.logical_id, name))

    # -- KMS -------------------------------------------------------------------------------

    def _kms_key(self, res: Resource) -> None:
        """A symmetric key on moto; Ref is its key id, GetAtt Arn its ARN (as CloudFormation)."""
        p = self.template.resolve(res.properties)
        meta = self.client("kms").create_key(
            Description=str(p.get("Description") or res.logical_id), KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]
        res.ref = meta["KeyId"]
        res.attributes["Arn"] = meta["Arn"]
        res.attributes["KeyId"] = meta["KeyId"]
        self.created.append((res.type, res.logical_id, meta["KeyId"]))

    # -- S3 --------------------------------------------------------------------------------

    def _bucket(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.ref
        assert name
        s3 = self.client("s3")
        lock = p.get("ObjectLockConfiguration") if str(p.get("ObjectLockEnabled", "")).lower() == "true" else None
        s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock is not None else {}))
        if lock and lock.get("Rule"):  # the digest bucket: compliance-mode default retention
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": lock["Rule"]})
        if (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        extras: list[tuple[str, Callable[[], Any]]] = []
        enc = (p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
        if enc:
            rules = []
            for r in enc:
                rule: dict[str, Any] = {}
                if r.get("ServerSideEncryptionByDefault"):
                    rule["ApplyServerSideEncryptionByDefault"] = r["ServerSideEncryptionByDefault"]
                if "BucketKeyEnabled" in r:
                    rule["BucketKeyEnabled"] = str(r["BucketKeyEnabled"]).lower() == "true"
                rules.append(rule)
            extras.append(("encryption", lambda: s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})))
        block = p.get("PublicAccessBlockConfiguration")
        if block:
            extras.append(("public access block", lambda: s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={k: str(v).lower() == "true" for k, v in block.items()})))
        lifecycle = (p.get("LifecycleConfiguration") or {}).get("Rules")
        if lifecycle:
            extras.append(("lifecycle", lambda: s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle]})))
        tags = p.get("Tags") or []
        if tags:
            extras.append(("tags", lambda: s3.put_bucket_tagging(
                Bucket=name,
                Tagging={"TagSet": [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]})))
        for what, apply in extras:
            try:
                apply()
            except Exception as exc:  # settings that only matter deployed never block start-up
                log.warning("bucket %s: %s not applied locally (%s)", name, what, exc)
        self.created.append((res.type, res.logical_id, name))

    # -- SQS / SNS -------------------------------------------------------------------------

    _QUEUE_ATTRS = (
        "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "FifoQueue",
        "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
        "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
    )

    def _queue(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.attributes["QueueName"]
        attrs = _str_attrs({k: p[k] for k in self._QUEUE_ATTRS if k in p})
        if "RedrivePolicy" in p:
            rp = dict(p["RedrivePolicy"])
            rp["maxReceiveCount"] = int(rp["maxReceiveCount"])
            attrs["RedrivePolicy"] = json.dumps(rp)
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        res.ref = url
        res.attributes.update(QueueUrl=url, Arn=arn)
        self.created.append((res.type, res.logical_id, url))

    def _queue_policy(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        for url in p.get("Queues") or []:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
            )

    def _topic(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.attributes["TopicName"]
        attrs = {}
        if p.get("FifoTopic"):
            attrs["FifoTopic"] = "true"
        arn = self.client("sns").create_topic(Name=name, Attributes=attrs)["TopicArn"]
        res.ref = arn
        res.attributes["TopicArn"] = arn
        self.created.append((res.type, res.logical_id, arn))

    def _subscription(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        if p.get("Protocol") not in ("sqs",):
            log.warning("SNS subscription %s (%s) is not delivered locally", res.logical_id, p.get("Protocol"))
            return
        attrs = {}
        if p.get("RawMessageDelivery") is not None:
            attrs["RawMessageDelivery"] = str(p["RawMessageDelivery"]).lower()
        if p.get("FilterPolicy"):
            attrs["FilterPolicy"] = json.dumps(p["FilterPolicy"])
        self.client("sns").subscribe(
            TopicArn=p["TopicArn"], Protocol="sqs", Endpoint=p["Endpoint"], Attributes=attrs
        )

    # -- EventBridge -----------------------------------------------------------------------

    def _bus(self, res: Resource) -> None:
        name = res.ref
        assert name
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        res.attributes.update(Arn=arn, Name=name)
        self.created.append((res.type, res.logical_id, name))

    def _rule(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = self.template.physical_name(res)
        bus = str(p.get("EventBusName") or "default").rsplit("/", 1)[-1]
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": p.get("State", "ENABLED")}
        if p.get("EventPattern") is not None:
            kwargs["EventPattern"] = json.dumps(p["EventPattern"])
        if p.get("ScheduleExpression"):
            kwargs["ScheduleExpression"] = p["ScheduleExpression"]
        if p.get("Description"):
            kwargs["Description"] = p["Description"]
        events = self.client("events")
        arn = events.put_rule(**kwargs)["RuleArn"]
        res.attributes["Arn"] = arn
        targets = []
        for target in p.get("Targets") or []:
            spec = {k: v for k, v in target.items() if k in (
                "Id", "Arn", "Input", "InputPath", "InputTransformer", "SqsParameters",
                "DeadLetterConfig", "RetryPolicy", "RoleArn")}
            if "InputTransformer" in spec:
                it = dict(spec["InputTransformer"])
                if isinstance(it.get("InputTemplate"), dict):
                    it["InputTemplate"] = json.dumps(it["InputTemplate"])
                spec["InputTransformer"] = it
            targets.append(spec)
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.created.append((res.type, res.logical_id, name))


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if rule.get("Id"):
        out["ID"] = rule["Id"]
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        n = rule["NoncurrentVersionExpiration"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(n["NoncurrentDays"])}
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    transitions: Iterable[dict[str, Any]] = rule.get("Transitions") or []
    if transitions:
        out["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in transitions
        ]
    return out
