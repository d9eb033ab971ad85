"""Integration events: an EventBridge bus with an archive, and SQS-buffered subscriptions.

Each subscription is rule -> queue -> function. The queue absorbs bursts and retries; a message that
fails ``max_receive_count`` times moves to the subscription's DLQ, which is also the rule target's
dead-letter queue (events EventBridge could not deliver), so one queue holds everything a human
has to look at for that consumer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Names, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.function import CairnFunction
from cdk_app.constructs.nag import acknowledge
from cdk_app.constructs.queues import dead_letter_queue

__all__ = ["EventBus", "Subscription"]


@dataclass(frozen=True)
class Subscription:
    """What :meth:`EventBus.subscribe` created for one consumer."""

    name: str
    function: CairnFunction
    queue: sqs.Queue
    dead_letters: sqs.Queue
    rule: events.Rule


class EventBus(Construct):
    """Custom bus (+ archive for replays) carrying the integration events of ``source``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        source: str = "cairn.orders",
        archive_retention: Duration = Duration.days(365),
        alerts: Alerts | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.source = source
        self.alerts = alerts
        self.bus = events.EventBus(self, "Bus", description="Cairn integration events")
        self.archive = self.bus.archive(
            "Archive",
            description="Every integration event, for replay into a new or repaired consumer",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=archive_retention,
        )
        self.subscriptions: dict[str, Subscription] = {}

    def grant_put(self, grantee: iam.IGrantable) -> None:
        """events:PutEvents on this bus only."""
        self.bus.grant_put_events_to(grantee)

    def subscribe(
        self,
        id: str,
        *,
        function: CairnFunction,
        detail_types: Sequence[str],
        detail: Mapping[str, Any] | None = None,
        source: str | None = None,
        batch_size: int = 10,
        max_batching_window: Duration = Duration.seconds(1),
        max_receive_count: int = 5,
        max_concurrency: int = 5,
    ) -> Subscription:
        """Deliver events of ``detail_types`` (optionally matching ``detail``) from ``source`` (default:
        the bus's) to ``function``."""
        scope = Construct(self, id)
        source = source or self.source
        dead_letters = dead_letter_queue(
            scope, "DeadLetters", holds="events the subscription (or its rule target) could not deliver",
            handled="an operator inspects and redrives it", of_a_queue=True,
        )
        timeout = function.timeout
        queue = sqs.Queue(
            scope,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS: at least 6x the function timeout, so retries of a batch do not overlap.
            visibility_timeout=Duration.seconds(6 * timeout.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=max_receive_count),
        )
        rule = events.Rule(
            scope,
            "Rule",
            event_bus=self.bus,
            description=f"{', '.join(detail_types)} from {source} -> {id}",
            event_pattern=events.EventPattern(
                source=[source], detail_type=list(detail_types), detail=dict(detail) if detail else None
            ),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=dead_letters,
                    retry_attempts=185,  # EventBridge's maximum: retry for the whole event age
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        event_source = sources.SqsEventSource(
            queue,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            report_batch_item_failures=True,
            # A flood on one queue (a burst of orders) must not take the account's concurrency
            # from the stream consumers and the API: each queue's poller scales to at most this.
            max_concurrency=max_concurrency,
        )
        function.function.add_event_source(event_source)
        mapping = function.function.node.find_child(f"SqsEventSource:{Names.node_unique_id(queue.node)}")
        acknowledge(
            mapping,
            {
                "Serverless-LambdaEventSourceMappingDestination": (
                    "SQS event source mappings do not support on-failure destinations; messages that "
                    f"fail {max_receive_count} times move to the queue's redrive DLQ instead."
                ),
            },
        )
        if self.alerts is not None:
            self.alerts.alarm(
                scope,
                "DeadLettersAlarm",
                metric=dead_letters.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(5)
                ),
                threshold=1,
                description=f"{id}: integration events could not be delivered or processed (DLQ not empty)",
            )
        subscription = Subscription(id, function, queue, dead_letters, rule)
        self.subscriptions[id] = subscription
        return subscription
