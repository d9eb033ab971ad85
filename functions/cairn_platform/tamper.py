"""Tamper detector: MODIFY and REMOVE records of the events table are never legitimate.

The log only grows (the table's resource policy denies UpdateItem, DeleteItem, BatchWriteItem and
PartiQL mutation to everyone but the break-glass role), so any change or removal of an event item
that still happens — break-glass use, a policy mistake, an overwrite by PutItem (which IAM cannot
require to be conditional) — is reported: a ``TamperDetected`` EMF metric (alarmed) and one
structured log line per record naming the stream and version. The consumer never fails: a
report must not block the stream.

Hook for the archiver (not built yet): removals the archiver makes after writing a verified S3
segment will be recognised by :func:`is_sanctioned_removal` (e.g. the segment's manifest lists
the stream and version) and counted as ``EventsArchived`` instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cairn.lag import batch_lag_seconds, emit_lag

__all__ = ["handler", "inspect", "is_sanctioned_removal"]

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))


def is_sanctioned_removal(record: Mapping[str, Any]) -> bool:
    """A removal the archiver made for an archived event (the hook: no archiver yet, so none)."""
    return False


def inspect(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One finding per MODIFY / REMOVE record: {stream_id, version, change, sequence_number}."""
    findings = []
    for record in records:
        change = record.get("eventName")
        if change not in ("MODIFY", "REMOVE"):
            continue
        if change == "REMOVE" and is_sanctioned_removal(record):
            continue
        body = record.get("dynamodb") or {}
        keys = body.get("Keys") or {}
        try:
            stream_id = keys["stream_id"]["S"]
            version = int(keys["version"]["N"])
        except (KeyError, TypeError, ValueError):
            stream_id, version = "?", None
        identity = record.get("userIdentity") or {}
        findings.append(
            {
                "stream_id": stream_id,
                "version": version,
                "change": change,
                "sequence_number": body.get("SequenceNumber"),
                "principal": identity.get("principalId"),
            }
        )
    return findings


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    findings = inspect(records)
    emit_lag("TamperDetector", batch_lag_seconds(records), 0)  # a detector that falls behind sees late
    for finding in findings:
        logger.error("event item changed behind the store", extra={"tamper": finding, "stream_id": finding["stream_id"]})
    metrics.add_metric(name="TamperDetected", unit=MetricUnit.Count, value=len(findings))
    return {"batchItemFailures": []}
