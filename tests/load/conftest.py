"""Load suites: one local runtime for the session (``bench.load.local_runtime``: a fresh
``python -m local`` in a temp state dir, or ``CAIRN_E2E_OUTPUTS`` to use a running ``make dev``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    from bench.load import local_runtime

    with local_runtime() as base:
        yield base
