"""``python -m cairn_tools snapshot <stream_id>... | --grown``: take a snapshot of a stream at its
current version now (what POST /ops/snapshots does), or of every stream that grew since its last
snapshot (what the daily schedule does)."""

from __future__ import annotations

import argparse
import os
import sys

from cairn_tools import ROOT
from cairn_tools.config import ConfigError, _prepare_environment, load_outputs
from cairn_tools.output import add_json_argument, emit


def configure(args: argparse.Namespace) -> None:
    """EVENTS_TABLE / SNAPSHOT_BUCKET / endpoint from flags, environment or the outputs file."""
    outputs = load_outputs(args.outputs)
    events = args.events_table or os.environ.get("EVENTS_TABLE") or outputs.get("EventsTableName")
    bucket = args.bucket or os.environ.get("SNAPSHOT_BUCKET") or outputs.get("SnapshotBucketName")
    if not events or not bucket:
        raise ConfigError("no events table / snapshot bucket: pass --events-table and --bucket, or run `make dev`")
    os.environ["EVENTS_TABLE"], os.environ["SNAPSHOT_BUCKET"] = events, bucket
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or outputs.get("AwsEndpointUrl")
    from cairn_tools.config import Settings

    _prepare_environment(Settings("", "", events, endpoint, None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools snapshot", description=__doc__)
    parser.add_argument("streams", nargs="*", help="stream ids (order-…, account-…)")
    parser.add_argument("--grown", action="store_true", help="every stream whose head is past its snapshot")
    parser.add_argument("--events-table", help="events table (default: EVENTS_TABLE or outputs file)")
    parser.add_argument("--bucket", help="snapshot bucket (default: SNAPSHOT_BUCKET or outputs file)")
    parser.add_argument("--endpoint-url", help="AWS endpoint (default: AWS_ENDPOINT_URL or outputs file)")
    parser.add_argument("--outputs", default=str(ROOT / ".local" / "outputs.json"), help="stack outputs file")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    if not args.streams and not args.grown:
        parser.error("name a stream, or pass --grown")
    configure(args)

    from cairn_platform import snapshotter

    status = 0
    if args.grown:
        from cairn.aws import client

        every = snapshotter.parse_every(os.environ.get("SNAPSHOT_EVERY", "order=50,account=100"))
        kinds = [k for k in every if k in snapshotter.CONTEXT_APPS]
        heads = snapshotter.stream_heads(client("dynamodb"), os.environ["EVENTS_TABLE"], kinds)
        from cairn_tools.progress import CountBar

        bar = CountBar("snapshot --grown", unit="streams")
        counts = snapshotter.snapshot_grown(
            heads, progress=lambda done, total, c: bar.update(done, total, f"{c['taken']:,} taken")
        )
        bar.close(len(heads) - counts["left"], len(heads), f"{counts['taken']:,} taken")
        emit(args, [{"streams": len(heads), **counts}], ("streams", "taken", "current", "failed", "left"), key="sweeps")
        return 1 if counts["failed"] else 0
    rows = []
    for stream_id in args.streams:
        try:
            rows.append({"stream_id": stream_id, "version": snapshotter.snapshot_now(stream_id), "error": None})
        except snapshotter.UnknownStreamError as exc:
            rows.append({"stream_id": stream_id, "version": None, "error": str(exc)})
            status = 1
    emit(args, rows, ("stream_id", "version", "error"), key="snapshots")
    return status


if __name__ == "__main__":
    sys.exit(main())
