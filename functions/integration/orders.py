"""Integration events of the order service (source ``cairn.orders``), contract version 1.

Event-carried state: every event carries the order as it is after the event (``order``), so a
consumer never calls back into the order service and can act on any single event, whatever
order the events arrive in. Only what other services need is carried: no internal metadata,
no cancellation free text. A payment token never leaves the order service: OrderCreated carries
only ``payment_intent``, the id of an encrypted, expiring payment intent (``integration.payment_intents``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from integration.envelope import IntegrationEvent
from kernel import Currency, EventMoney
from kernel.personal import Sealed

SOURCE = "cairn.orders"

OrderStatusV1 = Literal["CREATED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED", "PAYMENT_FAILED", "REFUNDED"]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderLineV1(_Contract):
    sku: str
    quantity: Annotated[int, Field(ge=1)]
    unit_price: EventMoney


class OrderV1(_Contract):
    """The order as it is after the event (event-carried state)."""

    order_id: str
    customer_id: str = Field(description="The owner (the JWT subject of the customer).")
    status: OrderStatusV1
    currency: Currency
    items: list[OrderLineV1]
    total: EventMoney
    email: Sealed | None = Field(
        None,
        description="The order's e-mail address SEALED (issue 12): ciphertext + key reference (`sub`, `kid`), "
        "never the plaintext; a consumer that must use it (notifications) opens it with the order service's "
        "key service (stream id = order_id, field `email`). Unreadable once the customer is erased.",
    )


class OrderCreatedData(_Contract):
    """An order was placed. Consumers: payments (when ``payment_intent`` is present), inventory (reserve), notifications."""

    order: OrderV1
    payment_intent: str | None = Field(
        None,
        description="Id of the order's payment intent (the encrypted, expiring token the payment service "
        "redeems); absent when staff record the payment. Never the token itself.",
    )


class PaymentProcessedData(_Contract):
    """The order took a payment (by the payment service or recorded by staff): it is PAID. Consumers: notifications."""

    order: OrderV1
    payment_id: str
    amount: EventMoney


class PaymentFailedData(_Contract):
    """The payment service could not charge the order: it is PAYMENT_FAILED. Consumers: inventory (release)."""

    order: OrderV1
    payment_id: str
    reason: str


class OrderShippedData(_Contract):
    """The order left the warehouse. Consumers: notifications."""

    order: OrderV1
    tracking: str


class OrderDeliveredData(_Contract):
    """The order reached the customer. Consumers: notifications."""

    order: OrderV1


class OrderCancelledData(_Contract):
    """The order was cancelled (reason not published: free text). Consumers: inventory (release)."""

    order: OrderV1


class OrderCreatedV1(IntegrationEvent):
    type: Literal["OrderCreated"]
    version: Literal[1]
    source: Literal["cairn.orders"]
    data: OrderCreatedData


class PaymentProcessedV1(IntegrationEvent):
    type: Literal["PaymentProcessed"]
    version: Literal[1]
    source: Literal["cairn.orders"]
    data: PaymentProcessedData


class PaymentFailedV1(IntegrationEvent):
    type: Literal["PaymentFailed"]
    version: Literal[1]
    source: Literal["cairn.orders"]
    data: PaymentFailedData


class OrderShippedV1(IntegrationEvent):
    type: Literal["OrderShipped"]
    version: Literal[1]
    source: Literal["cairn.orders"]
    data: OrderShippedData


class OrderDeliveredV1(IntegrationEvent):
    type: Literal["OrderDelivered"]
    version: Literal[1]
    source: Literal["cairn.orders"]
    data: OrderDeliveredData


class OrderCancelledV1(IntegrationEvent):
    type: Literal["OrderCancelled"]
    version: Literal[1]
    source: Literal["cairn.orders"]
    data: OrderCancelledData


ORDER_EVENTS: tuple[type[IntegrationEvent], ...] = (
    OrderCreatedV1,
    PaymentProcessedV1,
    PaymentFailedV1,
    OrderShippedV1,
    OrderDeliveredV1,
    OrderCancelledV1,
)


def order_quantities(order: OrderV1) -> dict[str, int]:
    """Units per SKU of an order (lines of the same SKU added up)."""
    totals: dict[str, int] = {}
    for line in order.items:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return totals
