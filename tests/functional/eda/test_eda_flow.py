"""The whole seed flow in one process: order -> publisher -> bus -> payments/inventory/notifications."""

from __future__ import annotations

import uuid

from eda_support import create_order, deliver, publish, stream_events

import inventory.handler
import notifications.handler
import orders.payment_events
import payments.handler
from integration import integration_event_id
from payments import domain as payments_domain


def run_until_quiet(cloud, ctx, rounds: int = 5) -> None:
    """Publish and deliver until no consumer has anything left (payments append more events)."""
    for _ in range(rounds):
        publish(cloud, ctx)
        responses = [
            deliver(cloud, "payments", payments.handler.handler, ctx),
            deliver(cloud, "inventory", inventory.handler.handler, ctx),
            deliver(cloud, "notifications", notifications.handler.handler, ctx),
            deliver(cloud, "order_payments", orders.payment_events.handler, ctx),
        ]
        for response in responses:
            assert response == {"batchItemFailures": []}


def test_tok_visa_order_becomes_paid_by_itself_with_the_causation_chain(cloud, orders_runtime, lambda_context):
    correlation = str(uuid.uuid4())
    order_id = create_order(orders_runtime, token="tok_visa", correlation_id=correlation)
    run_until_quiet(cloud, lambda_context)

    events = stream_events(orders_runtime, order_id)
    assert [e.type for e in events] == ["OrderCreated", "PaymentProcessed"]
    created, paid = events
    assert paid.metadata.actor == "payments"
    assert paid.metadata.correlation_id == correlation

    # PaymentProcessed <- integration PaymentCaptured <- PaymentSucceeded <- integration OrderCreated <- OrderCreated
    from payments.app import runtime as payments_runtime

    payment_stream = payments_domain.stream_id_for(payments_domain.payment_id_for(order_id))
    payment_events = stream_events(payments_runtime(), payment_stream)
    requested, succeeded = payment_events
    assert (requested.type, succeeded.type) == ("PaymentRequested", "PaymentSucceeded")
    assert paid.metadata.causation_id == integration_event_id(succeeded.event_id, "PaymentCaptured", 1)
    assert succeeded.metadata.causation_id == integration_event_id(created.event_id, "OrderCreated", 1)
    assert requested.metadata.causation_id == succeeded.metadata.causation_id
    assert {e.metadata.correlation_id for e in payment_events} == {correlation}

    from inventory.app import store as inventory_store

    assert inventory_store().sku_level("SKU-1").reserved == 2
    from notifications.app import store as notification_store

    items, _ = notification_store().list_for_user("alice")
    assert sorted(n.kind for n in items) == ["order_created", "payment_processed"]


def test_tok_declined_order_fails_payment_and_releases_stock(cloud, orders_runtime, lambda_context):
    order_id = create_order(orders_runtime, token="tok_declined")
    run_until_quiet(cloud, lambda_context)

    events = stream_events(orders_runtime, order_id)
    assert [e.type for e in events] == ["OrderCreated", "PaymentFailed"]
    assert events[1].data.reason == "card_declined"
    assert orders_runtime.load(order_id)[1].status.value == "PAYMENT_FAILED"

    from inventory.app import store as inventory_store

    assert inventory_store().sku_level("SKU-1").reserved == 0
    assert inventory_store().sku_level("SKU-1").version == 2  # reserved, then released
    from notifications.app import store as notification_store

    items, _ = notification_store().list_for_user("alice")
    assert [n.kind for n in items] == ["order_created"]
