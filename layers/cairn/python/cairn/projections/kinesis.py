"""Kinesis Data Streams for DynamoDB -> the stream records the projection engine takes.

The fan-out decided in docs/decisions.md (issue 18): the events table replicates its changes to a
Kinesis data stream, and each consumer reads it through its own enhanced fan-out consumer. A Lambda
Kinesis event carries each change as base64 JSON (``recordFormat: application/json``) with the
same ``dynamodb.Keys`` / ``dynamodb.NewImage`` as a DynamoDB Streams record, but without a
``SequenceNumber``: the Kinesis sequence number takes its place, so a stream that fails is reported
by the Kinesis record Lambda must retry from (``batchItemFailures[].itemIdentifier``).

Kinesis may deliver a change twice and out of order, across shards too (AWS: "the same item
notifications might appear more than once ... in a different order"); the engine never relied on
arrival order: it orders by version, skips duplicates and repairs gaps from the store.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["as_stream_event", "dynamodb_records", "is_kinesis_event", "kinesis_record"]

logger = logging.getLogger(__name__)


def dynamodb_records(kinesis_records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lambda Kinesis records -> DynamoDB-stream-shaped records (``eventName``, ``dynamodb`` with
    ``Keys``, ``NewImage``, ``ApproximateCreationDateTime`` in seconds and ``SequenceNumber`` = the
    Kinesis sequence number).

    A record whose data is not a DynamoDB change (undecodable) is kept with ``eventName`` None, so
    :func:`cairn.projections.consumer.group_records` skips it, and it is logged.
    """
    out: list[dict[str, Any]] = []
    for record in kinesis_records:
        kinesis = record.get("kinesis") or {}
        sequence = str(kinesis.get("sequenceNumber", ""))
        try:
            change = json.loads(base64.b64decode(kinesis["data"]))
            body = dict(change["dynamodb"])
            name = change.get("eventName")
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("Kinesis record %s is not a DynamoDB change: %s", sequence or record.get("eventID"), exc)
            out.append({"eventID": record.get("eventID"), "eventName": None, "dynamodb": {"SequenceNumber": sequence}})
            continue
        body["SequenceNumber"] = sequence
        created = body.get("ApproximateCreationDateTime")
        if isinstance(created, int | float):
            # Kinesis for DynamoDB writes milliseconds; the DynamoDB Streams shape (and the lag
            # metrics read from it) is epoch seconds.
            body["ApproximateCreationDateTime"] = created / 1000
        out.append(
            {
                "eventID": change.get("eventID") or record.get("eventID"),
                "eventName": name,
                "eventSource": "aws:dynamodb",
                "eventSourceARN": record.get("eventSourceARN"),
                "dynamodb": body,
            }
        )
    return out


def kinesis_record(
    stream_record: Mapping[str, Any], *, sequence_number: str, table_name: str, stream_arn: str, shard: int = 0
) -> dict[str, Any]:
    """The inverse of :func:`dynamodb_records`: a DynamoDB Streams record as Kinesis Data Streams
    for DynamoDB delivers the same change to Lambda (base64 JSON, partition key = the item's
    ``stream_id``, ``ApproximateCreationDateTime`` in milliseconds). The local runtime needs this
    to forward changes (moto does not replicate a table to Kinesis); tests use it to build events."""
    body = dict(stream_record.get("dynamodb") or {})
    body.pop("SequenceNumber", None)
    body.pop("StreamViewType", None)
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, int | float):
        body["ApproximateCreationDateTime"] = int(created * 1000)
    else:
        body.pop("ApproximateCreationDateTime", None)
    change = {
        "awsRegion": stream_record.get("awsRegion", "us-east-1"),
        "eventID": stream_record.get("eventID"),
        "eventName": stream_record.get("eventName"),
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table_name,
        "dynamodb": body,
        "eventSource": "aws:dynamodb",
    }
    partition_key = (body.get("Keys") or {}).get("stream_id", {}).get("S", "")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(json.dumps(change, separators=(",", ":")).encode()).decode(),
            "approximateArrivalTimestamp": (body.get("ApproximateCreationDateTime") or 0) / 1000,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-{shard:012d}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "eventSourceARN": stream_arn,
    }


def is_kinesis_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records") or []
    return bool(records) and records[0].get("eventSource") == "aws:kinesis"


def as_stream_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Lambda event from either source in the DynamoDB Streams shape: a Kinesis event is
    converted (:func:`dynamodb_records`), a DynamoDB Streams event is returned as it is. A stream
    consumer that starts with this runs unchanged on both sources, and its partial-batch response
    (``itemIdentifier`` = ``dynamodb.SequenceNumber``) names the Kinesis record when the source is
    Kinesis, which is what Lambda retries from."""
    if not is_kinesis_event(event):
        return event
    return {**event, "Records": dynamodb_records(event["Records"])}
