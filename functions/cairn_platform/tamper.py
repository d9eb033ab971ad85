"""Tamper detector: MODIFY and REMOVE records of the events table are never legitimate.

The log only grows (the table's resource policy denies UpdateItem, DeleteItem, BatchWriteItem and
PartiQL mutation to everyone but the break-glass role), so any change or removal of an event item
that still happens — break-glass use, a policy mistake, an overwrite by PutItem (which IAM cannot
require to be conditional) — is reported: a ``TamperDetected`` EMF metric (alarmed) and one
structured log line per record naming the stream and version. The consumer never fails: a
report must not block the stream.

Removals by the archiver (issue 13, docs/archive.md) are recognised by :func:`is_sanctioned_removal`:
the stream's manifest in the archive bucket (``ARCHIVE_BUCKET``) covers the removed version, so
the event is still held, verified, in a segment; they are counted as ``EventsArchived`` instead.
(The table's stream is NEW_IMAGE: a REMOVE record carries only the keys, so coverage is the test;
the archiver's deletes were themselves conditional on the archived hash.)
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


def is_sanctioned_removal(record: Mapping[str, Any], archive: Any = None, manifests: dict[str, Any] | None = None) -> bool:
    """A removal of an archived event: the stream's manifest covers the removed version."""
    if archive is None:
        return False
    try:
        keys = (record.get("dynamodb") or {})["Keys"]
        stream_id = keys["stream_id"]["S"]
        version = int(keys["version"]["N"])
    except (KeyError, TypeError, ValueError):
        return False
    manifests = {} if manifests is None else manifests
    if stream_id not in manifests:
        try:
            manifests[stream_id] = archive.get_manifest(stream_id)
        except Exception:  # the archive unreadable: report the removal (an operator looks)
            logger.exception("cannot read the archive manifest of %s", stream_id)
            manifests[stream_id] = None
    manifest = manifests[stream_id]
    return manifest is not None and 1 <= version <= manifest.archived_through


def _archive_from_env() -> Any:
    bucket = os.environ.get("ARCHIVE_BUCKET")
    if not bucket:
        return None
    from cairn.archive.s3 import S3ArchiveStore
    from cairn.aws import ARCHIVE_READ_CONFIG, client

    return S3ArchiveStore(client("s3", config=ARCHIVE_READ_CONFIG), bucket)


def inspect(records: Sequence[Mapping[str, Any]], archive: Any = None) -> list[dict[str, Any]]:
    """One finding per MODIFY / REMOVE record: {stream_id, version, change, sequence_number}.
    ``archive``: the archive store whose manifests sanction the archiver's removals."""
    findings = []
    manifests: dict[str, Any] = {}
    for record in records:
        change = record.get("eventName")
        if change not in ("MODIFY", "REMOVE"):
            continue
        if change == "REMOVE" and is_sanctioned_removal(record, archive, manifests):
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
    archive = _archive_from_env()
    findings = inspect(records, archive)
    archived = sum(1 for r in records if r.get("eventName") == "REMOVE") - sum(1 for f in findings if f["change"] == "REMOVE")
    if archived:
        metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=archived)
    emit_lag("TamperDetector", batch_lag_seconds(records), 0)  # a detector that falls behind sees late
    for finding in findings:
        logger.error("event item changed behind the store", extra={"tamper": finding, "stream_id": finding["stream_id"]})
    metrics.add_metric(name="TamperDetected", unit=MetricUnit.Count, value=len(findings))
    return {"batchItemFailures": []}
