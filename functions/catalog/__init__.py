"""Catalog: products and their prices. Prices change by events, so an order can be audited
against the price in force when it was placed; the order service prices from the catalog's
published read model (``integration.catalog``), never from what the client sent."""

__all__: list[str] = []
