"""Payments consumer: SQS (<- rule OrderCreated with a payment_token) -> PaymentService.

Thin: parse, call, report partial batch failures (only the failed messages return to the
queue; after maxReceiveCount they go to the DLQ, which has an alarm).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from integration import OrderCreatedV1
from integration.consumer import accepted_event

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# a fully failed batch is reported like a partial one (every message back to the queue)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

ACCEPTS = frozenset({("OrderCreated", 1)})


def observe(kind: str, latency_ms: float, result) -> None:
    """The command metrics of docs/architecture.md, for the payment and order commands run here."""
    metrics.add_metric(name="CommandLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if result.retries:
        metrics.add_metric(name="ConflictsRetried", unit=MetricUnit.Count, value=result.retries)
    if result.replayed:
        metrics.add_metric(name="IdempotentReplays", unit=MetricUnit.Count, value=1)


@tracer.capture_method
def record_handler(record: SQSRecord) -> str | None:
    event = accepted_event(record.body, ACCEPTS)
    if event is None:
        return None
    if not isinstance(event, OrderCreatedV1):
        raise TypeError(f"payments handles OrderCreated v1, got {event.type} v{event.version}")
    from payments.app import service

    logger.set_correlation_id(event.correlation_id)
    result = service(observe).handle_order_created(event)
    logger.info(
        "payment handled",
        extra={"order_id": event.subject, "integration_event_id": event.id, "outcome": result.outcome.value},
    )
    return result.outcome.value


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context) -> dict:
    try:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()
