"""Kinesis Data Streams for DynamoDB, locally: the streams, the table -> Kinesis forwarder, and
mappings that read a stream through an (enhanced fan-out) consumer with Lambda's settings.

moto 5.2 creates Kinesis streams and consumers but does not act on a table's
``KinesisStreamSpecification`` (nothing is replicated). So the runtime forwards each change
itself: one reader of the table's DynamoDB stream puts every change on the Kinesis stream in the
shape DynamoDB writes (``recordFormat: application/json``, ``tableName``, ``dynamodb`` with
``ApproximateCreationDateTime`` in milliseconds; partition key = a hash of the item's key, so one
item's changes stay in order on one shard and nothing else is ordered, as on AWS).

A :class:`KinesisMapping` is a :class:`local.esm.StreamMapping` (same batching, window, filters,
bisect, retries, partial batch responses, record age, on-failure destination) that reads the
Kinesis shards instead: one reader per mapping, as an enhanced fan-out consumer has its own
throughput. Filters see ``data`` decoded (Lambda: "patterns go under data"); an on-failure
message carries ``KinesisBatchInfo``.

moto keeps every Kinesis record and scans a shard from its first record on every GetRecords, so
the hub trims: a shard drops what every mapping reading it has passed beyond a bounded buffer (the
newest 1,000 passed records, so a failed batch can still be redriven; never its newest record,
which numbers the next one) and what is older than the stream's retention. moto's Kinesis
handlers are not thread-safe, so every call here goes through the hub's lock.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from local.cloud import STREAM_ACTIVITY, aws_client
from local.esm import (
    MappingSpec,
    StreamChaos,
    StreamMapping,
    Timing,
    _Outcome,
    _VirtualShard,
    on_failure_message,
)
from local.filters import matches_any
from local.lambdas import LambdaService
from local.template import REGION, Template

__all__ = [
    "KinesisHub",
    "KinesisMapping",
    "TableForwarder",
    "build_forwarders",
    "change_record",
    "hub_for",
    "kinesis_filter_view",
]

log = logging.getLogger("cairn.local")

STREAM_TYPE = "AWS::Kinesis::Stream"
CONSUMER_TYPE = "AWS::Kinesis::StreamConsumer"
LOCAL_SHARDS = 2  # an on-demand stream starts with 4; 2 is enough to reorder across shards


def change_record(record: dict[str, Any], table_name: str) -> dict[str, Any]:
    """A Lambda-shaped DynamoDB stream record -> the JSON DynamoDB writes to Kinesis for it."""
    ddb = record["dynamodb"]
    body: dict[str, Any] = {"ApproximateCreationDateTime": int(float(ddb["ApproximateCreationDateTime"]) * 1000)}
    for key in ("Keys", "NewImage", "OldImage"):
        if key in ddb:
            body[key] = ddb[key]
    body["SizeBytes"] = int(ddb.get("SizeBytes", 0))
    return {
        "awsRegion": record.get("awsRegion", REGION),
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "userIdentity": record.get("userIdentity"),
        "recordFormat": "application/json",
        "tableName": table_name,
        "dynamodb": body,
        "eventSource": "aws:dynamodb",
    }


def partition_key(record: dict[str, Any]) -> str:
    keys = json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True, separators=(",", ":"))
    return hashlib.md5(keys.encode()).hexdigest().upper()  # noqa: S324 - a hash key, not security


def kinesis_filter_view(record: dict[str, Any]) -> dict[str, Any]:
    """What Lambda filters a Kinesis record on: its ``kinesis`` metadata with ``data`` decoded
    when it is JSON."""
    view = dict(record["kinesis"])
    try:
        view["data"] = json.loads(base64.b64decode(view["data"]))
    except (TypeError, ValueError):
        pass
    return view


def stream_name(stream: str) -> str:
    """A Kinesis stream's name from its ARN (``...:stream/<name>``) or name."""
    return stream.rsplit("/", 1)[-1]


class KinesisHub:
    """The template's Kinesis streams and consumers on one local cloud, and their trimming."""

    def __init__(self, endpoint: str, *, retention_s: float = 24 * 3600.0, trim_interval_s: float = 1.0,
                 keep_passed: int = 1000):
        self.endpoint = endpoint
        self.lock = threading.RLock()
        self.retention_s = retention_s
        # Records every reader has passed that a shard still keeps (newest first): a failed batch
        # stays readable for `make redrive` for a while, and GetRecords (a scan in moto) stays cheap.
        self.keep_passed = max(1, keep_passed)
        self.trim_interval_s = trim_interval_s
        self.trimmed = 0
        self.readers: list[KinesisMapping] = []
        self._last_trim = 0.0
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("kinesis", self.endpoint)
        return self._client

    def call(self, method: str, **kwargs: Any) -> Any:
        with self.lock:
            answer = getattr(self.client, method)(**kwargs)
        if method in ("put_record", "put_records"):  # wake the readers (local.cloud.StreamActivity)
            STREAM_ACTIVITY.bump(stream_name(kwargs.get("StreamARN") or kwargs.get("StreamName") or ""))
        return answer

    # -- provisioning ----------------------------------------------------------------------

    def provision(self, template: Template) -> list[tuple[str, str, str]]:
        """Create the streams and register the consumers; their Ref / GetAtt become known."""
        created = []
        for res in template.of_type(STREAM_TYPE):
            p = template.resolve(res.properties)
            name = str(p.get("Name") or f"{template.stack_name}-{res.logical_id}")
            shards = int(p.get("ShardCount") or LOCAL_SHARDS)
            self.call("create_stream", StreamName=name, ShardCount=shards)
            arn = self.call("describe_stream_summary", StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
            res.ref = name
            res.attributes["Arn"] = arn
            created.append((res.type, res.logical_id, name))
        for res in template.of_type(CONSUMER_TYPE):
            p = template.resolve(res.properties)
            consumer = self.call("register_stream_consumer", StreamARN=str(p["StreamARN"]),
                                 ConsumerName=str(p["ConsumerName"]))["Consumer"]
            res.ref = consumer["ConsumerARN"]
            res.attributes.update({"ConsumerARN": consumer["ConsumerARN"], "StreamARN": str(p["StreamARN"]),
                                   "ConsumerName": consumer["ConsumerName"],
                                   "ConsumerStatus": "ACTIVE"})
            created.append((res.type, res.logical_id, consumer["ConsumerName"]))
        return created

    def shard_ids(self, stream_arn: str) -> list[str]:
        shards = self.call("list_shards", StreamARN=stream_arn)["Shards"]
        return sorted(s["ShardId"] for s in shards)

    # -- the backend (served in this process) ----------------------------------------------

    def _stream(self, stream_arn: str) -> Any:
        from moto.kinesis.models import kinesis_backends

        parts = stream_arn.split(":")
        try:
            return kinesis_backends[parts[4]][parts[3]].streams.get(parts[5].split("/")[1])
        except (KeyError, IndexError):
            return None

    def heads(self, stream_arn: str) -> dict[str, int] | None:
        """Newest sequence number per shard, or None when the stream is not served here."""
        with self.lock:
            stream = self._stream(stream_arn)
            if stream is None:
                return None
            return {sid: shard.get_max_sequence_number() for sid, shard in stream.shards.items()}

    def maybe_trim(self) -> int:
        if time.monotonic() - self._last_trim < self.trim_interval_s:
            return 0
        return self.trim()

    def trim(self, now: float | None = None) -> int:
        """Drop the records every reader of a shard has passed, beyond the newest ``keep_passed``
        of them, and those past retention; a shard always keeps its newest record (moto numbers
        the next record after it)."""
        self._last_trim = time.monotonic()
        wall = time.time() if now is None else now
        dropped = 0
        with self.lock:
            arns = {m.stream_arn for m in self.readers}
            for arn in arns:
                stream = self._stream(arn)
                if stream is None:
                    continue
                readers = [m for m in self.readers if m.stream_arn == arn and m.spec.enabled]
                for sid, shard in stream.shards.items():
                    floor = min((m.positions.get(sid, 0) for m in readers), default=0)
                    records = shard.records
                    passed = [seq for seq in records if seq <= floor]
                    floor = passed[-self.keep_passed - 1] if len(passed) > self.keep_passed else 0
                    for seq in list(records.keys())[:-1]:  # never the newest
                        if seq <= floor or wall - records[seq].created_at > self.retention_s:
                            del records[seq]
                            dropped += 1
                        else:
                            break
        self.trimmed += dropped
        return dropped


_HUBS: dict[str, KinesisHub] = {}
_HUBS_LOCK = threading.Lock()


def hub_for(endpoint: str) -> KinesisHub:
    """One hub per local cloud (its lock must be shared by every Kinesis caller)."""
    with _HUBS_LOCK:
        hub = _HUBS.get(endpoint)
        if hub is None:
            hub = _HUBS[endpoint] = KinesisHub(endpoint)
        return hub


class KinesisMapping(StreamMapping):
    """A Kinesis (enhanced fan-out consumer) -> function mapping: the settings of a stream
    mapping, one virtual shard per Kinesis shard."""

    def __init__(self, spec: MappingSpec, lambdas: LambdaService, endpoint: str, chaos: StreamChaos,
                 timing: Timing, hub: KinesisHub | None = None):
        super().__init__(spec, lambdas, endpoint, chaos, timing)
        self.hub = hub or hub_for(endpoint)
        # EventSourceArn is the consumer's ARN (…:stream/NAME/consumer/CONSUMER:ts) or the stream's.
        self.stream_arn = spec.source_arn.split("/consumer/")[0]
        self.positions: dict[str, int] = {}  # shard -> last sequence number read
        self._by_shard: dict[str, _VirtualShard] = {}
        self.hub.readers.append(self)

    def start(self) -> None:
        if not self.spec.enabled:
            return
        shard_ids = self.hub.shard_ids(self.stream_arn)
        self.shards = [_VirtualShard(self, sid) for sid in shard_ids]
        self._by_shard = {vs.shard_id: vs for vs in self.shards}
        self._threads.append(threading.Thread(target=self._read, name=f"esm:{self.spec.logical_id}", daemon=True))
        for vs in self.shards:
            self._threads.append(threading.Thread(target=vs.run, args=(self.stop_event,),
                                                  name=f"esm:{self.spec.logical_id}:{vs.shard_id}", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        super().stop()
        if self in self.hub.readers:
            self.hub.readers.remove(self)

    @property
    def idle(self) -> bool:
        if not self.spec.enabled:
            return True
        if not self.caught_up or any(vs.pending or vs.busy for vs in self.shards):
            return False
        heads = self.hub.heads(self.stream_arn)
        if heads is None:
            return True
        return all(self.positions.get(sid, 0) >= head for sid, head in heads.items())

    # -- records ---------------------------------------------------------------------------

    def _seq(self, record: dict[str, Any]) -> str:
        return str(record["kinesis"]["sequenceNumber"])

    def _created(self, record: dict[str, Any]) -> float:
        return float(record["kinesis"]["approximateArrivalTimestamp"])

    def _failure_message(self, vshard: _VirtualShard, records: list[dict[str, Any]], condition: str,
                         invokes: int) -> dict[str, Any]:
        ranged = [{"dynamodb": {"SequenceNumber": self._seq(r), "ApproximateCreationDateTime": self._created(r)}}
                  for r in records]
        message = on_failure_message(ranged, shard_id=vshard.shard_id, stream_arn=self.stream_arn,
                                     function_arn=self.function_arn, condition=condition, invokes=invokes)
        message["KinesisBatchInfo"] = message.pop("DDBStreamBatchInfo")
        return message

    def _lambda_record(self, raw: dict[str, Any], shard_id: str) -> dict[str, Any]:
        arrival = raw["ApproximateArrivalTimestamp"]
        if isinstance(arrival, dt.datetime):
            arrival = arrival.timestamp()
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": raw["PartitionKey"],
                "sequenceNumber": str(raw["SequenceNumber"]),
                "data": base64.b64encode(raw["Data"]).decode(),
                "approximateArrivalTimestamp": float(arrival),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{raw['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "awsRegion": REGION,
            "eventSourceARN": self.stream_arn,
        }

    def _iterator(self, shard_id: str) -> str:
        position = self.positions.get(shard_id)
        if position is not None:
            extra = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": str(position)}
        elif self.spec.starting_position == "LATEST":
            extra = {"ShardIteratorType": "LATEST"}
        else:
            extra = {"ShardIteratorType": "TRIM_HORIZON"}
        # By name: moto composes an iterator from the name only (by ARN, GetRecords cannot find it).
        return self.hub.call("get_shard_iterator", StreamName=self.stream_arn.rsplit("/", 1)[-1], ShardId=shard_id,
                             **extra)["ShardIterator"]

    def _read(self) -> None:
        iterators: dict[str, str] = {}
        name = stream_name(self.stream_arn)
        while not self.stop_event.is_set():
            try:
                seen, read_at = STREAM_ACTIVITY.seen(name), time.monotonic()
                got = 0
                for shard_id, vshard in self._by_shard.items():
                    if shard_id not in iterators:
                        iterators[shard_id] = self._iterator(shard_id)
                    resp = self.hub.call("get_records", ShardIterator=iterators[shard_id], Limit=1000)
                    iterators[shard_id] = resp["NextShardIterator"]
                    for raw in resp.get("Records", []):
                        got += 1
                        self.stats["read"] += 1
                        rec = self._lambda_record(raw, shard_id)
                        self.positions[shard_id] = int(raw["SequenceNumber"])
                        if not matches_any(self.spec.filters, kinesis_filter_view(rec)):
                            self.stats["filtered"] += 1
                            continue
                        vshard.put(rec, time.time())
                self.hub.maybe_trim()
                if got == 0:
                    self.caught_up = True
                    self._idle(name, seen, read_at)
                else:
                    self.caught_up = False
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                log.warning("%s: reading the Kinesis stream failed (%s); retrying", self.spec.logical_id, exc)
                iterators = {}
                self.stop_event.wait(1.0)


@dataclass(frozen=True)
class _ForwarderTarget:
    table_name: str
    stream_arn: str  # Kinesis


class TableForwarder(StreamMapping):
    """What DynamoDB does for a table with a Kinesis streaming destination: every change, in
    commit order, ``PutRecords`` to the stream (at least once: a failed put is retried whole).
    Reads the table's DynamoDB stream with a stream mapping's machinery, as its only local reader
    besides the mappings left on that stream."""

    def __init__(self, table_logical_id: str, table_stream_arn: str, target: _ForwarderTarget,
                 endpoint: str, timing: Timing, hub: KinesisHub | None = None):
        spec = MappingSpec(
            logical_id=f"{table_logical_id}->Kinesis", function=f"kinesis:{target.stream_arn.rsplit('/', 1)[-1]}",
            source_arn=table_stream_arn, kind="forwarder", batch_size=500, window=0.0,
            starting_position="TRIM_HORIZON", filters=(), bisect=False, max_retries=-1, max_age=-1,
            report_failures=False, on_failure=None, enabled=True, max_concurrency=None,
        )
        self.target = target
        self.hub = hub or hub_for(endpoint)
        no_function = SimpleNamespace(get=lambda _name: SimpleNamespace(spec=SimpleNamespace(arn=target.stream_arn)))
        super().__init__(spec, no_function, endpoint, StreamChaos(), timing)  # type: ignore[arg-type]
        self.stats["forwarded"] = 0

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[str, Any]:
        entries = [{"Data": json.dumps(change_record(r, self.target.table_name), separators=(",", ":")).encode(),
                    "PartitionKey": partition_key(r)} for r in records]
        try:
            failed = self.hub.call("put_records", StreamARN=self.target.stream_arn,
                                   Records=entries).get("FailedRecordCount", 0)
        except Exception as exc:
            log.warning("%s: PutRecords failed (%s); retrying", self.spec.logical_id, exc)
            return _Outcome.ERROR, None
        if failed:
            return _Outcome.ERROR, None
        self.stats["forwarded"] += len(records)
        return _Outcome.OK, None


def build_forwarders(template: Template, endpoint: str, timing: Timing) -> list[TableForwarder]:
    """One forwarder per table with a Kinesis streaming destination (the table needs its
    DynamoDB stream locally: moto has no other change feed)."""
    out = []
    for res in template.of_type("AWS::DynamoDB::Table"):
        spec = (res.properties or {}).get("KinesisStreamSpecification")
        if not spec:
            continue
        resolved = template.resolve(spec)
        table_stream = res.attributes.get("StreamArn")
        if not table_stream:
            log.warning("%s streams to Kinesis but has no DynamoDB stream locally; nothing is forwarded",
                        res.logical_id)
            continue
        target = _ForwarderTarget(table_name=str(res.ref), stream_arn=str(resolved["StreamArn"]))
        out.append(TableForwarder(res.logical_id, str(table_stream), target, endpoint, timing))
    return out
