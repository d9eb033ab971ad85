"""How many examples a property test tries: as written, or many more under `make test-deep`."""

from __future__ import annotations

import os

DEEP_FACTOR = 20


def examples(n: int) -> int:
    """``n`` in CI and the developer loop; ``n * DEEP_FACTOR`` with HYPOTHESIS_PROFILE=deep."""
    return n * DEEP_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else n
