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

__all__ = ["dynamodb_records", "handle_kinesis"]

logger = logging.getLogger(__name__)


def dynamodb_records(kinesis_records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lambda Kinesis records -> DynamoDB-stream-shaped records (``eventName``, ``dynamodb`` with
    ``Keys``, ``NewImage`` and ``SequenceNumber`` = the Kinesis sequence number).

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


def handle_kinesis(consumer: Any, event: Mapping[str, Any], metrics: Any = None) -> dict[str, Any]:
    """The Lambda handler body for a Kinesis source: ``{"batchItemFailures": [{"itemIdentifier":
    <Kinesis sequence number>}]}`` for each stream that failed (its lowest record: Lambda retries
    the shard from the lowest reported sequence number, so nothing after it is lost)."""
    from cairn.projections.consumer import emit_metrics

    records = dynamodb_records(event.get("Records") or [])
    report, failures = consumer.process(records)
    if metrics is not None:
        emit_metrics(metrics, report)
    logger.info(
        "kinesis batch: %d records, %d applied, %d duplicates, %d gaps repaired, %d failed streams",
        report.records,
        report.events_applied,
        report.duplicates_skipped,
        report.gaps_repaired,
        len(report.failed_streams),
    )
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in sorted(failures, key=_order)]}


def _order(sequence: str) -> int:
    return int(sequence) if sequence.isdigit() else 0
