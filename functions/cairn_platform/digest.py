"""Digest job (scheduled): verify every stream's chain and write the digest of their heads.

The digest — a root hash over every stream head, with the count — goes to the Object Lock bucket
(compliance mode: nobody can change or delete it before its retention ends). ``make verify``
checks the store against the latest digest, so rewriting history the digest saw, removing a
stream's newest events or a whole stream is caught. A store that does not verify gets no new
digest (it would bless the damage): ``IntegrityViolations`` is emitted instead (alarmed).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["handler", "run"]

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))


def run(ddb: Any, s3: Any, events_table: str, digest_bucket: str, archive_bucket: str | None = None) -> dict[str, Any]:
    from cairn.events import utc_now_iso
    from cairn.integrity.audit import DigestBucket, build_digest, scan_streams, verify_store

    digests = DigestBucket(s3, digest_bucket)
    latest = digests.latest()
    witnesses = {s: [w] for s, w in DigestBucket.witnesses(*latest).items()} if latest else {}
    streams = scan_streams(ddb, events_table)
    archive_problems: list[tuple[str, str]] = []
    if archive_bucket:  # archived prefixes join the chain (docs/archive.md)
        from cairn.archive.audit import join_archived
        from cairn.archive.s3 import S3ArchiveStore

        archive_problems = join_archived(S3ArchiveStore(s3, archive_bucket), streams)
        for stream_id, problem in archive_problems:
            logger.error("archived prefix does not verify", extra={"stream_id": stream_id, "problem": problem})
    report = verify_store(streams, witnesses)
    for stream_id, result, _ in report.problems:
        logger.error(
            "stream does not verify",
            extra={"stream_id": stream_id, "first_bad_version": result.first_bad_version, "problem": result.problem},
        )
    if not report.ok or archive_problems:
        return {"written": None, "streams": report.streams, "broken": len(report.problems) + len(archive_problems)}
    key = digests.put(build_digest(report.heads, utc_now_iso()))
    return {"written": key, "streams": report.streams, "broken": 0}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from cairn.aws import client

    result = run(
        client("dynamodb"),
        client("s3"),
        os.environ["EVENTS_TABLE"],
        os.environ["DIGEST_BUCKET"],
        os.environ.get("ARCHIVE_BUCKET") or None,
    )
    metrics.add_metric(name="IntegrityViolations", unit=MetricUnit.Count, value=result["broken"])
    logger.info("digest", extra=result)
    return result
