"""``python -m integration [--write]``: print (or write) schemas/integration-events.json."""

from __future__ import annotations

import sys

from integration.catalogue import SCHEMA_PATH, render


def main(argv: list[str]) -> int:
    if "--write" in argv:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(render())
        print(f"wrote {SCHEMA_PATH}")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
