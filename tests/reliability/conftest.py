"""Reliability suites: fault injection on in-process moto, delivery chaos, stateful models.

botocore's standard retry mode backs off for up to seconds between attempts; the suites inject
thousands of faults, so the backoff is made instant here (the retries themselves still happen:
that is what is under test).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Cairn")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from tests.reliability.faults import FaultInjector  # noqa: E402
from tests.reliability.world import World  # noqa: E402


@pytest.fixture(autouse=True)
def instant_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retries, drop their sleeps (and the runtime's jittered waits)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def new_world() -> Callable[[], World]:
    """``with new_world() as world:`` — a fresh cloud per run (tests loop over fault points)."""
    return lambda: World(FaultInjector())


@pytest.fixture
def world() -> Iterator[World]:
    with World(FaultInjector()) as built:
        yield built
