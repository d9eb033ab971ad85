"""Operator tools for Cairn's projections: ``python -m cairn_tools.<rebuild|audit|unpark|status>``.

Run from the repository root (``make rebuild PROJECTION=order_view`` etc.). The runtime code lives
in ``layers/cairn/python`` (the ``cairn`` library) and ``functions`` (the contexts): both are put
on ``sys.path`` here, so the tools run the very projection code the Lambdas run.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "functions", ROOT / "layers" / "cairn" / "python"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

__all__ = ["ROOT"]
