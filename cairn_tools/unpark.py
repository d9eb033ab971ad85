"""``python -m cairn_tools unpark <projection> <stream_id|all>``: after fixing the cause (a deploy),
replay a parked stream from the store into every live generation and let it flow again."""

from __future__ import annotations

import argparse
import sys

from cairn_tools.config import add_common_arguments, build_engine, projection_names, resolve
from cairn_tools.output import add_json_argument, emit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools unpark", description=__doc__)
    parser.add_argument("projection", nargs="?", help="order_view | user_orders | analytics | account_view | all")
    parser.add_argument("stream", nargs="?", help="the parked stream id, or 'all' (default: list parked streams)")
    add_common_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args(argv)

    from cairn.projections.maintenance import UnparkError, unpark

    status = 0
    rows: list[dict] = []
    say = (lambda *a, **k: None) if args.json else print
    for name in projection_names(args.projection):
        engine = build_engine(resolve(name, args))
        parked = engine.parking.list()
        if not args.stream:
            for entry in parked:
                rows.append({"projection": name, **entry.to_dict(), "state": "parked"})
                say(f"{name}: {entry.stream_id} parked at version {entry.version} (head {entry.head}): {entry.error}")
            if not parked:
                say(f"{name}: no parked streams")
            continue
        targets = [p.stream_id for p in parked] if args.stream == "all" else [args.stream]
        for stream_id in targets:
            try:
                result = unpark(engine, stream_id)
            except UnparkError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                rows.append({"projection": name, "stream_id": stream_id, "state": "failed", "error": str(exc)})
                status = 1
                continue
            state = "unparked" if result.was_parked else "was not parked; caught up"
            rows.append({"projection": name, "stream_id": stream_id, "state": "unparked" if result.was_parked else
                         "caught_up", "applied": result.applied, "generations": list(result.generations)})
            say(f"{name}: {stream_id} {state}: {result.applied} events applied to generation(s) {result.generations}")
    if args.json:
        emit(args, rows, (), key="streams")
    return status


if __name__ == "__main__":
    sys.exit(main())
