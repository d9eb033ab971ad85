"""Which order events notify the customer, and how a notification is identified.

One notification per (order, kind): its id is derived from both, so whatever the delivery
count or order, the same milestone can only ever produce the same notification.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

# Fixed forever: notification ids are derived with it.
NOTIFICATION_NAMESPACE = uuid.UUID("3c9a1e64-7b2d-5f08-b4e1-5d8a2c6f0e37")

KINDS: dict[str, str] = {
    "OrderCreated": "order_created",
    "PaymentProcessed": "payment_processed",
    "OrderShipped": "order_shipped",
    "OrderDelivered": "order_delivered",
}

_SUBJECTS = {
    "order_created": "We received your order {order_id}",
    "payment_processed": "Payment received for order {order_id}",
    "order_shipped": "Your order {order_id} has shipped",
    "order_delivered": "Your order {order_id} was delivered",
}


def notification_id(order_id: str, kind: str) -> str:
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{order_id}/{kind}"))


@dataclass(frozen=True, slots=True)
class Notification:
    notification_id: str
    user_id: str
    order_id: str
    kind: str
    created_at: str  # when the milestone happened (the event's occurred_at)
    event_id: str  # the integration event that caused it
    subject: str
    body: str
    # the order's e-mail, sealed (never stored here): the sender opens it, else asks the directory
    sealed_email: Any = None


def notification_for(
    event_type: str,
    *,
    order_id: str,
    user_id: str,
    occurred_at: str,
    event_id: str,
    details: str = "",
    sealed_email: Any = None,
) -> Notification | None:
    """The notification an event causes, or None if this event type notifies nobody."""
    kind = KINDS.get(event_type)
    if kind is None:
        return None
    subject = _SUBJECTS[kind].format(order_id=order_id)
    body = subject + (f" ({details})." if details else ".")
    return Notification(
        notification_id(order_id, kind), user_id, order_id, kind, occurred_at, event_id, subject, body, sealed_email
    )
