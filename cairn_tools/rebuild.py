"""``python -m cairn_tools rebuild <projection>``: build generation g+1 next to the live one and
switch readers to it when it has caught up (no downtime; see docs/projections.md)."""

from __future__ import annotations

import argparse
import sys

from cairn_tools.config import add_common_arguments, build_engine, projection_names, resolve
from cairn_tools.output import add_json_argument, emit
from cairn_tools.progress import ProgressBar, format_duration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools rebuild", description=__doc__)
    parser.add_argument("projection", nargs="?", help="order_view | user_orders | analytics | account_view | all")
    parser.add_argument("--segments", type=int, default=4, help="parallel scan segments (default 4)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        help="wait after announcing the new generation and before dropping the old one "
        "(default: GENERATION_CACHE_SECONDS + 5)",
    )
    parser.add_argument("--keep-previous", action="store_true", help="keep the old generation's items")
    parser.add_argument("--catch-up-timeout", type=float, default=120.0, help="seconds to wait for g+1 to catch up")
    add_common_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args(argv)

    from cairn.projections.maintenance import Rebuilder, RebuildError

    status = 0
    rows = []
    for name in projection_names(args.projection):
        engine = build_engine(resolve(name, args))
        bar = ProgressBar(f"rebuild {name}")
        last = []

        def show(progress, bar=bar, last=last):
            last[:] = [progress]
            bar(progress)

        rebuilder = Rebuilder(
            engine,
            segments=args.segments,
            settle_seconds=args.settle_seconds,
            catch_up_timeout=args.catch_up_timeout,
            drop_previous=not args.keep_previous,
            on_progress=show,
            between_phases=lambda phase, name=name: print(f"{name}: {phase}", file=sys.stderr),
        )
        try:
            result = rebuilder.run()
        except RebuildError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            status = 1
            continue
        if last:
            bar.close(last[0])
        rows.append({
            "projection": name, "previous": result.previous, "generation": result.generation,
            "resumed": result.resumed, "events": result.events, "streams": result.streams,
            "parked": result.parked, "seconds": round(result.seconds, 3), "dropped_items": result.dropped_items,
        })
        if args.json:
            continue
        print(
            f"{name}: generation {result.previous} -> {result.generation}"
            f"{' (resumed)' if result.resumed else ''}: {result.events:,} events applied, "
            f"{result.streams:,} streams, {result.parked} parked, {format_duration(result.seconds)}"
            + (f", {result.dropped_items:,} old items dropped" if result.dropped_items else "")
        )
    if args.json:
        emit(args, rows, (), key="rebuilds")
    return status


if __name__ == "__main__":
    sys.exit(main())
