"""``python -m cairn_tools.status [projection|all]``: what GET /ops/projections shows."""

from __future__ import annotations

import argparse
import json
import sys

from cairn_tools.config import add_common_arguments, build_engine, projection_names, resolve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools.status", description=__doc__)
    parser.add_argument("projection", nargs="?", default="all")
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    from cairn.projections.status import projection_status

    result = []
    for name in projection_names(args.projection):
        engine = build_engine(resolve(name, args))
        result.extend(projection_status(engine.client, {name: engine.table}))
    print(json.dumps({"projections": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
