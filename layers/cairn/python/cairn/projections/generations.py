"""Which generation of a read model is active (read) and which is being rebuilt (also written).

The meta item ``(_meta, generation)`` holds ``active`` and, during a rebuild, ``building``.
No item means generation 1. Consumers and readers cache it for ``GENERATION_CACHE_SECONDS``
(default 5): a rebuild waits longer than that after announcing ``building`` before it scans, so
every event appended after the scan started reaches a consumer that writes both generations.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from cairn.events import utc_now_iso
from cairn.projections.layout import META_KEY

__all__ = [
    "GenerationConflictError",
    "Generations",
    "abandon_rebuild",
    "begin_rebuild",
    "cache_seconds",
    "clear_generation_cache",
    "read_generations",
    "resolve_generations",
    "switch_generation",
]

DEFAULT_CACHE_SECONDS = 5.0


class GenerationConflictError(RuntimeError):
    """The meta item changed under a rebuild step (another rebuild, or a manual edit)."""


@dataclass(frozen=True, slots=True)
class Generations:
    active: int = 1
    building: int | None = None
    previous: int | None = None
    switched_at: str | None = None

    def live(self) -> tuple[int, ...]:
        """Generations a consumer must write: the active one and the one being built."""
        return (self.active,) if self.building is None else (self.active, self.building)


def cache_seconds() -> float:
    return float(os.environ.get("GENERATION_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))


def read_generations(client: Any, table: str, *, consistent: bool = True) -> Generations:
    item = client.get_item(TableName=table, Key=META_KEY, ConsistentRead=consistent).get("Item")
    if not item:
        return Generations()

    def num(name: str) -> int | None:
        attr = item.get(name)
        return int(attr["N"]) if attr and "N" in attr else None

    return Generations(
        active=num("active") or 1,
        building=num("building"),
        previous=num("previous"),
        switched_at=item.get("switched_at", {}).get("S"),
    )


_cache: dict[str, tuple[float, Generations]] = {}
_cache_lock = threading.Lock()


def resolve_generations(client: Any, table: str, *, ttl: float | None = None) -> Generations:
    """The table's generations, cached per process for ``ttl`` seconds (one GetItem per TTL)."""
    ttl = cache_seconds() if ttl is None else ttl
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(table)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    found = read_generations(client, table, consistent=False)
    with _cache_lock:
        _cache[table] = (now, found)
    return found


def clear_generation_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _conflict(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"


def begin_rebuild(client: Any, table: str) -> tuple[Generations, bool]:
    """Announce ``building = active + 1``; returns (generations, resumed).

    A rebuild already under way (a crashed or concurrent run) is resumed rather than restarted:
    building is idempotent, every write is checkpointed.
    """
    current = read_generations(client, table)
    if current.building is not None:
        return current, True
    target = current.active + 1
    values = {":a": {"N": str(current.active)}, ":b": {"N": str(target)}, ":t": {"S": utc_now_iso()}}
    try:
        client.update_item(
            TableName=table,
            Key=META_KEY,
            UpdateExpression="SET active = :a, building = :b, rebuild_started_at = :t",
            # no meta item yet (generation 1, never rebuilt) or unchanged since we read it
            ConditionExpression="attribute_not_exists(pk) OR (active = :a AND attribute_not_exists(building))",
            ExpressionAttributeValues=values,
        )
    except Exception as exc:
        if _conflict(exc):
            raise GenerationConflictError(f"generation meta of {table} changed; run again") from exc
        raise
    return Generations(active=current.active, building=target, previous=current.previous), False


def switch_generation(client: Any, table: str, expected: Generations) -> Generations:
    """Make the building generation active (readers follow within the cache TTL)."""
    if expected.building is None:
        raise GenerationConflictError("no generation is being built")
    now = utc_now_iso()
    try:
        client.update_item(
            TableName=table,
            Key=META_KEY,
            UpdateExpression="SET active = :b, previous = :a, switched_at = :t REMOVE building",
            ConditionExpression="active = :a AND building = :b",
            ExpressionAttributeValues={
                ":a": {"N": str(expected.active)},
                ":b": {"N": str(expected.building)},
                ":t": {"S": now},
            },
        )
    except Exception as exc:
        if _conflict(exc):
            raise GenerationConflictError(f"generation meta of {table} changed during the rebuild") from exc
        raise
    clear_generation_cache()
    return Generations(active=expected.building, previous=expected.active, switched_at=now)


def abandon_rebuild(client: Any, table: str) -> Generations:
    """Forget the building generation (its items stay until dropped)."""
    client.update_item(TableName=table, Key=META_KEY, UpdateExpression="REMOVE building")
    clear_generation_cache()
    return read_generations(client, table)
