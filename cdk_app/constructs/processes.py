"""Issue 15's wiring: the catalog (prices from the server), autonomous payments, payment timeouts.

The functions themselves are the stack's (``FUNCTIONS``); this module gives them exactly what
they need and nothing else, so the stack only calls :func:`wire_catalog` / :func:`wire_payments`.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.event_store import EventStore
from cdk_app.constructs.function import CairnFunction
from cdk_app.constructs.projection import Projection

__all__ = ["CATALOG_PREFIX", "PAYMENT_PREFIX", "wire_catalog"]

CATALOG_PREFIX = "product-"
PAYMENT_PREFIX = "payment-"


def wire_catalog(
    scope: Construct,
    *,
    catalog: CairnFunction,
    projections: CairnFunction,
    orders_commands: CairnFunction,
    store: EventStore,
    table: dynamodb.ITable,
    alerts: Alerts,
) -> Projection:
    """Catalog commands append to ``product-*`` streams only; the projection writes the catalog
    table; the order service may read that table (its published read model) and nothing of the
    catalog's streams."""
    store.grant_append(catalog.role, stream_prefixes=[CATALOG_PREFIX])
    store.grant_write_markers(catalog.role)
    table.grant_read_data(catalog.role)
    table.grant_read_data(orders_commands.role)
    return Projection(
        scope,
        "CatalogProjection",
        function=projections,
        event_store=store,
        stream_prefixes=[CATALOG_PREFIX],
        read_models=[table],
        alerts=alerts,
    )
