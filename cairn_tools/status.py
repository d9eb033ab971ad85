"""``python -m cairn_tools status [projection|all]``: what GET /ops/projections shows (a table, or
``--json``): generation, applied events, lag (events and seconds), parked streams, failed batches."""

from __future__ import annotations

import argparse
import sys

from cairn_tools.config import add_common_arguments, build_engine, projection_names, resolve
from cairn_tools.output import add_json_argument, emit

COLUMNS = (
    "name", "generation", "streams", "events_applied", "lag_events", "lag_seconds", "parked_streams", "failed_batches",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools status", description=__doc__)
    parser.add_argument("projection", nargs="?", default="all")
    add_common_arguments(parser)
    add_json_argument(parser)
    args = parser.parse_args(argv)

    from cairn.projections.status import projection_status

    result = []
    for name in projection_names(args.projection):
        settings = resolve(name, args)
        engine = build_engine(settings)
        result.extend(
            projection_status(
                engine.client,
                {name: engine.table},
                events_table=settings.events_table,
                failed_queues={name: settings.failed_queue_url} if settings.failed_queue_url else None,
            )
        )
    emit(args, result, COLUMNS, key="projections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
