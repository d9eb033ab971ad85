"""Projection status for ``GET /ops/projections`` and the tools.

Per projection: the active generation, how many streams and events it has applied (sharded
counters written in the same transactions as the checkpoints, so exact), its parked streams and
``lag_events``. Lag here is what the projection *knows* it has not applied: events of parked
streams (``head - version + 1`` each). Events not yet delivered to the consumer are measured by
Lambda's ``IteratorAge`` metric, not here. While a rebuild runs, ``building`` describes the new
generation; its ``lag_events`` is how many applied events it still lacks compared with the
active one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cairn.projections.generations import read_generations
from cairn.projections.layout import STATS_SHARDS, stats_key
from cairn.projections.parking import Parking

__all__ = ["generation_stats", "projection_status"]


def generation_stats(client: Any, table: str, generation: int) -> dict[str, int]:
    """Sum of the generation's counter shards: ``streams`` and ``events_applied``."""
    keys = [stats_key(generation, shard) for shard in range(STATS_SHARDS)]
    totals = {"streams": 0, "events_applied": 0}
    pending: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    while pending:
        response = client.batch_get_item(RequestItems=pending)
        for item in response.get("Responses", {}).get(table, ()):
            for name in totals:
                if name in item:
                    totals[name] += int(item[name]["N"])
        pending = response.get("UnprocessedKeys") or {}
    return totals


def projection_status(client: Any, tables: Mapping[str, str], *, parked_limit: int = 50) -> list[dict[str, Any]]:
    """``[{name, generation, streams, events_applied, lag_events, parked_streams, ...}]``.

    ``tables`` maps projection name -> read-model table name, e.g. ``{"order_view":
    os.environ["ORDER_VIEW_TABLE"], ...}``. Extra fields: ``parked`` (up to ``parked_limit``
    parked streams with version, head, error) and ``building`` (None unless a rebuild runs).
    """
    result = []
    for name, table in tables.items():
        generations = read_generations(client, table)
        stats = generation_stats(client, table, generations.active)
        parked = Parking(client, table, name).list()
        parked_lag = sum(p.lag_events for p in parked)
        entry: dict[str, Any] = {
            "name": name,
            "generation": generations.active,
            "streams": stats["streams"],
            "events_applied": stats["events_applied"],
            "lag_events": parked_lag,
            "parked_streams": len(parked),
            "parked": [p.to_dict() for p in parked[:parked_limit]],
            "building": None,
        }
        if generations.building is not None:
            building = generation_stats(client, table, generations.building)
            entry["building"] = {
                "generation": generations.building,
                "streams": building["streams"],
                "events_applied": building["events_applied"],
                "lag_events": max(0, stats["events_applied"] - building["events_applied"]),
            }
        result.append(entry)
    return result
