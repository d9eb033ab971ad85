"""The catalog's published read model: what the order service prices orders from.

The order service does not import the catalog context. It reads the catalog's read model
(``CATALOG_TABLE``), a published query contract like an integration event: one entry per product,
keyed by its stream (``product-<sku>``), whose state has the fields of :class:`CatalogEntryV1`.
The catalog may add fields; renaming or removing one is a new contract (a new table).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kernel import Currency, Money

__all__ = ["CATALOG_STREAM_PREFIX", "CatalogEntryV1", "product_stream_id"]

CATALOG_STREAM_PREFIX = "product-"


def product_stream_id(sku: str) -> str:
    """The catalog stream (and read-model key) of a SKU."""
    return f"{CATALOG_STREAM_PREFIX}{sku}"


class CatalogEntryV1(BaseModel):
    """A product as the catalog publishes it (tolerant reader: extra fields ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str
    name: str
    unit_price: Money
    currency: Currency
    version: int
