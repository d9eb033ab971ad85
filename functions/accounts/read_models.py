"""Account read model (``ACCOUNT_VIEW_TABLE``): item shape shared by the projection and queries.

The Account View is the projection's per-stream state, stored in the stream's checkpoint item
(one item: view and checkpoint cannot disagree).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from cairn.events import EventEnvelope
from cairn.projections.readers import ReadModelTable

__all__ = [
    "ACCOUNT_VIEW",
    "AccountViews",
    "account_stream_id",
    "account_view_evolve",
    "account_view_from_events",
]

ACCOUNT_VIEW = "account_view"
STREAM_PREFIX = "account-"
CENT = Decimal("0.01")


def account_stream_id(account_id: str) -> str:
    """Account ids are their stream ids (``account-<uuid>``); a bare uuid gets the prefix."""
    return account_id if account_id.startswith(STREAM_PREFIX) else STREAM_PREFIX + account_id


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def account_view_evolve(view: dict[str, Any] | None, event: EventEnvelope) -> dict[str, Any] | None:
    """The view after ``event`` (API: account_id, owner_id, currency, balance, version, updated_at)."""
    data = event.data
    if event.type == "AccountOpened":
        return {
            "account_id": data.account_id,
            "owner_id": data.owner_id,
            "currency": data.currency,
            "balance": "0.00",
            "version": event.version,
            "updated_at": event.occurred_at,
        }
    if view is None:
        return None
    new = dict(view, version=event.version, updated_at=event.occurred_at)
    if event.type == "MoneyDeposited":
        new["balance"] = _money(Decimal(view["balance"]) + data.amount)
    elif event.type == "MoneyWithdrawn":
        new["balance"] = _money(Decimal(view["balance"]) - data.amount)
    return new


def account_view_from_events(envelopes: Iterable[EventEnvelope]) -> dict[str, Any] | None:
    view = None
    for event in envelopes:
        view = account_view_evolve(view, event)
    return view


class AccountViews(ReadModelTable):
    """``get(account_id)`` -> the Account View from the active generation, or None."""

    def get(self, account_id: str) -> dict[str, Any] | None:
        found = self.stream_state(account_stream_id(account_id))
        if found is None or found[1] is None:
            return None
        return found[1]
