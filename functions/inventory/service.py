"""Applies an integration event to the inventory: per chunk, read -> decide -> one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from integration import IntegrationEvent, order_quantities
from inventory import domain
from inventory.store import InventoryStore, ReservationChangedError

MAX_ATTEMPTS = 5


class ConcurrentReservationError(RuntimeError):
    """The reservation kept changing under us; the message is retried from the queue."""


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    chunk: int
    action: domain.Action
    applied: bool  # False: a duplicate delivery (already applied)


def handle(store: InventoryStore, event: IntegrationEvent) -> list[ChunkOutcome]:
    intent = domain.INTENTS.get(event.type)
    if intent is None:
        return []
    order = event.data.order
    outcomes = []
    for index, quantities in enumerate(domain.chunks(order_quantities(order))):
        outcomes.append(_apply_chunk(store, event, intent, order.order_id, index, quantities))
    return outcomes


def _apply_chunk(
    store: InventoryStore,
    event: IntegrationEvent,
    intent: domain.Intent,
    order_id: str,
    index: int,
    quantities: dict[str, int],
) -> ChunkOutcome:
    for _ in range(MAX_ATTEMPTS):
        current = store.reservation(order_id, index)
        action = domain.decide(intent, current)
        # a release gives back exactly what the reservation recorded, not what the event says
        held = current.quantities if action is domain.Action.RELEASE and current is not None else quantities
        try:
            applied = store.apply(
                event_id=event.id,
                event_type=event.type,
                order_id=order_id,
                chunk=index,
                action=action,
                quantities=held,
                current=current,
            )
        except ReservationChangedError:
            continue
        return ChunkOutcome(index, action, applied)
    raise ConcurrentReservationError(f"reservation {order_id}/{index} kept changing")
