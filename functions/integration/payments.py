"""Integration events of the payment service (source ``cairn.payments``), contract version 1.

What the payment service did with an order's payment. The names differ from the order
service's ``PaymentProcessed`` / ``PaymentFailed`` (what the *order* did): one name, one meaning
on the bus. ``subject`` is the order id, ``sequence`` the payment stream's version (higher is
newer); ``data.payment`` is the payment as it is after the event (event-carried state).
Consumers: the order service (``orders.payment_events``) turns them into the order's events.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from integration.envelope import IntegrationEvent
from kernel import Currency, Money

SOURCE = "cairn.payments"

PaymentStatusV1 = Literal["REQUESTED", "SUCCEEDED", "FAILED", "REFUNDED"]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PaymentV1(_Contract):
    """The payment after the event."""

    payment_id: str
    order_id: str
    status: PaymentStatusV1
    amount: Money
    currency: Currency


class PaymentCapturedData(_Contract):
    """The payment service charged the order's payment. Consumers: orders (RecordPayment)."""

    payment: PaymentV1


class PaymentDeclinedData(_Contract):
    """The charge failed, or was not attempted (``charged`` false: the order was closed or the intent
    had expired). Consumers: orders (FailPayment)."""

    payment: PaymentV1
    reason: str
    charged: bool


class PaymentRefundedData(_Contract):
    """A captured payment was refunded (its order was cancelled, failed by the timeout, or paid
    otherwise). Consumers: orders (a cancelled order that took it becomes REFUNDED)."""

    payment: PaymentV1
    amount: Money
    refund_id: str | None = None


class PaymentCapturedV1(IntegrationEvent):
    type: Literal["PaymentCaptured"]
    version: Literal[1]
    source: Literal["cairn.payments"]
    data: PaymentCapturedData


class PaymentDeclinedV1(IntegrationEvent):
    type: Literal["PaymentDeclined"]
    version: Literal[1]
    source: Literal["cairn.payments"]
    data: PaymentDeclinedData


class PaymentRefundedV1(IntegrationEvent):
    type: Literal["PaymentRefunded"]
    version: Literal[1]
    source: Literal["cairn.payments"]
    data: PaymentRefundedData


PAYMENT_EVENTS: tuple[type[IntegrationEvent], ...] = (PaymentCapturedV1, PaymentDeclinedV1, PaymentRefundedV1)
