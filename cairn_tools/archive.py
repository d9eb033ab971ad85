"""``python -m cairn_tools archive``: move old events to the S3 archive tier now (what the
scheduled archiver Lambda does), per the policy (docs/archive.md).

``--older-than-days N`` (``make archive OLDER_THAN_DAYS=N``): events older than N days *and*
below a verified snapshot; ``0`` archives everything a verified snapshot covers, whatever its
age (beyond the settle time that keeps warm writers safe, ``--settle-seconds``).
"""

from __future__ import annotations

import argparse
import os
import sys

from cairn_tools import ROOT
from cairn_tools.config import ConfigError, Settings, _prepare_environment, load_outputs
from cairn_tools.output import add_json_argument, emit

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from cairn_tools.verify import LOCAL_ARCHIVE_BUCKET

    parser = argparse.ArgumentParser(prog="python -m cairn_tools archive", description=__doc__)
    parser.add_argument("streams", nargs="*", help="only these streams (default: every stream)")
    parser.add_argument("--older-than-days", type=float, default=float(os.environ.get("OLDER_THAN_DAYS") or 90))
    parser.add_argument("--no-snapshot", action="store_true", help="archive by age alone (no snapshot needed)")
    parser.add_argument("--settle-seconds", type=float, default=45.0, help="never archive younger events (default 45)")
    parser.add_argument("--segment-events", type=int, default=1000, help="events per segment")
    parser.add_argument("--events-table", help="events table (default: EVENTS_TABLE or outputs file)")
    parser.add_argument("--bucket", help="archive bucket (default: ARCHIVE_BUCKET, outputs, or a local one)")
    parser.add_argument("--snapshot-bucket", help="snapshot bucket (default: SNAPSHOT_BUCKET or outputs file)")
    parser.add_argument("--endpoint-url", help="AWS endpoint (default: AWS_ENDPOINT_URL or outputs file)")
    parser.add_argument("--outputs", default=str(ROOT / ".local" / "outputs.json"), help="stack outputs file")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    outputs = load_outputs(args.outputs)
    events = args.events_table or os.environ.get("EVENTS_TABLE") or outputs.get("EventsTableName")
    if not events:
        raise ConfigError("no events table: pass --events-table, set EVENTS_TABLE, or run `make dev`")
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or outputs.get("AwsEndpointUrl")
    bucket = args.bucket or os.environ.get("ARCHIVE_BUCKET") or outputs.get("ArchiveBucketName")
    snapshots = args.snapshot_bucket or os.environ.get("SNAPSHOT_BUCKET") or outputs.get("SnapshotBucketName")
    _prepare_environment(Settings("", "", events, endpoint, None))

    from cairn.archive.archiver import ArchivePolicy, Archiver
    from cairn.archive.s3 import S3ArchiveStore
    from cairn.aws import client

    s3 = client("s3")
    if bucket is None:
        if not endpoint:
            raise ConfigError("no archive bucket: pass --bucket or set ARCHIVE_BUCKET")
        bucket = LOCAL_ARCHIVE_BUCKET  # the local runtime: a bucket of its own on the moto server
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception:
            s3.create_bucket(Bucket=bucket)
    heads: dict[str, tuple[int, str]] = {}
    if snapshots and not args.no_snapshot:
        from cairn.integrity.audit import snapshot_witnesses

        for stream_id, seen in snapshot_witnesses(s3, snapshots).items():
            best = max(seen, key=lambda w: w.version)
            if best.hash:
                heads[stream_id] = (best.version, best.hash)
    policy = ArchivePolicy(
        older_than_days=args.older_than_days,
        require_snapshot=not args.no_snapshot,
        settle_seconds=args.settle_seconds,
        segment_events=args.segment_events,
    )
    archiver = Archiver(client("dynamodb"), events, S3ArchiveStore(s3, bucket), default=policy, snapshot_of=heads.get)
    report = archiver.run(args.streams or None)
    rows = [
        {
            "stream": s.stream_id,
            "archived_through": s.archived_through,
            "archived": s.events_archived,
            "removed": s.items_deleted,
            "error": s.error or "",
        }
        for s in report.streams
        if s.events_archived or s.items_deleted or s.error
    ]
    emit(args, rows, ("stream", "archived_through", "archived", "removed", "error"), key="streams")
    print(
        f"{report.events_archived:,} events archived to s3://{bucket}, {report.items_deleted:,} items removed, "
        f"{len(report.errors)} streams failed",
        file=sys.stderr,
    )
    return 1 if report.errors else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
