"""Terminal output of the tools: an aligned table for people, ``--json`` for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["add_json_argument", "emit", "table"]


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table (numbers right-aligned), header underlined."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), int | float) for row in rows) and bool(rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def emit(
    args: argparse.Namespace,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    key: str,
    stream: TextIO | None = None,
) -> None:
    """``{"<key>": rows}`` as JSON with ``--json``, else the table."""
    stream = stream or sys.stdout
    if getattr(args, "json", False):
        stream.write(json.dumps({key: list(rows)}, indent=2, default=str) + "\n")
    else:
        stream.write(table(rows, columns) + "\n")
