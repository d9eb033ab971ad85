"""``python -m cairn_tools audit <projection>``: recompute the read model from the event store and
print every difference (exit status 1 if there is any; 0 differences expected)."""

from __future__ import annotations

import argparse
import sys

from cairn_tools.config import add_common_arguments, build_engine, projection_names, resolve
from cairn_tools.output import add_json_argument, emit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools audit", description=__doc__)
    parser.add_argument("projection", nargs="?", help="order_view | user_orders | analytics | account_view | all")
    parser.add_argument("--generation", type=int, help="audit this generation (default: the active one)")
    parser.add_argument("--segments", type=int, default=4, help="parallel scan segments (default 4)")
    parser.add_argument("--show", type=int, default=20, help="differences to print (default 20)")
    parser.add_argument("--strict", action="store_true", help="streams behind the store count as differences")
    add_common_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args(argv)

    from cairn.projections.maintenance import audit

    status = 0
    rows = []
    for name in projection_names(args.projection):
        report = audit(build_engine(resolve(name, args)), generation=args.generation, segments=args.segments)
        rows.append({
            "projection": name, "generation": report.generation, "streams": report.streams,
            "events": report.events, "items": report.items, "differences": len(report.differences),
            "behind": len(report.behind), "first_differences": [str(d) for d in report.differences[: args.show]],
        })
        if report.differences or (args.strict and report.behind):
            status = 1
        if args.json:
            continue
        for difference in report.differences[: args.show]:
            print(difference)
        if len(report.differences) > args.show:
            print(f"... and {len(report.differences) - args.show} more")
        for stream_id, checkpoint, head in report.behind[: args.show]:
            print(f"behind     {stream_id}: applied up to {checkpoint}, store has {head}")
        print(
            f"{name} (generation {report.generation}): {report.streams:,} streams, {report.events:,} events, "
            f"{report.items:,} items checked, {len(report.differences)} differences, "
            f"{len(report.behind)} streams behind the store"
        )
    if args.json:
        emit(args, rows, (), key="audits")
    return status


if __name__ == "__main__":
    sys.exit(main())
