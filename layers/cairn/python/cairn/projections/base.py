"""What a projection is: a deterministic fold of one stream's events into per-stream state plus
read-model writes. The runtime owns ordering, checkpoints, transactions and generations."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cairn.events import EventEnvelope

__all__ = ["Projection", "Write", "Writes"]


@dataclass(slots=True)
class Write:
    """One item's change. ``kind``: ``put`` (whole item), ``add`` (ADD counters, SET fields),
    ``delete``. ``pk`` is generation-free; the runtime scopes it to the generation written."""

    kind: str
    pk: str
    sk: str
    attrs: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int | Decimal] = field(default_factory=dict)


class Writes:
    """The writes of one stream's events, coalesced per item.

    DynamoDB rejects a transaction that touches an item twice, and a batch of a stream's events
    becomes one transaction: so writes to the same item merge here (puts replace, ADDs sum,
    an ADD after a put updates the put's numbers).
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Write] = {}

    def put(self, pk: str, sk: str, attrs: Mapping[str, Any]) -> None:
        self._by_key[(pk, sk)] = Write("put", pk, sk, dict(attrs))

    def add(
        self,
        pk: str,
        sk: str,
        counters: Mapping[str, int | Decimal],
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """ADD ``counters`` to the item (created if absent) and SET ``fields``."""
        fields = dict(fields or {})
        overlap = set(counters) & set(fields)
        if overlap:
            raise ValueError(f"attributes both counted and set: {sorted(overlap)}")
        current = self._by_key.get((pk, sk))
        if current is None:
            self._by_key[(pk, sk)] = Write("add", pk, sk, fields, dict(counters))
            return
        if current.kind == "delete":  # ADD on an absent item starts from zero
            self._by_key[(pk, sk)] = Write("put", pk, sk, {**fields, **counters})
            return
        if current.kind == "put":
            for name, value in counters.items():
                current.attrs[name] = current.attrs.get(name, 0) + value
            current.attrs.update(fields)
            return
        for name, value in counters.items():
            current.counters[name] = current.counters.get(name, 0) + value
        current.attrs.update(fields)

    def delete(self, pk: str, sk: str) -> None:
        self._by_key[(pk, sk)] = Write("delete", pk, sk)

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Write]:
        return iter(self._by_key.values())


class Projection(ABC):
    """A read model fed by the streams whose id starts with ``stream_prefix``.

    ``apply`` must be deterministic and depend only on its arguments: the live consumer, the
    rebuild and the audit all run it, and exactly-once rests on replaying it from a checkpoint.
    ``state`` is JSON-ready (str/int/Decimal/bool/None/list/dict) and stored with the
    checkpoint; ``apply`` gets a private copy and returns the new state (None: nothing kept).
    """

    name: str = ""
    stream_prefix: str = ""

    def handles(self, stream_id: str) -> bool:
        return stream_id.startswith(self.stream_prefix)

    @abstractmethod
    def apply(self, stream_id: str, state: Any, events: Sequence[EventEnvelope], writes: Writes) -> Any:
        """Fold ``events`` (contiguous versions, ascending) into ``state``; record item writes."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
