"""``python -m cairn_tools.verify``: does the event store prove itself?

Checks every stream: the hash chain from version 1 (every item's content against its hash, every
``prev_hash`` against the event before), contiguity, and the head against everything that saw
the stream elsewhere — projection checkpoints, snapshots and the latest digest in the Object
Lock bucket — so an edited, inserted or removed event, a truncated stream and a stream removed
whole are all reported. Exit status 1 when anything is broken (0: the store is intact).

``--digest`` then writes a new digest (root hash over every stream head, with a count) when the
store verified; that is what the scheduled digest job does in the cloud.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from cairn_tools.config import PROJECTIONS, ConfigError, load_outputs

__all__ = ["LOCAL_ARCHIVE_BUCKET", "VerifyProgress", "VerifySettings", "main", "run"]

LOCAL_ARCHIVE_BUCKET = "cairn-archive-local"  # what `make archive` creates on the local runtime


@dataclass
class VerifyProgress:
    """What the progress bar shows (the fields ProgressBar.render reads)."""

    total_estimate: int | None = None
    scanned: int = 0
    events: int = 0
    streams: int = 0
    rate: float = 0.0
    eta_seconds: float | None = None
    generation: str = "-"


@dataclass(frozen=True)
class VerifySettings:
    events_table: str
    snapshot_bucket: str | None
    digest_bucket: str | None
    read_models: dict[str, str]
    endpoint_url: str | None
    archive_bucket: str | None = None


def resolve(args: argparse.Namespace) -> VerifySettings:
    outputs = load_outputs(args.outputs)
    events = args.events_table or os.environ.get("EVENTS_TABLE") or outputs.get("EventsTableName")
    if not events:
        raise ConfigError("no events table: pass --events-table, set EVENTS_TABLE, or run `make dev`")
    snapshots = args.snapshot_bucket or os.environ.get("SNAPSHOT_BUCKET") or outputs.get("SnapshotBucketName")
    digests = args.digest_bucket or os.environ.get("DIGEST_BUCKET") or outputs.get("DigestBucketName")
    read_models = {}
    for name, spec in PROJECTIONS.items():
        table = os.environ.get(spec.table_env) or outputs.get(spec.output_key)
        if table:
            read_models[name] = table
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or outputs.get("AwsEndpointUrl")
    archive = os.environ.get("ARCHIVE_BUCKET") or outputs.get("ArchiveBucketName") or LOCAL_ARCHIVE_BUCKET
    return VerifySettings(events, snapshots, digests, read_models, endpoint, archive)


def _prepare(settings: VerifySettings) -> None:
    if settings.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = settings.endpoint_url
        os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # a local endpoint takes any credentials
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except Exception:
        return False


def run(
    settings: VerifySettings,
    *,
    write_digest: bool = False,
    segments: int = 4,
    out: TextIO = sys.stdout,
    progress_stream: TextIO | None = None,
    show: int = 50,
) -> int:
    """Verify the store (and write a digest when asked and intact); the exit status."""
    import time

    from cairn.aws import client
    from cairn.events import utc_now_iso
    from cairn.integrity.audit import (
        DigestBucket,
        DigestError,
        Witness,
        build_digest,
        checkpoint_witnesses,
        scan_streams,
        snapshot_witnesses,
        verify_store,
    )
    from cairn_tools.progress import ProgressBar

    _prepare(settings)
    ddb = client("dynamodb")
    s3 = client("s3")
    witnesses: dict[str, list[Witness]] = {}
    for name, table in settings.read_models.items():
        if name not in ("order_view", "account_view"):
            continue  # the per-stream views are the checkpoints that matter (the others share them)
        for stream_id, witness in checkpoint_witnesses(ddb, table, name).items():
            witnesses.setdefault(stream_id, []).append(witness)
    if settings.snapshot_bucket:
        for stream_id, seen in snapshot_witnesses(s3, settings.snapshot_bucket).items():
            witnesses.setdefault(stream_id, []).extend(seen)
    digests = DigestBucket(s3, settings.digest_bucket) if settings.digest_bucket else None
    latest = None
    if digests is not None:
        try:
            latest = digests.latest()
        except DigestError as exc:
            print(f"DIGEST     {exc}", file=out)
            return 1
        if latest is not None:
            for stream_id, witness in DigestBucket.witnesses(*latest).items():
                witnesses.setdefault(stream_id, []).append(witness)

    total = ddb.describe_table(TableName=settings.events_table)["Table"].get("ItemCount") or None
    progress = VerifyProgress(total_estimate=total)
    bar = ProgressBar("verify", stream=progress_stream)
    started = time.monotonic()

    def tick(scanned: int = 0, stream_events: int | None = None) -> None:
        progress.scanned += scanned
        if stream_events is not None:
            progress.streams += 1
            progress.events += stream_events
        elapsed = max(time.monotonic() - started, 1e-6)
        progress.rate = progress.scanned / elapsed
        bar(progress)

    streams = scan_streams(ddb, settings.events_table, segments=segments, on_page=lambda n: tick(n))
    archive_problems: list[tuple[str, str]] = []
    archive_bucket = settings.archive_bucket
    if archive_bucket and _bucket_exists(s3, archive_bucket):  # the archive tier (docs/archive.md)
        from cairn.archive.audit import join_archived
        from cairn.archive.s3 import S3ArchiveStore

        archive_problems = join_archived(S3ArchiveStore(s3, archive_bucket), streams)
    report = verify_store(streams, witnesses, on_stream=lambda n: tick(0, n))
    bar.close(progress)
    for stream_id, problem in archive_problems:
        print(f"BROKEN     {stream_id}: archive: {problem}", file=out)

    for stream_id, result, by in report.problems[:show]:
        seen = f" (seen by {by})" if by else ""
        print(f"BROKEN     {stream_id}: version {result.first_bad_version}: {result.problem}{seen}", file=out)
    if len(report.problems) > show:
        print(f"... and {len(report.problems) - show} more", file=out)
    against = f"; checked against digest {latest[0]}" if latest else "; no digest yet"
    print(
        f"{report.streams:,} streams, {report.events:,} events verified, {len(report.problems)} broken{against}",
        file=out,
    )
    if not report.ok or archive_problems:
        return 1
    if write_digest:
        if digests is None:
            raise ConfigError("no digest bucket: pass --digest-bucket, set DIGEST_BUCKET, or run `make dev`")
        key = digests.put(build_digest(report.heads, utc_now_iso()))
        print(f"digest written: s3://{settings.digest_bucket}/{key}", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools verify", description=__doc__)
    parser.add_argument("--digest", action="store_true", help="write a new digest when the store verifies")
    parser.add_argument("--segments", type=int, default=4, help="parallel scan segments (default 4)")
    parser.add_argument("--show", type=int, default=50, help="problems to print (default 50)")
    parser.add_argument("--events-table", help="events table (default: EVENTS_TABLE or outputs file)")
    parser.add_argument("--snapshot-bucket", help="snapshot bucket (default: SNAPSHOT_BUCKET or outputs file)")
    parser.add_argument("--digest-bucket", help="digest bucket (default: DIGEST_BUCKET or outputs file)")
    parser.add_argument("--endpoint-url", help="AWS endpoint (default: AWS_ENDPOINT_URL or outputs file)")
    parser.add_argument("--outputs", default=None, help="stack outputs file (default .local/outputs.json)")
    args = parser.parse_args(argv)
    if args.outputs is None:
        from cairn_tools import ROOT

        args.outputs = str(ROOT / ".local" / "outputs.json")
    return run(resolve(args), write_digest=args.digest, segments=args.segments, show=args.show)


def _entry() -> Any:  # pragma: no cover - the module's command line
    sys.exit(main())


if __name__ == "__main__":
    _entry()
