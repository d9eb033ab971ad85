"""Where the order service gets prices: the catalog's published read model (``CATALOG_TABLE``).

A port (``PriceList``) and its DynamoDB sibling. The order service never imports the catalog
context: it reads the read model the catalog publishes for this purpose (``integration.catalog``),
one ``BatchGetItem`` for the distinct SKUs of an order (≤ 100).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from integration.catalog import CatalogEntryV1, product_stream_id
from orders.domain import CatalogPrice

__all__ = ["PriceList", "ReadModelPriceList", "StaticPriceList"]


class PriceList(ABC):
    @abstractmethod
    def prices(self, skus: Iterable[str]) -> dict[str, CatalogPrice]:
        """The catalog's price of each known SKU (unknown SKUs are absent)."""


class StaticPriceList(PriceList):
    """In-memory price list (unit tests of the pricing rules)."""

    def __init__(self, entries: dict[str, tuple[str, str]] | None = None):
        self.entries = {sku: CatalogPrice(Decimal(p), c, 1) for sku, (p, c) in (entries or {}).items()}

    def prices(self, skus: Iterable[str]) -> dict[str, CatalogPrice]:
        return {sku: self.entries[sku] for sku in skus if sku in self.entries}


class ReadModelPriceList(PriceList):
    def __init__(self, client: Any, table_name: str):
        from cairn.projections.readers import ReadModelTable

        self.client = client
        self.table = ReadModelTable(client, table_name)

    def prices(self, skus: Iterable[str]) -> dict[str, CatalogPrice]:
        from cairn.projections.codec import from_attr
        from cairn.projections.layout import checkpoint_key

        wanted = sorted(set(skus))
        if not wanted:
            return {}
        generation = self.table.generation()
        keys = [checkpoint_key(generation, product_stream_id(sku)) for sku in wanted]
        found: dict[str, CatalogPrice] = {}
        pending: dict[str, Any] = {self.table.table_name: {"Keys": keys}}
        for _ in range(8):  # unprocessed keys are retried a bounded number of times
            response = self.client.batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(self.table.table_name, []):
                state = item.get("state")
                if state is None:
                    continue
                entry = CatalogEntryV1.model_validate(from_attr(state))
                found[entry.sku] = CatalogPrice(entry.unit_price, entry.currency, entry.version)
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
        else:
            raise RuntimeError("catalog read model: keys left unprocessed")
        return found
