"""The payment-timeouts process manager on moto: opened by OrderCreated with a payment intent,
closed by the order's outcome, swept when due (PAYMENT_FAILED, stock released), and a payment
captured after the timeout is refunded by the payment service."""

from __future__ import annotations

import time

from eda_support import create_order, order_command, publish

import inventory.handler
import orders.payment_events
import orders.timeouts
import payments.handler
from orders import domain as orders_domain


def deliver_all(cloud, ctx, *queues: str) -> None:
    handlers = {"payments": payments.handler.handler, "order_payments": orders.payment_events.handler,
                "timeouts": orders.timeouts.handler, "inventory": inventory.handler.handler}
    for queue in queues:
        event = cloud.receive(queue)
        if event["Records"]:
            assert handlers[queue](event, ctx) == {"batchItemFailures": []}


def sweep(ctx, *, after: float = 0):
    manager = orders.timeouts.timeouts()
    return manager.sweep(now=time.time() + after)


def test_an_order_whose_payment_never_comes_is_failed_and_its_stock_released(cloud, orders_runtime, lambda_context):
    order_id = create_order(orders_runtime, token="tok_visa")
    publish(cloud, lambda_context)
    deliver_all(cloud, lambda_context, "timeouts", "inventory")  # the payment service never answers
    cloud.receive("payments")  # ... its message is lost
    assert sweep(lambda_context) == {"timed_out": 0, "closed": 0, "open": 1}  # not due yet
    assert sweep(lambda_context, after=61) == {"timed_out": 1, "closed": 0, "open": 0}
    assert sweep(lambda_context, after=61) == {"timed_out": 0, "closed": 0, "open": 0}  # swept once
    state = orders_runtime.load(order_id)[1]
    assert (state.status.value, state.reason) == ("PAYMENT_FAILED", "payment-timeout")
    publish(cloud, lambda_context)
    deliver_all(cloud, lambda_context, "inventory", "timeouts")
    from inventory.app import store

    assert store().sku_level("SKU-1").reserved == 0
    assert list(orders.timeouts.timeouts().open_processes()) == []


def test_a_payment_arriving_after_the_timeout_is_never_charged(cloud, orders_runtime, lambda_context):
    order_id = create_order(orders_runtime, token="tok_visa")
    publish(cloud, lambda_context)
    created_for_payments = cloud.receive("payments")  # delayed
    deliver_all(cloud, lambda_context, "timeouts")
    sweep(lambda_context, after=61)
    publish(cloud, lambda_context)
    deliver_all(cloud, lambda_context, "payments", "timeouts")  # the payment service learns it failed
    assert payments.handler.handler(created_for_payments, lambda_context) == {"batchItemFailures": []}
    from payments.app import gateway

    for _ in range(3):
        publish(cloud, lambda_context)
        deliver_all(cloud, lambda_context, "payments", "order_payments", "timeouts")
    assert gateway().charges == {}  # the order was closed before the charge: never charged
    assert orders_runtime.load(order_id)[1].status.value == "PAYMENT_FAILED"


def test_a_capture_racing_the_timeout_is_refunded(cloud, orders_runtime, lambda_context):
    order_id = create_order(orders_runtime, token="tok_visa")
    publish(cloud, lambda_context)
    deliver_all(cloud, lambda_context, "timeouts", "payments")  # captured ...
    sweep(lambda_context, after=61)  # ... but the timeout fires before the capture reaches the order
    from payments.app import gateway

    for _ in range(4):
        publish(cloud, lambda_context)
        deliver_all(cloud, lambda_context, "payments", "order_payments", "timeouts")
    assert len(gateway().charges) == 1 and len(gateway().refunds) == 1
    assert orders_runtime.load(order_id)[1].status.value == "PAYMENT_FAILED"


def test_outcomes_close_the_process_even_before_it_opened(cloud, orders_runtime, lambda_context):
    paid = create_order(orders_runtime, token="tok_visa")
    cancelled = create_order(orders_runtime, token="tok_visa")
    order_command(orders_runtime, cancelled, orders_domain.CancelOrder(reason="no"), actor="alice")
    publish(cloud, lambda_context)
    records = cloud.receive("timeouts")["Records"]
    # the cancellation first (reordered), then everything twice
    records.sort(key=lambda r: '"OrderCancelled"' not in r["body"])
    assert orders.timeouts.handler({"Records": records + records}, lambda_context) == {"batchItemFailures": []}
    deliver_all(cloud, lambda_context, "payments")
    publish(cloud, lambda_context)
    deliver_all(cloud, lambda_context, "order_payments")
    publish(cloud, lambda_context)
    deliver_all(cloud, lambda_context, "timeouts")
    assert orders_runtime.load(paid)[1].status.value == "PAID"
    assert sweep(lambda_context, after=61) == {"timed_out": 0, "closed": 0, "open": 0}
    assert orders_runtime.load(cancelled)[1].status.value == "CANCELLED"
