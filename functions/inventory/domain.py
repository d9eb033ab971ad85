"""Inventory reservations: reserve on OrderCreated, release on OrderCancelled / PaymentFailed.

Out-of-order tolerant by design: each order's reservation is a tiny state machine
(absent -> RESERVED -> RELEASED, or absent -> RELEASED when the release arrives first). RELEASED
is final, so a late OrderCreated after its release reserves nothing, and a release gives back
exactly what the reservation recorded, once. Pure: decisions only, the store applies them.

An order's SKUs are split into chunks of at most ``CHUNK_SIZE`` so each chunk's reservation,
its SKU counters and its dedupe record fit one DynamoDB transaction (100 items); chunks are
derived from the order lines, which every event of the order carries identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_TRANSACT_ITEMS = 100
CHUNK_SIZE = MAX_TRANSACT_ITEMS - 2  # + the reservation record + the dedupe record


class Intent(StrEnum):
    RESERVE = "reserve"
    RELEASE = "release"


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    RELEASED = "RELEASED"


class Action(StrEnum):
    RESERVE = "reserve"  # create the reservation, add to the SKU counters
    RELEASE = "release"  # RESERVED -> RELEASED, give back what was reserved
    TOMBSTONE = "tombstone"  # release before reserve: record RELEASED so the reserve is a no-op
    NOOP = "noop"  # nothing changes (only the event is recorded as seen)


INTENTS: dict[str, Intent] = {
    "OrderCreated": Intent.RESERVE,
    "OrderCancelled": Intent.RELEASE,
    "PaymentFailed": Intent.RELEASE,
}


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: str
    chunk: int
    status: ReservationStatus
    quantities: dict[str, int]  # what this chunk holds (what a release gives back)


def decide(intent: Intent, current: Reservation | None) -> Action:
    if intent is Intent.RESERVE:
        return Action.RESERVE if current is None else Action.NOOP
    if current is None:
        return Action.TOMBSTONE
    return Action.RELEASE if current.status is ReservationStatus.RESERVED else Action.NOOP


def chunks(quantities: dict[str, int], size: int = CHUNK_SIZE) -> list[dict[str, int]]:
    """SKU quantities split deterministically (sorted by SKU) into chunks of at most ``size``."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    skus = sorted(quantities)
    return [{sku: quantities[sku] for sku in skus[i : i + size]} for i in range(0, len(skus), size)] or [{}]
