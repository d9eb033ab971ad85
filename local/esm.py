"""Event source mappings of the template: DynamoDB stream and SQS pollers with Lambda's semantics.

moto stores stream records and queues but applies none of a mapping's settings. These pollers
do, as Lambda documents them: batch size, batching window, starting position, filter criteria
(non-matching records are consumed and dropped), ``BisectBatchOnFunctionError`` (splitting does
not count as a retry), ``MaximumRetryAttempts``, ``ReportBatchItemFailures`` (checkpoint at the
lowest reported sequence number; a malformed answer fails the whole batch),
``MaximumRecordAgeInSeconds`` and the on-failure destination (an invocation record with
``DDBStreamBatchInfo``, not the records). For SQS, failed messages stay on the queue and the
queue's redrive policy moves them to its DLQ.

Chaos: moto has one shard, so it delivers in commit order; AWS delivers per item only. With
``shuffle`` the records of a stream are spread over virtual shards by item key (per-item order
kept, none across items) that deliver independently; ``duplicate`` re-delivers batches and
records as Lambda's at-least-once delivery may.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.cloud import STREAM_ACTIVITY, aws_client, stream_bounds, table_of_stream
from local.filters import matches_any, parse_filter_criteria, sqs_filter_view
from local.lambdas import FunctionError, LambdaService, ThrottledError
from local.template import REGION, Resource, Template

__all__ = [
    "MappingSpec",
    "QueueMapping",
    "StreamChaos",
    "StreamMapping",
    "Timing",
    "build_mappings",
]

log = logging.getLogger("cairn.local")


@dataclass
class StreamChaos:
    """Delivery faults of multi-shard, at-least-once streams (mutable at run time)."""

    shuffle: bool = False
    shards: int = 4
    duplicate: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random)
    duplicates_sent: int = 0

    def __post_init__(self) -> None:
        if self.seed is not None:
            self.rng.seed(self.seed)

    def chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p


@dataclass
class Timing:
    """Local pacing. AWS polls a shard ~4×/s and backs off retries up to about a minute."""

    poll_interval: float = 0.25
    idle_poll: float = 2.0  # an idle stream reader reads anyway this often (it is woken by appends)
    retry_base: float = 0.1
    retry_max: float = 2.0
    sqs_retry_visibility: int = 1  # seconds before a failed SQS message is visible again


@dataclass(frozen=True)
class MappingSpec:
    logical_id: str
    function: str
    source_arn: str
    kind: str  # "dynamodb" | "sqs"
    batch_size: int
    window: float
    starting_position: str
    filters: tuple[dict[str, Any], ...]
    bisect: bool
    max_retries: int
    max_age: int
    report_failures: bool
    on_failure: str | None
    enabled: bool
    max_concurrency: int | None

    @classmethod
    def from_resource(cls, res: Resource, template: Template) -> MappingSpec:
        p = template.resolve(res.properties)
        arn = str(p["EventSourceArn"])
        service = arn.split(":")[2]
        kind = {"dynamodb": "dynamodb", "sqs": "sqs", "kinesis": "kinesis"}.get(service)
        if kind is None:
            raise ValueError(f"{res.logical_id}: event source {service} is not emulated")
        dest = ((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return cls(
            logical_id=res.logical_id,
            function=str(p["FunctionName"]),
            source_arn=arn,
            kind=kind,
            batch_size=int(p.get("BatchSize", 10 if kind == "sqs" else 100)),
            window=float(p.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=str(p.get("StartingPosition", "LATEST")),
            filters=tuple(parse_filter_criteria(p.get("FilterCriteria"))),
            bisect=str(p.get("BisectBatchOnFunctionError", False)).lower() == "true",
            max_retries=int(p.get("MaximumRetryAttempts", -1)),
            max_age=int(p.get("MaximumRecordAgeInSeconds", -1)),
            report_failures="ReportBatchItemFailures" in (p.get("FunctionResponseTypes") or []),
            on_failure=str(dest) if dest else None,
            enabled=str(p.get("Enabled", True)).lower() != "false",
            max_concurrency=(p.get("ScalingConfig") or {}).get("MaximumConcurrency"),
        )


def _jsonable_attr(value: Any) -> Any:
    """boto3 gives Binary attributes as bytes; Lambda delivers them base64-encoded."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable_attr(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable_attr(v) for v in value]
    return value


def stream_record_for_lambda(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda delivers it to a function."""
    ddb = record["dynamodb"]
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        created = created.timestamp()
    body: dict[str, Any] = {"ApproximateCreationDateTime": int(created or time.time())}
    for key in ("Keys", "NewImage", "OldImage"):
        if key in ddb:
            body[key] = _jsonable_attr(ddb[key])
    body["SequenceNumber"] = ddb["SequenceNumber"]
    body["SizeBytes"] = int(ddb.get("SizeBytes", 0))
    body["StreamViewType"] = ddb.get("StreamViewType", "NEW_IMAGE")
    out: dict[str, Any] = {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    identity = record.get("userIdentity")
    if identity:
        # the Streams API's Identity (PrincipalId, Type) as Lambda hands it on (principalId, type)
        out["userIdentity"] = {{"PrincipalId": "principalId", "Type": "type"}.get(k, k): v for k, v in identity.items()}
    return out


class _Outcome:
    OK = "ok"
    PARTIAL = "partial"
    ERROR = "error"
    THROTTLED = "throttled"


def _partial_index(payload: Any, identifiers: list[str]) -> int | None | str:
    """Index of the first failed item, None for success, "invalid" for a malformed answer."""
    if payload is None or not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures")
    if failures is None or failures == []:
        return None
    if not isinstance(failures, list):
        return "invalid"
    positions = []
    for f in failures:
        if not isinstance(f, dict):
            return "invalid"
        ident = f.get("itemIdentifier")
        if ident in (None, "") or ident not in identifiers:
            return "invalid"
        positions.append(identifiers.index(ident))
    return min(positions)


def on_failure_message(records: list[dict[str, Any]], *, shard_id: str, stream_arn: str, function_arn: str,
                       condition: str = "RetryAttemptsExhausted", invokes: int = 1) -> dict[str, Any]:
    """What Lambda sends a stream mapping's on-failure destination: an invocation record with
    ``DDBStreamBatchInfo`` (shard, sequence range, arrival times, size, stream), never the records."""

    def iso(ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    records = sorted(records, key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invokes,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso(records[0]["dynamodb"]["ApproximateCreationDateTime"]),
            "approximateArrivalOfLastRecord": iso(records[-1]["dynamodb"]["ApproximateCreationDateTime"]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


class _FailureSink:
    """The on-failure destination (SQS queue or SNS topic) of a mapping."""

    def __init__(self, arn: str | None, endpoint: str):
        self.arn = arn
        self.endpoint = endpoint
        self.sent = 0
        self._url: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        if not self.arn:
            return
        body = json.dumps(message)
        service = self.arn.split(":")[2]
        if service == "sqs":
            sqs = aws_client("sqs", self.endpoint)
            if self._url is None:
                self._url = sqs.get_queue_url(QueueName=self.arn.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.send_message(QueueUrl=self._url, MessageBody=body)
        elif service == "sns":
            aws_client("sns", self.endpoint).publish(TopicArn=self.arn, Message=body)
        else:
            log.error("on-failure destination %s is not emulated; record dropped", self.arn)
            return
        self.sent += 1


class _VirtualShard:
    """An ordered sequence of records delivered in batches by one thread (a shard's processor)."""

    def __init__(self, mapping: StreamMapping, shard_id: str):
        self.mapping = mapping
        self.shard_id = shard_id
        self.pending: deque[tuple[dict[str, Any], float]] = deque()
        self.cond = threading.Condition()
        self.busy = False

    def put(self, record: dict[str, Any], arrival: float, front: bool = False) -> None:
        with self.cond:
            if front:
                self.pending.appendleft((record, arrival))
            else:
                self.pending.append((record, arrival))
            self.cond.notify()

    def take(self, stop: threading.Event) -> list[tuple[dict[str, Any], float]]:
        m = self.mapping
        with self.cond:
            while not self.pending and not stop.is_set():
                self.cond.wait(0.5)
            if stop.is_set():
                return []
            if m.spec.window > 0:
                first_arrival = self.pending[0][1]
                while (len(self.pending) < m.spec.batch_size and not stop.is_set()
                       and time.time() - first_arrival < m.spec.window):
                    self.cond.wait(max(0.01, m.spec.window - (time.time() - first_arrival)))
            batch: list[tuple[dict[str, Any], float]] = []
            size = 0
            while self.pending and len(batch) < m.spec.batch_size:
                rec_size = len(json.dumps(self.pending[0][0]))
                if batch and size + rec_size > 6_000_000:
                    break
                batch.append(self.pending.popleft())
                size += rec_size
            self.busy = True
            return batch

    def run(self, stop: threading.Event) -> None:
        chaos = self.mapping.chaos
        while not stop.is_set():
            batch = self.take(stop)
            if not batch:
                continue
            if chaos.shuffle:
                stop.wait(chaos.rng.random() * 0.05)  # shards do not keep step with each other
            try:
                self.mapping.process(self, batch, stop)
            except Exception:  # a bug here must not kill the shard silently
                log.exception("%s: batch processing failed", self.mapping.spec.logical_id)
            finally:
                with self.cond:
                    self.busy = False


class StreamMapping:
    """A DynamoDB stream -> function mapping."""

    def __init__(self, spec: MappingSpec, lambdas: LambdaService, endpoint: str,
                 chaos: StreamChaos, timing: Timing):
        self.spec = spec
        self.lambdas = lambdas
        self.endpoint = endpoint
        self.chaos = chaos
        self.timing = timing
        self.sink = _FailureSink(spec.on_failure, endpoint)
        self.function_arn = lambdas.get(spec.function).spec.arn
        self.stop_event = threading.Event()
        self.shards: list[_VirtualShard] = []
        self.real_shard_id = "shardId-local"
        self.caught_up = False
        self.last_seq: str | None = None
        self.stats = {"read": 0, "filtered": 0, "batches": 0, "invocations": 0, "errors": 0,
                      "retries": 0, "bisections": 0, "discarded": 0, "throttled": 0, "duplicated": 0,
                      "trimmed_unread": 0}
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if not self.spec.enabled:
            return
        n = max(1, self.chaos.shards)
        self.shards = [_VirtualShard(self, f"shardId-local-{i:02d}") for i in range(n)]
        reader = threading.Thread(target=self._read, name=f"esm:{self.spec.logical_id}", daemon=True)
        self._threads.append(reader)
        for vs in self.shards:
            self._threads.append(threading.Thread(
                target=vs.run, args=(self.stop_event,), name=f"esm:{self.spec.logical_id}:{vs.shard_id}",
                daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        STREAM_ACTIVITY.wake_all()
        for vs in self.shards:
            with vs.cond:
                vs.cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)

    @property
    def idle(self) -> bool:
        """Everything read was delivered, and the stream holds nothing unread (checked, not
        assumed from the last poll)."""
        if not self.spec.enabled:
            return True
        if not self.caught_up or any(vs.pending or vs.busy for vs in self.shards):
            return False
        bounds = stream_bounds(self.spec.source_arn)
        if bounds is not None:
            # Served by this process: compare with the shard itself (a probe through the API
            # would leave an unused iterator behind, which holds back the shard's trimming).
            oldest, head = bounds
            if self.last_seq is not None:
                return int(self.last_seq) + 1 >= head
            return self.spec.starting_position == "LATEST" or oldest >= head
        client = aws_client("dynamodbstreams", self.endpoint)
        if self.last_seq is not None:
            kind, extra = "AFTER_SEQUENCE_NUMBER", {"SequenceNumber": self.last_seq}
        elif self.spec.starting_position == "LATEST":
            return True
        else:
            kind, extra = "TRIM_HORIZON", {}
        try:
            it = client.get_shard_iterator(StreamArn=self.spec.source_arn, ShardId=self.real_shard_id,
                                           ShardIteratorType=kind, **extra)["ShardIterator"]
            return not client.get_records(ShardIterator=it, Limit=1).get("Records")
        except Exception:
            return False

    # -- reading ---------------------------------------------------------------------------

    def _shard_for(self, record: dict[str, Any]) -> _VirtualShard:
        if not self.chaos.shuffle or len(self.shards) == 1:
            return self.shards[0]
        key = json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True)
        return self.shards[int(hashlib.sha1(key.encode()).hexdigest(), 16) % len(self.shards)]

    def _resume_at(self) -> dict[str, str]:
        """Where (re)reading starts: after the last record read (a reader that lost its iterator
        neither skips records nor re-reads the stream), else the mapping's starting position."""
        if self.last_seq is not None:
            return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.last_seq}
        position = "TRIM_HORIZON" if self.stats["trimmed_unread"] else self.spec.starting_position
        return {"ShardIteratorType": position if position in ("TRIM_HORIZON", "LATEST") else "TRIM_HORIZON"}

    def _read(self) -> None:
        client = aws_client("dynamodbstreams", self.endpoint)
        iterators: dict[str, str] = {}
        table = table_of_stream(self.spec.source_arn)
        while not self.stop_event.is_set():
            try:
                seen, read_at = STREAM_ACTIVITY.seen(table), time.monotonic()
                if not iterators:
                    desc = client.describe_stream(StreamArn=self.spec.source_arn)["StreamDescription"]
                    for shard in desc["Shards"]:
                        self.real_shard_id = shard["ShardId"]
                        iterators[shard["ShardId"]] = client.get_shard_iterator(
                            StreamArn=self.spec.source_arn, ShardId=shard["ShardId"], **self._resume_at(),
                        )["ShardIterator"]
                got = 0
                for shard_id, it in list(iterators.items()):
                    resp = client.get_records(ShardIterator=it, Limit=1000)
                    iterators[shard_id] = resp["NextShardIterator"]
                    for raw in resp.get("Records", []):
                        got += 1
                        self.last_seq = raw["dynamodb"]["SequenceNumber"]
                        self.stats["read"] += 1
                        rec = stream_record_for_lambda(raw, self.spec.source_arn)
                        if not matches_any(self.spec.filters, rec):
                            self.stats["filtered"] += 1
                            continue
                        self._shard_for(rec).put(rec, time.time())
                if got == 0:
                    self.caught_up = True
                    self._idle(table, seen, read_at)
                else:
                    self.caught_up = False
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                if "TrimmedDataAccessException" in str(exc):
                    log.error("%s: records after %s were trimmed (older than the stream keeps) before "
                              "they were read; reading resumes at the oldest record kept",
                              self.spec.logical_id, self.last_seq)
                    self.last_seq = None
                    self.stats["trimmed_unread"] += 1
                else:
                    log.warning("%s: reading the stream failed (%s); retrying", self.spec.logical_id, exc)
                iterators = {}
                self.stop_event.wait(1.0)

    def _idle(self, key: str, seen: int, read_at: float) -> None:
        """Caught up: wait for an append to stream ``key`` after ``seen`` (no polling; every
        ``idle_poll`` s at most), then keep AWS's pace of one read per ``poll_interval``."""
        STREAM_ACTIVITY.wait(key, seen, self.timing.idle_poll, self.stop_event)
        self.stop_event.wait(max(0.0, read_at + self.timing.poll_interval - time.monotonic()))

    # -- delivering ------------------------------------------------------------------------

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[str, Any]:
        self.stats["invocations"] += 1
        try:
            result = self.lambdas.invoke(self.spec.function, {"Records": records})
        except ThrottledError:
            self.stats["throttled"] += 1
            return _Outcome.THROTTLED, None
        except FunctionError as exc:
            self.stats["errors"] += 1
            log.warning("%s: %s failed on %d record(s): %s", self.spec.logical_id,
                        self.spec.function.rsplit(":", 1)[-1], len(records), exc)
            return _Outcome.ERROR, exc.error
        if not self.spec.report_failures:
            return _Outcome.OK, None
        seqs = [self._seq(r) for r in records]
        index = _partial_index(result.payload, seqs)
        if index is None:
            return _Outcome.OK, None
        if index == "invalid":
            self.stats["errors"] += 1
            log.warning("%s: malformed batchItemFailures %r: whole batch failed",
                        self.spec.logical_id, result.payload)
            return _Outcome.ERROR, {"errorType": "InvalidBatchItemFailures"}
        return _Outcome.PARTIAL, index

    # What a Kinesis mapping (local.kinesis) reads differently from a delivered record.
    def _seq(self, record: dict[str, Any]) -> str:
        return str(record["dynamodb"]["SequenceNumber"])

    def _created(self, record: dict[str, Any]) -> float:
        return float(record["dynamodb"]["ApproximateCreationDateTime"])

    def _failure_message(self, vshard: _VirtualShard, records: list[dict[str, Any]], condition: str,
                         invokes: int) -> dict[str, Any]:
        # The real shard, also with chaos' virtual shards: the range is read back from it (redrive).
        return on_failure_message(records, shard_id=self.real_shard_id, stream_arn=self.spec.source_arn,
                                  function_arn=self.function_arn, condition=condition, invokes=invokes)

    def _backoff(self, retries: int, stop: threading.Event) -> None:
        delay = min(self.timing.retry_max, self.timing.retry_base * (2 ** max(0, retries - 1)))
        stop.wait(delay)

    def process(self, vshard: _VirtualShard, batch: list[tuple[dict[str, Any], float]],
                stop: threading.Event) -> None:
        self.stats["batches"] += 1
        work: deque[tuple[list[tuple[dict[str, Any], float]], int, int]] = deque([(batch, 0, 0)])
        while work and not stop.is_set():
            items, retries, invokes = work.popleft()
            if self.spec.max_age >= 0:
                now = time.time()
                expired = [i for i in items if now - self._created(i[0]) > self.spec.max_age]
                if expired:
                    self._discard(vshard, expired, "RecordAgeExceeded", invokes, None)
                    items = [i for i in items if i not in expired]
                    if not items:
                        continue
            records = [i[0] for i in items]
            outcome, detail = self._invoke(records)
            invokes += 1
            if outcome == _Outcome.OK:
                self._delivered(vshard, items)
                continue
            if outcome == _Outcome.THROTTLED:
                self._backoff(retries + 1, stop)
                work.appendleft((items, retries, invokes))
                continue
            if outcome == _Outcome.PARTIAL:
                index = int(detail)
                self._delivered(vshard, items[:index])
                items = items[index:]
            elif self.spec.bisect and len(items) > 1:
                mid = len(items) // 2
                self.stats["bisections"] += 1
                work.appendleft((items[mid:], retries, invokes))
                work.appendleft((items[:mid], retries, invokes))
                continue
            retries += 1
            if 0 <= self.spec.max_retries < retries:
                self._discard(vshard, items, "RetryAttemptsExhausted", invokes, detail)
                continue
            self.stats["retries"] += 1
            self._backoff(retries, stop)
            work.appendleft((items, retries, invokes))

    def _delivered(self, vshard: _VirtualShard, items: list[tuple[dict[str, Any], float]]) -> None:
        if not items or self.chaos.duplicate <= 0:
            return
        if self.chaos.chance(self.chaos.duplicate):
            # The checkpoint "failed": the same batch comes again, first.
            for rec, arrival in reversed(items):
                vshard.put(rec, arrival, front=True)
            self.stats["duplicated"] += len(items)
            self.chaos.duplicates_sent += len(items)
            return
        for rec, arrival in items:
            if self.chaos.chance(self.chaos.duplicate):
                target = self.shards[self.chaos.rng.randrange(len(self.shards))] if self.chaos.shuffle else vshard
                target.put(rec, arrival)
                self.stats["duplicated"] += 1
                self.chaos.duplicates_sent += 1

    def _discard(self, vshard: _VirtualShard, items: list[tuple[dict[str, Any], float]], condition: str,
                 invokes: int, error: Any) -> None:
        self.stats["discarded"] += len(items)
        records = [i[0] for i in items]
        log.error("%s: %d record(s) discarded (%s); seq %s..%s", self.spec.logical_id, len(records),
                  condition, self._seq(records[0]), self._seq(records[-1]))
        message = self._failure_message(vshard, records, condition, invokes)
        if condition == "RecordAgeExceeded" and invokes == 0:
            message.pop("responseContext")
        try:
            self.sink.send(message)
        except Exception:
            log.exception("%s: on-failure destination %s unreachable", self.spec.logical_id, self.spec.on_failure)


IDLE_WAIT_SECONDS = 1  # WaitTimeSeconds of an idle queue's receive (a stop waits for it at most)


class QueueMapping:
    """An SQS queue -> function mapping."""

    def __init__(self, spec: MappingSpec, lambdas: LambdaService, endpoint: str, timing: Timing,
                 concurrency: int = 2):
        self.spec = spec
        self.lambdas = lambdas
        self.endpoint = endpoint
        self.timing = timing
        self.queue_name = spec.source_arn.rsplit(":", 1)[-1]
        fifo = self.queue_name.endswith(".fifo")
        self.concurrency = 1 if fifo else max(1, min(concurrency, spec.max_concurrency or concurrency))
        # An idle queue is long-polled: moto wakes the poll when a message is sent, where short
        # polls 4x a second per thread kept an idle `make dev` at half a core. Not for FIFO
        # queues: moto's long poll spins while a visible message waits behind its group.
        self.idle_wait = 0 if fifo else IDLE_WAIT_SECONDS
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()
        self.url: str | None = None
        self.stats = {"received": 0, "filtered": 0, "invocations": 0, "errors": 0, "deleted": 0,
                      "retried": 0, "throttled": 0, "receive_calls": 0}

    def start(self) -> None:
        if not self.spec.enabled:
            return
        self.url = aws_client("sqs", self.endpoint).get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        for i in range(self.concurrency):
            t = threading.Thread(target=self._run, name=f"esm:{self.spec.logical_id}:{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout=2)

    @property
    def idle(self) -> bool:
        if not self.spec.enabled or self.url is None:
            return True
        with self._lock:
            if self._busy:
                return False
        attrs = aws_client("sqs", self.endpoint).get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return all(int(v) == 0 for v in attrs.values())

    def _receive(self, sqs: Any) -> list[dict[str, Any]]:
        """One batch: the first receive long-polls (``IDLE_WAIT_SECONDS``, as Lambda's pollers do),
        the rest of the batching window short-polls."""
        messages: list[dict[str, Any]] = []
        deadline = None
        while len(messages) < self.spec.batch_size and not self.stop_event.is_set():
            want = min(10, self.spec.batch_size - len(messages))
            self.stats["receive_calls"] += 1
            got = sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=want, AttributeNames=["All"],
                MessageAttributeNames=["All"], WaitTimeSeconds=self.idle_wait if deadline is None else 0,
            ).get("Messages", [])
            if deadline is None:
                if not got:
                    return messages
                deadline = time.time() + self.spec.window  # the window opens with the first message
            messages.extend(got)
            if len(got) < want:
                if time.time() >= deadline:
                    break
                self.stop_event.wait(min(0.05, max(0.0, deadline - time.time())))
        return messages

    def _record(self, m: dict[str, Any]) -> dict[str, Any]:
        attrs = dict(m.get("Attributes") or {})
        msg_attrs = {}
        for name, a in (m.get("MessageAttributes") or {}).items():
            msg_attrs[name] = {
                "stringValue": a.get("StringValue"),
                "binaryValue": base64.b64encode(a["BinaryValue"]).decode() if a.get("BinaryValue") else None,
                "stringListValues": a.get("StringListValues", []),
                "binaryListValues": a.get("BinaryListValues", []),
                "dataType": a.get("DataType"),
            }
            msg_attrs[name] = {k: v for k, v in msg_attrs[name].items() if v is not None}
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": attrs,
            "messageAttributes": msg_attrs,
            "md5OfBody": m.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.spec.source_arn,
            "awsRegion": REGION,
        }

    def _run(self) -> None:
        sqs = aws_client("sqs", self.endpoint)
        while not self.stop_event.is_set():
            try:
                handled = self._poll_once(sqs)
                if not handled and not self.idle_wait:
                    self.stop_event.wait(self.timing.poll_interval)
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                log.warning("%s: polling %s failed (%s)", self.spec.logical_id, self.queue_name, exc)
                self.stop_event.wait(1.0)

    def _poll_once(self, sqs: Any) -> bool:
        messages = self._receive(sqs)
        if not messages:
            return False
        with self._lock:
            self._busy += 1
        try:
            return self._deliver(sqs, messages)
        finally:
            with self._lock:
                self._busy -= 1

    def _deliver(self, sqs: Any, messages: list[dict[str, Any]]) -> bool:
        self.stats["received"] += len(messages)
        records, dropped = [], []
        for m in messages:
            rec = self._record(m)
            (records if matches_any(self.spec.filters, sqs_filter_view(rec)) else dropped).append(rec)
        if dropped:
            self.stats["filtered"] += len(dropped)
            self._delete(sqs, dropped)
        if not records:
            return True
        self.stats["invocations"] += 1
        failed: list[dict[str, Any]]
        try:
            result = self.lambdas.invoke(self.spec.function, {"Records": records})
        except ThrottledError:
            self.stats["throttled"] += 1
            failed = records
        except FunctionError as exc:
            self.stats["errors"] += 1
            log.warning("%s: %s failed on %d message(s): %s", self.spec.logical_id,
                        self.spec.function.rsplit(":", 1)[-1], len(records), exc)
            failed = records
        else:
            failed = []
            if self.spec.report_failures:
                ids = [r["messageId"] for r in records]
                index = _partial_index(result.payload, ids)
                if index == "invalid":
                    failed = records
                elif index is not None:
                    failed_ids = {f["itemIdentifier"] for f in result.payload["batchItemFailures"]}
                    failed = [r for r in records if r["messageId"] in failed_ids]
        ok = [r for r in records if r not in failed]
        self._delete(sqs, ok)
        if failed:
            self.stats["retried"] += len(failed)
            for i in range(0, len(failed), 10):
                sqs.change_message_visibility_batch(
                    QueueUrl=self.url,
                    Entries=[{"Id": str(n), "ReceiptHandle": r["receiptHandle"],
                              "VisibilityTimeout": self.timing.sqs_retry_visibility}
                             for n, r in enumerate(failed[i:i + 10])],
                )
        return True

    def _delete(self, sqs: Any, records: list[dict[str, Any]]) -> None:
        for i in range(0, len(records), 10):
            chunk = records[i:i + 10]
            sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(chunk)],
            )
            self.stats["deleted"] += len(chunk)


def build_mappings(template: Template, lambdas: LambdaService, endpoint: str, chaos: StreamChaos,
                   timing: Timing, warn: Callable[[str], None] = log.warning) -> list[Any]:
    mappings: list[Any] = []
    for res in template.of_type("AWS::Lambda::EventSourceMapping"):
        try:
            spec = MappingSpec.from_resource(res, template)
        except ValueError as exc:
            warn(str(exc))
            continue
        if spec.kind == "dynamodb":
            mappings.append(StreamMapping(spec, lambdas, endpoint, chaos, timing))
        elif spec.kind == "kinesis":
            from local.kinesis import KinesisMapping  # local.kinesis builds on this module

            mappings.append(KinesisMapping(spec, lambdas, endpoint, chaos, timing))
        else:
            mappings.append(QueueMapping(spec, lambdas, endpoint, timing))
    return mappings
