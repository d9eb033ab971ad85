"""Integration event contracts: what services publish on the bus, versioned on their own.

Pure (pydantic + stdlib + the shared kernel): producers and consumers import the same models.
"""

from integration.catalogue import (
    CATALOGUE,
    MalformedIntegrationEventError,
    UnknownIntegrationEventError,
    json_schemas,
    model_for,
    parse_integration_event,
)
from integration.envelope import IntegrationEvent, integration_event_id
from integration.orders import (
    SOURCE,
    OrderCancelledV1,
    OrderCreatedV1,
    OrderDeliveredV1,
    OrderLineV1,
    OrderShippedV1,
    OrderV1,
    PaymentFailedV1,
    PaymentProcessedV1,
    order_quantities,
)

__all__ = [
    "CATALOGUE",
    "SOURCE",
    "IntegrationEvent",
    "MalformedIntegrationEventError",
    "OrderCancelledV1",
    "OrderCreatedV1",
    "OrderDeliveredV1",
    "OrderLineV1",
    "OrderShippedV1",
    "OrderV1",
    "PaymentFailedV1",
    "PaymentProcessedV1",
    "UnknownIntegrationEventError",
    "integration_event_id",
    "json_schemas",
    "model_for",
    "order_quantities",
    "parse_integration_event",
]
