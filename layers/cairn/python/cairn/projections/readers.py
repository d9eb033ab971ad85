"""Reader side of a read-model table: resolve the active generation, read items of it."""

from __future__ import annotations

from typing import Any

from cairn.projections.codec import from_attr
from cairn.projections.generations import resolve_generations
from cairn.projections.layout import checkpoint_key

__all__ = ["ReadModelTable"]


class ReadModelTable:
    """A read-model table as query handlers see it: always the active generation.

    The generation is cached per process for ``GENERATION_CACHE_SECONDS`` (see
    :mod:`cairn.projections.generations`); reads are eventually consistent unless asked.
    """

    def __init__(self, client: Any, table_name: str, *, consistent: bool = False, cache_seconds: float | None = None):
        self.client = client
        self.table_name = table_name
        self.consistent = consistent
        self.cache_seconds = cache_seconds

    def generation(self) -> int:
        return resolve_generations(self.client, self.table_name, ttl=self.cache_seconds).active

    def stream_state(self, stream_id: str) -> tuple[int, Any] | None:
        """(checkpoint version, state) of a stream in the active generation, or None."""
        item = self.client.get_item(
            TableName=self.table_name,
            Key=checkpoint_key(self.generation(), stream_id),
            ConsistentRead=self.consistent,
        ).get("Item")
        if not item:
            return None
        state = item.get("state")
        return int(item["version"]["N"]), (from_attr(state) if state is not None else None)
