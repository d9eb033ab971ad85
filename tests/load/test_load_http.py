"""Many concurrent HTTP clients against the local runtime: the guarantees hold under load.

Each workload raises ``InvariantError`` itself when a guarantee breaks (negative balance,
a gap in versions, an acknowledged command not recorded or recorded twice, an impossible order
history); the asserts below restate the headline ones.
"""

from __future__ import annotations

import pytest

from bench import load

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_one_account_many_clients(base_url: str) -> None:
    figures = load.one_account(base_url, clients=8, seconds=8.0, max_commands=160)
    assert figures["load_one_account_acknowledged"] > 0
    assert figures["load_one_account_lost"] == 0
    # every acknowledged command is one event, and nothing refused left one behind
    assert figures["load_one_account_recorded"] == (
        figures["load_one_account_acknowledged"] + figures["load_one_account_unknown_outcome_recorded"]
    )


def test_one_order_many_clients(base_url: str) -> None:
    figures = load.one_order(base_url, clients=8, seconds=8.0, max_commands=160)
    assert figures["load_one_order_orders"] >= 1
    assert figures["load_one_order_lost"] == 0
    assert figures["load_one_order_recorded"] == figures["load_one_order_acknowledged"]
    # eight clients racing on one order: someone must have lost a race
    assert figures["load_one_order_conflicts"] > 0


def test_many_streams_throughput_and_latency(base_url: str) -> None:
    figures = load.many_streams(base_url, clients=8, seconds=8.0, max_commands=400)
    assert figures["load_many_streams_acknowledged"] == figures["load_many_streams_requests"] > 0
    assert 0 < figures["load_many_streams_p50_ms"] <= figures["load_many_streams_p99_ms"]
    assert figures["load_many_streams_commands_per_s"] > 0
