"""Load suites: a local runtime per module (``bench.load.local_runtime``: a fresh ``python -m local``
in a temp state dir, or ``CAIRN_E2E_OUTPUTS`` to use a running ``make dev``). Module scope: it is
stopped as soon as the load tests are done instead of idling through the rest of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    from bench.load import local_runtime

    with local_runtime() as base:
        yield base
