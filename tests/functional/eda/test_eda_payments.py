"""Payments consumer: OrderCreated with a token -> charge once -> the order is PAID / PAYMENT_FAILED."""

from __future__ import annotations

import json

import pytest
from eda_support import create_order, order_command, publish, sqs_event, stream_events

import payments.handler
from orders import domain as orders_domain
from payments import domain
from payments.service import Outcome


def payment_stream(order_id: str) -> str:
    return domain.stream_id_for(domain.payment_id_for(order_id))


def created_message(cloud, ctx) -> dict:
    """Publish what is in the events stream and take the payments queue's message body."""
    publish(cloud, ctx)
    (body,) = cloud.bodies("payments")
    return body


@pytest.fixture
def services(cloud):
    from payments.app import gateway, runtime, service

    return service(payments.handler.observe), runtime(), gateway()  # the handler's own instance


def test_tok_visa_pays_the_order(cloud, orders_runtime, lambda_context, services):
    service, payments_runtime, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    response = payments.handler.handler(sqs_event(created_message(cloud, lambda_context)), lambda_context)
    assert response == {"batchItemFailures": []}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "PaymentProcessed"]
    assert [e.type for e in stream_events(payments_runtime, payment_stream(order_id))] == [
        "PaymentRequested",
        "PaymentSucceeded",
    ]
    assert len(gateway.charges) == 1


def test_command_metrics_are_emitted(cloud, orders_runtime, lambda_context, services, capsys):
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    capsys.readouterr()
    payments.handler.handler(sqs_event(message), lambda_context)
    order_command(orders_runtime, order_id, orders_domain.ShipOrder(tracking="T-1"))
    # a redelivery after shipping: RecordPayment is refused by the order now, so the runtime answers
    # from the idempotency marker of the first RecordPayment
    payments.handler.handler(sqs_event(message), lambda_context)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    latencies = [v for m in emf for v in m.get("CommandLatency", [])]
    assert len(latencies) == 5  # request, settle, pay the order; then request (no-op), pay (replayed)
    assert all(v > 0 for v in latencies)
    assert sum(sum(m.get("IdempotentReplays", [])) for m in emf) == 1
    assert {m["service"] for m in emf} == {"eda-tests"}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "PaymentProcessed", "OrderShipped"]


def test_a_replay_after_the_marker_expired_does_not_refund_a_taken_payment(cloud, orders_runtime, lambda_context, services):
    _, payments_runtime, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    payments.handler.handler(sqs_event(message), lambda_context)
    order_command(orders_runtime, order_id, orders_domain.ShipOrder(tracking="T-1"))
    for item in cloud.dynamodb.scan(TableName=cloud.idempotency_table)["Items"]:  # markers expire after 24 h
        cloud.dynamodb.delete_item(TableName=cloud.idempotency_table, Key={"idempotency_key": item["idempotency_key"]})
    assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    assert gateway.refunds == {}
    assert [e.type for e in stream_events(payments_runtime, payment_stream(order_id))] == [
        "PaymentRequested",
        "PaymentSucceeded",
    ]


def test_tok_declined_fails_the_payment(cloud, orders_runtime, lambda_context, services):
    _, payments_runtime, _ = services
    order_id = create_order(orders_runtime, token="tok_declined")
    payments.handler.handler(sqs_event(created_message(cloud, lambda_context)), lambda_context)
    order = stream_events(orders_runtime, order_id)
    assert [e.type for e in order] == ["OrderCreated", "PaymentFailed"]
    assert order[-1].data.reason == "card_declined"
    assert [e.type for e in stream_events(payments_runtime, payment_stream(order_id))] == [
        "PaymentRequested",
        "PaymentFailed",
    ]


def test_duplicates_in_a_batch_and_across_batches_charge_once(cloud, orders_runtime, lambda_context, services):
    _, payments_runtime, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    assert payments.handler.handler(sqs_event(message, message, message), lambda_context) == {"batchItemFailures": []}
    assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "PaymentProcessed"]
    assert len(stream_events(payments_runtime, payment_stream(order_id))) == 2
    assert len(gateway.charges) == 1


def test_a_crash_after_the_charge_is_finished_by_the_redelivery(cloud, orders_runtime, lambda_context, services, monkeypatch):
    service, payments_runtime, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    real_handle = payments_runtime.handle
    crashed = []

    def crash_on_settle(stream_id, command, **kw):
        if isinstance(command, domain.SettlePayment) and not crashed:
            crashed.append(command)
            raise TimeoutError("lambda timed out after charging")
        return real_handle(stream_id, command, **kw)

    monkeypatch.setattr(payments_runtime, "handle", crash_on_settle)
    event = sqs_event(message)
    response = payments.handler.handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated"]
    # SQS redelivers after the visibility timeout
    assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "PaymentProcessed"]
    assert len(gateway.charges) == 1  # the retried charge got the gateway's first answer


def test_a_crash_after_settling_drives_the_order_on_redelivery(cloud, orders_runtime, lambda_context, services, monkeypatch):
    service, _, _ = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    real = service.orders.handle
    calls = []

    def crash_once(stream_id, command, **kw):
        calls.append(command)
        if len(calls) == 1:
            raise ConnectionError("lost the connection to DynamoDB")
        return real(stream_id, command, **kw)

    monkeypatch.setattr(service.orders, "handle", crash_once)
    assert payments.handler.handler(sqs_event(message), lambda_context)["batchItemFailures"]
    assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    events = stream_events(orders_runtime, order_id)
    assert [e.type for e in events] == ["OrderCreated", "PaymentProcessed"]


def test_an_order_cancelled_before_the_charge_is_not_charged(cloud, orders_runtime, lambda_context, services):
    _, payments_runtime, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    order_command(orders_runtime, order_id, orders_domain.CancelOrder(reason="changed my mind"), actor="alice")
    assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    assert gateway.charges == {}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "OrderCancelled"]
    failed = stream_events(payments_runtime, payment_stream(order_id))[-1]
    assert failed.type == "PaymentFailed" and failed.data.charged is False
    assert failed.data.reason == "order-not-payable:CANCELLED"


def test_an_order_cancelled_during_the_charge_is_refunded(cloud, orders_runtime, lambda_context, services):
    service, payments_runtime, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    real_charge = gateway.charge

    def charge_while_customer_cancels(*args, **kw):
        result = real_charge(*args, **kw)
        order_command(orders_runtime, order_id, orders_domain.CancelOrder(reason="too slow"), actor="alice")
        return result

    gateway.charge = charge_while_customer_cancels
    try:
        assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    finally:
        del gateway.charge
    assert [e.type for e in stream_events(payments_runtime, payment_stream(order_id))] == [
        "PaymentRequested",
        "PaymentSucceeded",
        "PaymentRefunded",
    ]
    assert len(gateway.refunds) == 1
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "OrderCancelled"]
    # a redelivery changes nothing more
    assert service.handle_order_created(_parse(message)).outcome is Outcome.REFUNDED
    assert len(stream_events(payments_runtime, payment_stream(order_id))) == 3


def test_an_order_paid_by_staff_first_is_not_charged(cloud, orders_runtime, lambda_context, services):
    from decimal import Decimal

    _, _, gateway = services
    order_id = create_order(orders_runtime, token="tok_visa")
    message = created_message(cloud, lambda_context)
    order_command(orders_runtime, order_id, orders_domain.RecordPayment(payment_id="cash-1", amount=Decimal("24.98")))
    assert payments.handler.handler(sqs_event(message), lambda_context) == {"batchItemFailures": []}
    assert gateway.charges == {}
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "PaymentProcessed"]


def test_gateway_outage_leaves_the_message_for_retry(cloud, orders_runtime, lambda_context, services):
    _, payments_runtime, _ = services
    order_id = create_order(orders_runtime, token="tok_unavailable")
    event = sqs_event(created_message(cloud, lambda_context))
    response = payments.handler.handler(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert [e.type for e in stream_events(payments_runtime, payment_stream(order_id))] == ["PaymentRequested"]
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated"]


def test_only_the_bad_message_of_a_batch_fails(cloud, orders_runtime, lambda_context, load_event):
    order_id = create_order(orders_runtime, token="tok_visa")
    good = created_message(cloud, lambda_context)
    malformed = load_event("sqs_malformed.json")["Records"][0]["body"]
    event = sqs_event(malformed, good, "{not json")
    response = payments.handler.handler(event, lambda_context)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][i]["messageId"]} for i in (0, 2)]
    }
    assert [e.type for e in stream_events(orders_runtime, order_id)] == ["OrderCreated", "PaymentProcessed"]


def test_unknown_versions_and_tokenless_orders_are_acknowledged(cloud, orders_runtime, lambda_context, load_event):
    future = load_event("eventbridge_order_created.json")
    future["detail"]["version"] = 2
    no_token = load_event("eventbridge_order_created_no_token.json")
    assert payments.handler.handler(sqs_event(future, no_token), lambda_context) == {"batchItemFailures": []}


def test_committed_sqs_events_are_processed(cloud, orders_runtime, lambda_context, load_event):
    """The real-shaped SQS events in tests/events, against orders that exist in the store."""
    for name, status in (("sqs_order_created_duplicates.json", "PAID"), ("sqs_payment_declined.json", "PAYMENT_FAILED")):
        event = load_event(name)
        detail = json.loads(event["Records"][0]["body"])["detail"]
        order = detail["data"]["order"]
        from cairn.commands import CommandContext

        orders_runtime.handle(
            order["order_id"],
            orders_domain.CreateOrder(
                order_id=order["order_id"],
                customer_id=order["customer_id"],
                items=order["items"],
                currency=order["currency"],
                payment_token=detail["data"]["payment_token"],
            ),
            context=CommandContext(correlation_id=detail["correlation_id"]),
        )
        assert payments.handler.handler(event, lambda_context) == {"batchItemFailures": []}
        assert orders_runtime.load(order["order_id"])[1].status.value == status


def _parse(message: dict):
    from integration.consumer import event_from_eventbridge

    return event_from_eventbridge(message)
