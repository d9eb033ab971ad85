"""The JSON Schema of every stored event type, committed as ``schemas/events.json``.

One section per context (``{"orders": {type: ...}, ...}``): type names are unique within a
context's registry, not across contexts (orders and payments both have a ``PaymentFailed``).

Stored events are never rewritten, so a payload model may change only with a ``schema_version``
bump and an upcaster; ``tests/unit/test_event_schemas.py`` compares this export with the
committed file (``cairn.events.schemas.check_schemas``).

    python -m cairn_platform.event_schemas            # rewrite schemas/events.json
    python -m cairn_platform.event_schemas --check    # exit 1 and list problems if unsafe/stale
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from cairn.events import EventRegistry
from cairn.events.schemas import check_schemas, dumps_schemas, export_schemas

# Every context that appends events to the events table -> its composition root.
CONTEXTS = {"orders": "orders.app", "accounts": "accounts.app", "payments": "payments.app", "catalog": "catalog.app"}
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "schemas" / "events.json"


def registries() -> dict[str, EventRegistry]:
    return {context: importlib.import_module(module).registry for context, module in CONTEXTS.items()}


def current() -> dict[str, dict[str, Any]]:
    return {context: export_schemas(registry) for context, registry in registries().items()}


def problems(committed: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> list[str]:
    """``check_schemas`` per context, plus a context that disappeared."""
    found = []
    for context in sorted(committed):
        if context not in now:
            found.append(f"{context}: context removed, but its stored events still exist")
            continue
        found.extend(f"{context}.{problem}" for problem in check_schemas(committed[context], now[context]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    now = current()
    if args.check:
        committed = json.loads(args.path.read_text())
        found = problems(committed, now)
        if not found and committed != now:
            found = [f"{args.path} is stale: regenerate with python -m cairn_platform.event_schemas"]
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(dumps_schemas(now))
    print(f"wrote {sum(map(len, now.values()))} event schemas to {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
