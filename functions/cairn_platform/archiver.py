"""Archiver (scheduled, issue 13): move old events into verified S3 segments, then remove them.

Policy per aggregate type from ``ARCHIVE_POLICY`` (``order=90,account=90``: days; a type not
listed is never archived), each also needing a verified snapshot below which the events go
(``ARCHIVE_REQUIRE_SNAPSHOT``, default on), never younger than ``ARCHIVE_SETTLE_SECONDS`` (45).
The steps and why they are safe to crash and repeat:
:mod:`cairn.archive.archiver`, docs/archive.md. The role is the only one (besides break glass)
that the events table lets ``DeleteItem`` (docs/deploy.md, threat model).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["handler", "parse_policy"]

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))


def parse_policy(text: str) -> dict[str, float]:
    """``order=90,account=30`` -> {"order": 90.0, "account": 30.0}."""
    policy: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, days = part.partition("=")
        policy[kind.strip()] = float(days)
    return policy


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from cairn.archive.archiver import ArchivePolicy, Archiver
    from cairn.archive.s3 import S3ArchiveStore
    from cairn.aws import client
    from cairn.integrity.audit import snapshot_witnesses

    s3 = client("s3")
    require = os.environ.get("ARCHIVE_REQUIRE_SNAPSHOT", "1") != "0"
    settle = float(os.environ.get("ARCHIVE_SETTLE_SECONDS", "45"))
    policies = {
        kind: ArchivePolicy(older_than_days=days, require_snapshot=require, settle_seconds=settle)
        for kind, days in parse_policy(os.environ.get("ARCHIVE_POLICY", "order=90,account=90")).items()
    }
    heads: dict[str, tuple[int, str]] = {}
    bucket = os.environ.get("SNAPSHOT_BUCKET")
    if require and bucket:
        for stream_id, seen in snapshot_witnesses(s3, bucket).items():
            best = max(seen, key=lambda w: w.version)
            if best.hash:
                heads[stream_id] = (best.version, best.hash)
    archiver = Archiver(
        client("dynamodb"),
        os.environ["EVENTS_TABLE"],
        S3ArchiveStore(s3, os.environ["ARCHIVE_BUCKET"]),
        policies=policies,
        snapshot_of=heads.get,
    )
    report = archiver.run(sorted(heads) if require else None)
    metrics.add_metric(name="EventsArchivedByArchiver", unit=MetricUnit.Count, value=report.events_archived)
    metrics.add_metric(name="ArchiveFailures", unit=MetricUnit.Count, value=len(report.errors))
    result = {"archived": report.events_archived, "removed": report.items_deleted, "failed": len(report.errors)}
    logger.info("archive run", extra=result)
    return result
