"""The daily snapshot sweep: an EventBridge schedule -> the snapshotter's ``scheduled_handler``.

The stream consumer snapshots a stream when a batch reaches a multiple of N; a stream that grows
slowly may go long without one. Once a day this snapshots every stream whose head is past its
snapshot (a keys-only scan of the events table; see docs/ops.md).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.event_store import EventStore
from cdk_app.constructs.function import CairnFunction
from cdk_app.constructs.queues import dead_letter_queue

__all__ = ["SnapshotSchedule"]


class SnapshotSchedule(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        function: CairnFunction,
        event_store: EventStore,
        alerts: Alerts | None = None,
        every: Duration = Duration.days(1),
    ) -> None:
        super().__init__(scope, id)
        iam.Grant.add_to_principal(
            grantee=function.role, actions=["dynamodb:Scan"], resource_arns=[event_store.events_table.table_arn]
        )
        event_store.grant_read_events(function.role)
        event_store.grant_snapshot_read(function.role)
        event_store.grant_snapshot_write(function.role)
        # Schedule deliveries EventBridge could not make (the function throttled or missing).
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", holds="schedule deliveries EventBridge could not make",
            handled="its alarm calls a person, and the next day's sweep takes every stream due",
        )
        self.rule = events.Rule(
            self,
            "Rule",
            schedule=events.Schedule.rate(every),
            description="Cairn: snapshot the streams that grew since their last snapshot",
            targets=[
                targets.LambdaFunction(function.function, retry_attempts=2, dead_letter_queue=self.dead_letters)
            ],
        )
        if alerts is not None:
            alerts.alarm(
                self,
                "DeadLettersAlarm",
                metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(5)
                ),
                threshold=1,
                description="The daily snapshot sweep could not be started (see its dead-letter queue)",
            )
            alerts.alarm(
                self,
                "FailedAlarm",
                metric=function.function.metric_errors(statistic="Sum", period=Duration.hours(1)),
                threshold=1,
                description="The daily snapshot sweep failed (commands load longer tails until it runs)",
            )
