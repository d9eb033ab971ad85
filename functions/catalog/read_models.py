"""Catalog read model (``CATALOG_TABLE``): the product entry published as ``integration.catalog``.

The entry is the projection's per-stream state (stored in the checkpoint item), so entry and
checkpoint never disagree; its fields are the contract ``CatalogEntryV1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cairn.events import EventEnvelope
from cairn.projections.readers import ReadModelTable
from integration.catalog import product_stream_id
from kernel import money_str

__all__ = ["CATALOG", "Products", "product_evolve", "product_from_events"]

CATALOG = "catalog"


def product_evolve(entry: dict[str, Any] | None, event: EventEnvelope) -> dict[str, Any] | None:
    data = event.data
    if event.type == "ProductListed":
        entry = {"sku": data.sku, "name": data.name, "unit_price": money_str(data.unit_price), "currency": data.currency}
    elif entry is None:
        return None
    elif event.type == "ProductRenamed":
        entry = dict(entry, name=data.name)
    elif event.type == "ProductPriceChanged":
        entry = dict(entry, unit_price=money_str(data.unit_price), currency=data.currency)
    return dict(entry, version=event.version, updated_at=event.occurred_at)


def product_from_events(envelopes: Iterable[EventEnvelope]) -> dict[str, Any] | None:
    entry = None
    for event in envelopes:
        entry = product_evolve(entry, event)
    return entry


class Products(ReadModelTable):
    def get(self, sku: str) -> dict[str, Any] | None:
        found = self.stream_state(product_stream_id(sku))
        return None if found is None else found[1]
