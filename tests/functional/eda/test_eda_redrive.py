"""``make redrive`` for the publisher: a batch the mapping gave up on is republished from the store
with the same integration-event ids (so consumers dedupe a batch published twice)."""

from __future__ import annotations

import json
from decimal import Decimal

from eda_support import create_order, order_command, stream_events

from integration import integration_event_id
from orders import domain


def test_failed_publisher_batch_is_republished_with_stable_ids(cloud, orders_runtime):
    from cairn_platform.publisher import Publisher
    from cairn_tools.redrive import CONSUMERS, Consumer, publisher_applier, redrive
    from integration.order_translation import to_integration_events
    from local.esm import on_failure_message
    from orders.app import decider

    order_id = create_order(orders_runtime, token="tok_visa")
    order_command(orders_runtime, order_id, domain.RecordPayment(payment_id="pay-1", amount=Decimal("24.98")))
    order_command(orders_runtime, order_id, domain.ShipOrder(tracking="TRACK-1"))
    records = cloud.stream_records()  # the batch the publisher never got through
    shard = cloud.streams.describe_stream(StreamArn=cloud._stream_arn)["StreamDescription"]["Shards"][0]
    message = on_failure_message(
        records, shard_id=shard["ShardId"], stream_arn=cloud._stream_arn, function_arn="arn:aws:lambda:::function:p"
    )
    queue = cloud.sqs.create_queue(QueueName="publisher-failed")["QueueUrl"]
    publisher = Publisher(
        orders_runtime.store, decider, to_integration_events, cloud.events, "cairn-integration", sleep=lambda s: None
    )
    consumer = Consumer("Publisher", queue, CONSUMERS["Publisher"], publisher_applier(publisher))

    expected = {integration_event_id(e.event_id, e.type, 1): e.type for e in stream_events(orders_runtime, order_id)}
    seen = []
    for _ in range(2):  # the same failed batch twice: published twice, same ids
        cloud.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(message))
        result = redrive(consumer, cloud.sqs, cloud.streams)
        assert (result.redriven, result.failed, result.events) == (1, 0, 3), result.errors
        seen.append({b["detail"]["id"]: b["detail-type"] for b in cloud.bodies("notifications")})
    assert seen[0] == seen[1] == expected
