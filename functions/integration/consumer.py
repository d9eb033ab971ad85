"""Consumer side of the bus: an SQS message (rule -> queue) -> the typed integration event.

Each consuming service's Lambda reads its own SQS queue (the rule's target, with a DLQ). The
message body is the EventBridge event as the rule delivered it; its ``detail`` is the envelope.
Validated with Powertools' ``EventBridgeModel`` (the real event shape) and the catalogue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from integration.catalogue import (
    MalformedIntegrationEventError,
    UnknownIntegrationEventError,
    parse_integration_event,
)
from integration.envelope import IntegrationEvent

logger = logging.getLogger(__name__)


class DeliveredEvent(EventBridgeModel):
    """EventBridge's target event shape. ``account`` is optional: moto's SQS targets omit it
    (AWS always sends it) and nothing here depends on it."""

    account: str | None = None  # type: ignore[assignment]


def event_from_eventbridge(raw: dict[str, Any]) -> IntegrationEvent:
    """An EventBridge event (as delivered to a target) -> its integration event.

    Raises MalformedIntegrationEventError (retrying cannot help: the message goes to the DLQ
    after the queue's maxReceiveCount) or UnknownIntegrationEventError (a contract this code
    does not know).
    """
    try:
        bridge = DeliveredEvent.model_validate(raw)
    except ValidationError as exc:
        raise MalformedIntegrationEventError(f"not an EventBridge event: {exc}") from exc
    event = parse_integration_event(bridge.detail)
    if bridge.detail_type != event.type or bridge.source != event.source:
        raise MalformedIntegrationEventError(
            f"detail-type/source {bridge.detail_type}/{bridge.source} do not match the envelope "
            f"{event.type}/{event.source}"
        )
    return event


def event_from_sqs_body(body: str) -> IntegrationEvent:
    try:
        raw = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedIntegrationEventError(f"SQS body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise MalformedIntegrationEventError("SQS body is not a JSON object")
    return event_from_eventbridge(raw)


def accepted_event(body: str, accepts: frozenset[tuple[str, int]]) -> IntegrationEvent | None:
    """The integration event of an SQS body if this consumer handles its (type, version), else None.

    Unknown or unhandled (type, version) pairs are logged and acknowledged, not retried: during a
    contract migration the producer publishes v1 and v2 side by side and each consumer takes the
    version it knows (rules should also filter on ``detail.version``).
    """
    try:
        event = event_from_sqs_body(body)
    except UnknownIntegrationEventError as exc:
        logger.warning("ignoring integration event: %s", exc)
        return None
    if (event.type, event.version) not in accepts:
        logger.warning("ignoring %s v%s (not handled here)", event.type, event.version)
        return None
    return event


class SqsConsumer:
    """One integration-event consumer Lambda fed by an SQS queue (rule -> queue -> Lambda).

    Powertools' BatchProcessor with partial batch responses (a fully failed batch is reported
    the same way: every message back to the queue, then to the DLQ after maxReceiveCount),
    a Logger with the event's correlation id, Metrics flushed only when there are some. Tracing is
    Lambda's active tracing (no X-Ray SDK in the function: docs/decisions.md, issue 17).
    ``handle(event)`` does the work for one accepted integration event.
    """

    def __init__(self, accepts: frozenset[tuple[str, int]], handle: Callable[[IntegrationEvent], Any]):
        from aws_lambda_powertools import Logger, Metrics
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        from cairn.logs import structured

        self.accepts = accepts
        self.handle = handle
        self.logger = structured(Logger())  # the contexts' own loggers through it too
        self.metrics = Metrics()
        self.processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.handler = self.logger.inject_lambda_context(self._handler)

    def count(self, name: str, value: float = 1) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def latency(self, name: str, milliseconds: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)

    def record_handler(self, record: Any) -> Any:
        event = accepted_event(record.body, self.accepts)
        if event is None:
            return None
        self.logger.set_correlation_id(event.correlation_id)
        return self.handle(event)

    def _handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.batch import process_partial_response

        from cairn.deadline import deadline_of

        try:
            # every AWS call of the batch is budgeted to end before Lambda's timeout: a record
            # whose call is refused fails alone and goes back to the queue (cairn.aws)
            with deadline_of(context):
                return process_partial_response(
                    event=event, record_handler=self.record_handler, processor=self.processor, context=context
                )
        finally:
            if self.metrics.metric_set:
                self.metrics.flush_metrics()
