"""Inventory consumer: SQS (<- rule OrderCreated / OrderCancelled / PaymentFailed) -> reservations.

Thin: parse, apply, report partial batch failures. Duplicates are acknowledged (counted as
``DuplicatesSkipped``); failures return to the queue, then go to the DLQ (alarmed).
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

ACCEPTS = frozenset({("OrderCreated", 1), ("OrderCancelled", 1), ("PaymentFailed", 1)})


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    event = accepted_event(record.body, ACCEPTS)
    if event is None:
        return
    from inventory import service
    from inventory.app import store

    logger.set_correlation_id(event.correlation_id)
    outcomes = service.handle(store(), event)
    duplicates = sum(1 for o in outcomes if not o.applied)
    if duplicates:
        metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=duplicates)
    logger.info(
        "inventory updated",
        extra={
            "integration_event_id": event.id,
            "type": event.type,
            "order_id": event.subject,
            "actions": [f"{o.chunk}:{o.action.value}{'' if o.applied else ' (duplicate)'}" for o in outcomes],
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context) -> dict:
    try:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    finally:
        if metrics.metric_set:  # flushed only when there is something to say (no empty-EMF warnings)
            metrics.flush_metrics()
