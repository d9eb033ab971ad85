"""The publisher on the fan-out source of issue 18: the same changes as Kinesis Data Streams for
DynamoDB records (reversed and duplicated) publish the same integration events, once per id."""

from __future__ import annotations

from decimal import Decimal

from eda_support import create_order, order_command, publish

from cairn.projections.kinesis import kinesis_record
from orders import domain

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/cairn-events"


def test_kinesis_records_publish_the_same_integration_events(cloud, orders_runtime, lambda_context):
    order_id = create_order(orders_runtime, token="tok_visa")
    order_command(orders_runtime, order_id, domain.RecordPayment(payment_id="pay-1", amount=Decimal("24.98")))
    records = cloud.stream_records()
    assert len(records) == 2
    # Kinesis may deliver out of order and twice (a duplicate carries a new sequence number)
    shaped = [
        kinesis_record(r, sequence_number=f"4959{n:030d}", table_name="events", stream_arn=ARN)
        for n, r in enumerate([*reversed(records), records[0]])
    ]
    assert publish(cloud, lambda_context, shaped) == {"batchItemFailures": []}
    bodies = cloud.bodies("notifications")
    assert sorted(b["detail-type"] for b in bodies) == ["OrderCreated", "PaymentProcessed"]
    # the payment service hears both (issue 15: a payment recorded by staff closes its process)
    assert sorted(b["detail-type"] for b in cloud.bodies("payments")) == ["OrderCreated", "PaymentProcessed"]
