"""Applies an integration event: store the notification exactly once, then (optionally) email it.

Sending happens after the notification is stored with ``email_status=PENDING`` and is marked
SENT afterwards; a redelivered event finds it PENDING and finishes the send. Email is therefore
at-least-once (SES has no idempotency key) while the stored notification is exactly-once.
"""

from __future__ import annotations

from enum import StrEnum

from integration import IntegrationEvent
from notifications import domain
from notifications.sender import EmailSender
from notifications.store import EmailStatus, NotificationStore


class Outcome(StrEnum):
    IGNORED = "ignored"
    CREATED = "created"
    DUPLICATE = "duplicate"


def details_of(event: IntegrationEvent) -> str:
    data = event.data
    if event.type == "PaymentProcessed":
        return f"{data.amount} {data.order.currency}"
    if event.type == "OrderShipped":
        return f"tracking {data.tracking}"
    if event.type == "OrderCreated":
        return f"total {data.order.total} {data.order.currency}"
    return ""


def handle(store: NotificationStore, event: IntegrationEvent, sender: EmailSender | None = None) -> Outcome:
    order = event.data.order
    n = domain.notification_for(
        event.type,
        order_id=order.order_id,
        user_id=order.customer_id,
        occurred_at=event.occurred_at,
        event_id=event.id,
        details=details_of(event),
        sealed_email=getattr(order, "email", None),
    )
    if n is None:
        return Outcome.IGNORED
    inserted = store.insert(n, EmailStatus.PENDING if sender is not None else EmailStatus.DISABLED)
    if sender is not None and (inserted or store.email_status(n) == EmailStatus.PENDING):
        store.mark_email(n, EmailStatus.SENT if sender.send(n) else EmailStatus.NO_ADDRESS)
    return Outcome.CREATED if inserted else Outcome.DUPLICATE
