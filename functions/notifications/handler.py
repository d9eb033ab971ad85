"""Notifications consumer: SQS (<- rule OrderCreated / PaymentProcessed / OrderShipped /
OrderDelivered) -> one stored notification per milestone (email via SES when switched on).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from integration.consumer import accepted_event

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# a fully failed batch is reported like a partial one (every message back to the queue)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

ACCEPTS = frozenset({("OrderCreated", 1), ("PaymentProcessed", 1), ("OrderShipped", 1), ("OrderDelivered", 1)})


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    event = accepted_event(record.body, ACCEPTS)
    if event is None:
        return
    from notifications import service
    from notifications.app import sender, store

    logger.set_correlation_id(event.correlation_id)
    outcome = service.handle(store(), event, sender())
    if outcome is service.Outcome.DUPLICATE:
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=1)
    logger.info(
        "notification handled",
        extra={"integration_event_id": event.id, "type": event.type, "order_id": event.subject, "outcome": outcome},
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context) -> dict:
    try:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    finally:
        if metrics.metric_set:  # flushed only when there is something to say (no empty-EMF warnings)
            metrics.flush_metrics()
