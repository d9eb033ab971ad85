"""The benchmark suites' own guarantees, as tests: what they measure must stay correct.

``projection_calls`` checks every read model against the fold of the store after each batch and
raises on a failure report; ``side_by_side`` counts lost writes per library on one moto server.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_projection_batches_are_applied_correctly_and_accounts_meet_the_call_goal() -> None:
    from bench import projection_calls

    figures = projection_calls.run()  # raises if a view differs from the fold of its events
    assert figures["projection_calls_per_event_accounts"] <= 0.2
    # one BatchGetItem and one transaction per stream, per projection: the shape the docs explain
    assert figures["projection_calls_per_event_accounts"] == pytest.approx((1 + 10) / 100)
    assert figures["projection_calls_per_event_orders"] == pytest.approx(3 * (1 + 25) / 100)


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
