"""``python -m cairn_tools redrive [consumer|projection|all]``: apply the batches the stream event
source mappings gave up on (retries exhausted), from each consumer's on-failure queue.

A message there is Lambda's invocation record: ``DDBStreamBatchInfo`` (``KinesisBatchInfo`` for
a mapping on the Kinesis fan-out stream) names the shard and the sequence range of the batch, not
its records. The range is read back from that stream (records are kept 24 hours), which says which (stream, version)s the batch held; those streams
are then applied through the normal path: projections catch up from their checkpoints (an event
is applied exactly once, whatever was applied meanwhile), the snapshotter folds a new snapshot,
the publisher republishes the range with the same integration-event ids (consumers dedupe). A
message is deleted only when its batch was applied; ``--dry-run`` shows and keeps everything.

Only the stream's keys are used, never its images: what is applied is what the store holds now
(a fixed event is read as fixed). ``--stream ID`` redrives only the batches that hold that stream
and leaves the others queued untouched: one repaired stream can be redriven while another batch
of the same queue is still failing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn_tools.config import (
    PROJECTIONS,
    ConfigError,
    Settings,
    _prepare_environment,
    failed_queue_output,
    load_outputs,
)
from cairn_tools.output import add_json_argument, emit

__all__ = ["CONSUMERS", "BatchInfo", "Consumer", "RedriveResult", "main", "read_range", "redrive"]

# consumer (function logical id) -> stream id prefixes it is fed (the mapping's filter)
CONSUMERS: dict[str, tuple[str, ...]] = {
    "OrdersProjections": ("order-",),
    "AccountsProjections": ("account-",),
    "Snapshotter": ("order-", "account-"),
    "Publisher": ("order-",),
}
ALIASES = {
    "orders": "OrdersProjections",
    "accounts": "AccountsProjections",
    "snapshotter": "Snapshotter",
    "publisher": "Publisher",
    **{name: spec.consumer for name, spec in PROJECTIONS.items()},
}


class RedriveError(Exception):
    """A batch could not be applied (it stays in the queue)."""


@dataclass(frozen=True)
class BatchInfo:
    """``DDBStreamBatchInfo`` (DynamoDB stream) or ``KinesisBatchInfo`` (the Kinesis fan-out
    stream, issue 18) of an on-failure message."""

    shard_id: str
    start: str
    end: str
    stream_arn: str
    batch_size: int
    first_arrival: str | None = None
    condition: str | None = None
    source: str = "dynamodb"  # or "kinesis"

    @classmethod
    def parse(cls, body: str) -> BatchInfo:
        try:
            raw = json.loads(body)
            source = "kinesis" if "KinesisBatchInfo" in raw else "dynamodb"
            info = raw["KinesisBatchInfo"] if source == "kinesis" else raw["DDBStreamBatchInfo"]
            return cls(
                shard_id=str(info["shardId"]),
                start=str(info["startSequenceNumber"]),
                end=str(info["endSequenceNumber"]),
                stream_arn=str(info["streamArn"]),
                batch_size=int(info.get("batchSize", 0)),
                first_arrival=info.get("approximateArrivalOfFirstRecord"),
                condition=(raw.get("requestContext") or {}).get("condition"),
                source=source,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RedriveError(f"not an on-failure record of a stream mapping (DDBStreamBatchInfo / KinesisBatchInfo): {exc}") from exc


def read_kinesis_range(kinesis: Any, info: BatchInfo, prefixes: Sequence[str], *,
                       max_pages: int = 10_000) -> dict[str, list[int]]:
    """{stream_id: versions} of the INSERTs of ``prefixes`` in a Kinesis batch's sequence range
    (each record's data is the change as Kinesis Data Streams for DynamoDB writes it)."""
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=info.stream_arn.rsplit("/", 1)[-1],
            ShardId=info.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=info.start,
        )["ShardIterator"]
    except Exception as exc:
        raise RedriveError(f"cannot read {info.shard_id} from {info.start}: {exc}") from exc
    end = int(info.end)
    found: dict[str, list[int]] = {}
    for page_no in range(max_pages):
        if not iterator:
            break
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        records = page.get("Records", [])
        if page_no == 0 and records and int(records[0]["SequenceNumber"]) > int(info.start):
            # AT_SEQUENCE_NUMBER of an expired record starts later: the batch is gone, keep it.
            raise RedriveError(f"{info.shard_id}: records from {info.start} are no longer in the stream")
        for record in records:
            if int(record["SequenceNumber"]) > end:
                return found
            try:
                change = json.loads(record["Data"])
            except ValueError:
                continue
            if change.get("eventName") != "INSERT":
                continue
            keys = (change.get("dynamodb") or {}).get("Keys", {})
            stream_id = keys.get("stream_id", {}).get("S", "")
            if stream_id.startswith(tuple(prefixes)):
                found.setdefault(stream_id, []).append(int(keys["version"]["N"]))
        if not records and not page.get("MillisBehindLatest"):
            break  # caught up (Kinesis may return an empty page while behind: read on)
        iterator = page.get("NextShardIterator")
    return found


def read_range(streams: Any, info: BatchInfo, prefixes: Sequence[str], *, max_pages: int = 10_000,
               kinesis: Any = None) -> dict[str, list[int]]:
    """{stream_id: versions} of the INSERTs of ``prefixes`` in the batch's sequence range."""
    if info.source == "kinesis":
        if kinesis is None:
            raise RedriveError("a Kinesis batch needs a Kinesis client")
        return read_kinesis_range(kinesis, info, prefixes, max_pages=max_pages)
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=info.stream_arn,
            ShardId=info.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info.start,
        )["ShardIterator"]
    except Exception as exc:
        raise RedriveError(f"cannot read {info.shard_id} from {info.start}: {exc}") from exc
    end = int(info.end)
    found: dict[str, list[int]] = {}
    for _ in range(max_pages):
        if not iterator:
            break
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records = page.get("Records", [])
        for record in records:
            body = record.get("dynamodb", {})
            if int(body.get("SequenceNumber", "0")) > end:
                return found
            if record.get("eventName") != "INSERT":
                continue
            keys = body.get("Keys", {})
            stream_id = keys.get("stream_id", {}).get("S", "")
            if stream_id.startswith(tuple(prefixes)):
                found.setdefault(stream_id, []).append(int(keys["version"]["N"]))
        if not records:
            break  # the open shard's end: nothing after what was read
        iterator = page.get("NextShardIterator")
    return found


@dataclass
class Consumer:
    """How one consumer applies streams: ``apply(stream_id, versions) -> events handled``."""

    name: str
    queue_url: str
    prefixes: tuple[str, ...]
    apply: Callable[[str, list[int]], int]


@dataclass
class RedriveResult:
    consumer: str
    batches: int = 0
    redriven: int = 0
    failed: int = 0
    streams: int = 0
    events: int = 0
    skipped: int = 0  # batches left queued because they hold none of the streams asked for
    errors: list[str] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)  # each batch read: its range and streams

    def row(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer, "batches": self.batches, "redriven": self.redriven, "failed": self.failed,
            "skipped": self.skipped, "streams": self.streams, "events": self.events, "errors": self.errors,
            "held": self.held,
        }


def _messages(sqs: Any, queue_url: str, visibility: int) -> Iterator[dict[str, Any]]:
    """Every message of the queue once (received messages stay invisible while we work)."""
    seen: set[str] = set()
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, WaitTimeSeconds=0
        ).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in seen]
        for message in got:  # one left in the queue on purpose (dry run, failed): visible again
            if message["MessageId"] in seen:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def redrive(
    consumer: Consumer,
    sqs: Any,
    streams: Any,
    *,
    dry_run: bool = False,
    visibility: int = 300,
    progress: Callable[[RedriveResult, int], None] | None = None,
    kinesis: Any = None,
    only: Collection[str] | None = None,
) -> RedriveResult:
    """Apply every batch of ``consumer``'s on-failure queue; delete each one applied. With
    ``only``, a batch holding none of those streams is left in the queue as it is (``skipped``)."""
    result = RedriveResult(consumer.name)
    depth = _depth(sqs, consumer.queue_url)
    for message in _messages(sqs, consumer.queue_url, 30 if dry_run else visibility):
        result.batches += 1
        try:
            info = BatchInfo.parse(message["Body"])
            ranges = read_range(streams, info, consumer.prefixes, kinesis=kinesis)
            result.held.append({"message_id": message["MessageId"], "source": info.source, "shard_id": info.shard_id,
                                "start": info.start, "end": info.end, "streams": sorted(ranges)})
            if only is not None and not set(ranges) & set(only):
                result.skipped += 1
                sqs.change_message_visibility(
                    QueueUrl=consumer.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
                if progress is not None:
                    progress(result, max(depth, result.batches))
                continue
            result.streams += len(ranges)
            for stream_id, versions in sorted(ranges.items()):
                result.events += len(versions) if dry_run else consumer.apply(stream_id, sorted(versions))
        except Exception as exc:
            result.failed += 1
            result.errors.append(f"{message['MessageId']}: {exc}")
            sqs.change_message_visibility(
                QueueUrl=consumer.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            if dry_run:
                sqs.change_message_visibility(
                    QueueUrl=consumer.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=consumer.queue_url, ReceiptHandle=message["ReceiptHandle"])
                result.redriven += 1
        if progress is not None:
            progress(result, max(depth, result.batches))
    return result


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))


# -- the consumers' normal paths --------------------------------------------------------------------
def projections_applier(engines: Sequence[Any]) -> Callable[[str, list[int]], int]:
    """Catch each projection up from its checkpoints, in every live generation: exactly once."""
    from cairn.projections.generations import resolve_generations

    def apply(stream_id: str, versions: list[int]) -> int:
        applied = 0
        for engine in engines:
            if not engine.projection.handles(stream_id):
                continue
            outcome = engine.catch_up(stream_id, resolve_generations(engine.client, engine.table).live())
            if not outcome.ok and outcome.parked_now is None:
                raise RedriveError(f"{engine.name}: {stream_id} failed at {outcome.failed_version}: {outcome.error}")
            applied += outcome.applied
        return applied

    return apply


def snapshotter_applier(runtime_for: Callable[[str], Any] | None = None) -> Callable[[str, list[int]], int]:
    from cairn_platform import snapshotter

    def apply(stream_id: str, versions: list[int]) -> int:
        snapshot = (runtime_for or snapshotter._runtime)(snapshotter.aggregate_type(stream_id)).take_snapshot(stream_id)
        return 1 if snapshot is not None else 0

    return apply


def publisher_applier(publisher: Any = None) -> Callable[[str, list[int]], int]:
    def apply(stream_id: str, versions: list[int]) -> int:
        from cairn_platform import publisher as module

        return (publisher or module.publisher()).republish(stream_id, min(versions), max(versions))

    return apply


# -- CLI ----------------------------------------------------------------------------------------------
def _consumers(name: str | None) -> list[str]:
    if not name or name == "all":
        return list(CONSUMERS)
    key = name.strip().replace("-", "_")
    resolved = ALIASES.get(key.lower()) or (key if key in CONSUMERS else None)
    if resolved is None:
        raise ConfigError(f"unknown consumer {name!r}; known: {', '.join([*CONSUMERS, *ALIASES])}")
    return [resolved]


def _build(name: str, args: argparse.Namespace, outputs: Mapping[str, str]) -> Consumer:
    queue = args.queue_url or outputs.get(failed_queue_output(name))
    if not queue:
        raise ConfigError(f"no on-failure queue for {name}: pass --queue-url or run `make dev` (outputs file)")
    for env, key in (("EVENTS_TABLE", "EventsTableName"), ("SNAPSHOT_BUCKET", "SnapshotBucketName"),
                     ("EVENT_BUS_NAME", "EventBusName")):
        if not os.environ.get(env) and outputs.get(key):
            os.environ[env] = outputs[key]
    if name in ("OrdersProjections", "AccountsProjections"):
        from cairn_tools.config import build_engine, resolve

        names = [p for p, spec in PROJECTIONS.items() if spec.consumer == name]
        apply = projections_applier([build_engine(resolve(p, args)) for p in names])
    elif name == "Snapshotter":
        apply = snapshotter_applier()
    else:
        apply = publisher_applier()
    return Consumer(name, queue, CONSUMERS[name], apply)


def main(argv: list[str] | None = None) -> int:
    from cairn_tools.config import add_common_arguments

    parser = argparse.ArgumentParser(prog="python -m cairn_tools redrive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("consumer", nargs="?", default="all",
                        help="OrdersProjections | AccountsProjections | Snapshotter | Publisher, a projection "
                        "(order_view ... = its consumer), or all (default)")
    parser.add_argument("--dry-run", action="store_true", help="show the batches and their streams; change nothing")
    parser.add_argument("--queue-url", help="the on-failure queue (default: <Consumer>FailedQueueUrl in the outputs)")
    parser.add_argument("--stream", action="append", metavar="STREAM_ID",
                        help="redrive only the batches holding this stream (repeatable); the others stay queued")
    add_common_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    outputs = load_outputs(args.outputs)
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or outputs.get("AwsEndpointUrl")
    _prepare_environment(Settings("", "", "", endpoint, None))

    from cairn.aws import client
    from cairn_tools.progress import CountBar

    sqs, streams, kinesis = client("sqs"), client("dynamodbstreams"), client("kinesis")
    rows, status = [], 0
    for name in _consumers(args.consumer):
        consumer = _build(name, args, outputs)
        bar = CountBar(f"redrive {name}{' (dry run)' if args.dry_run else ''}", unit="batches")
        started = time.monotonic()
        result = redrive(consumer, sqs, streams, dry_run=args.dry_run, kinesis=kinesis, only=args.stream,
                         progress=lambda r, total, bar=bar: bar.update(r.batches, total, f"{r.events:,} events"))
        bar.close(result.batches, result.batches, f"{result.events:,} events in {time.monotonic() - started:.1f}s")
        rows.append(result.row())
        for error in result.errors:
            print(f"{name}: {error}", file=sys.stderr)
        if args.dry_run and not args.json:
            for batch in result.held:
                print(f"{name}: {batch['message_id']} {batch['shard_id']} {batch['start']}..{batch['end']}: "
                      f"{', '.join(batch['streams']) or '(no stream of this consumer)'}", file=sys.stderr)
        status = 1 if result.failed else status
    emit(args, rows, ("consumer", "batches", "redriven", "failed", "skipped", "streams", "events"), key="redrives")
    return status


if __name__ == "__main__":
    sys.exit(main())
