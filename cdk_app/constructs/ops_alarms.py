"""Alarms for what on-call must act on that no other construct owns (docs/ops.md has a runbook
section per alarm): a spike of optimistic-concurrency conflicts per command service, Lambda
throttling anywhere in the account's region, and throttled reads of the events table."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.function import METRICS_NAMESPACE

__all__ = ["OpsAlarms"]

_FIVE_MINUTES = Duration.minutes(5)


class OpsAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        alerts: Alerts,
        command_services: Sequence[str],
        events_table: dynamodb.ITable,
        conflicts_per_5_minutes: int = 50,
        throttles_per_5_minutes: int = 10,
    ) -> None:
        super().__init__(scope, id)
        for service in command_services:
            alerts.alarm(
                self,
                f"ConflictsSpike{service.capitalize()}Alarm",
                metric=cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name="ConflictsRetried",
                    dimensions_map={"service": service},
                    statistic="Sum",
                    period=_FIVE_MINUTES,
                ),
                threshold=conflicts_per_5_minutes,
                evaluation_periods=2,
                datapoints_to_alarm=2,
                description=f"{service}: {conflicts_per_5_minutes}+ concurrency conflicts retried in 5 minutes, "
                "twice in a row (a hot stream or a client retry storm; docs/ops.md#conflicts-spike)",
            )
        alerts.alarm(
            self,
            "LambdaThrottlesAlarm",
            metric=lambda_.Function.metric_all_throttles(statistic="Sum", period=_FIVE_MINUTES),
            threshold=throttles_per_5_minutes,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            description="Lambda is throttling invocations (concurrency limit; docs/ops.md#throttles)",
        )
        alerts.alarm(
            self,
            "EventsReadThrottlesAlarm",
            metric=events_table.metric("ReadThrottleEvents", statistic="Sum", period=_FIVE_MINUTES),
            threshold=throttles_per_5_minutes,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description="Reads of the events table are being throttled (docs/ops.md#throttles)",
        )
