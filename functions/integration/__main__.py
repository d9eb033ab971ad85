"""``python -m integration [--write] [--docs]``: print (or write) schemas/integration-events.json;
``--docs`` rewrites the generated catalogue section of docs/eda.md."""

from __future__ import annotations

import sys

from integration.catalogue import CATALOGUE_END, CATALOGUE_START, SCHEMA_PATH, markdown, render

DOCS_PATH = SCHEMA_PATH.parents[1] / "docs" / "eda.md"


def main(argv: list[str]) -> int:
    if "--docs" in argv:
        text = DOCS_PATH.read_text()
        start, end = text.index(CATALOGUE_START), text.index(CATALOGUE_END) + len(CATALOGUE_END)
        DOCS_PATH.write_text(text[:start] + markdown() + text[end:])
        print(f"updated {DOCS_PATH}")
    if "--write" in argv:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(render())
        print(f"wrote {SCHEMA_PATH}")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
