"""The benchmark suites' own guarantees, as tests: what they measure must stay correct.

``projection_calls`` checks every read model against the fold of the store after each batch and
raises on a failure report; ``side_by_side`` counts lost writes per library on one moto server.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_projection_batches_are_applied_correctly_and_meet_the_call_goal() -> None:
    from bench import projection_calls

    figures = projection_calls.run()  # raises if a view differs from the fold of its events
    # shared reads and transactions (docs/projections.md): a handful of calls per 100-record batch,
    # never one per stream — per-stream commits would be >= 0.11 (accounts) / 0.78 (orders)
    assert figures["projection_calls_per_event_accounts"] <= 0.05
    assert figures["projection_calls_per_event_orders"] <= 0.1
    assert figures["projection_calls_per_event"] <= 0.2


def test_cairn_loses_no_acknowledged_write_where_the_eventsourcing_dynamodb_adapter_does() -> None:
    from bench import side_by_side

    figures = side_by_side.run()
    for backend in ("mem", "ddb"):
        prefix = f"side_cairn_{backend}_concurrent"
        assert figures[f"{prefix}_lost"] == 0
        assert figures[f"{prefix}_duplicated"] == 0
        assert figures[f"{prefix}_recorded"] == figures[f"{prefix}_acknowledged"] > 0
    assert figures["side_cairn_ddb_calls_per_command_cold"] == 3
    assert figures["side_pyes_popo_concurrent_lost"] == 0
    # the adapter's unconditional BatchWriteItem: a race on one aggregate overwrites events
    assert figures["side_pyes_ddb_concurrent_lost"] > 0
