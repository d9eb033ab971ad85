"""The CloudWatch dashboard: API, commands, each stream consumer, EDA queues, DynamoDB, Lambda.

Custom metrics are only the EMF metrics of docs/architecture.md (namespace ``Cairn``, dimension
``service`` = the function's ``POWERTOOLS_SERVICE_NAME``); tests check the dashboard against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from cdk_app.constructs.event_bus import Subscription
from cdk_app.constructs.function import METRICS_NAMESPACE, CairnFunction
from cdk_app.constructs.projection import Projection

__all__ = ["Dashboard", "command_metric"]

_MINUTE = Duration.minutes(1)


def command_metric(name: str, service: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    """One of the command handlers' EMF metrics for one service."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=_MINUTE,
        label=label or f"{service} {statistic}",
    )


def _graph(title: str, left: Sequence[cloudwatch.IMetric], right: Sequence[cloudwatch.IMetric] = (),
           width: int = 8) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(left), right=list(right), width=width, height=6)


class Dashboard(Construct):
    """One dashboard for the whole service; widgets are built from the constructs' own metrics."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        api: apigw.HttpApi,
        command_services: Sequence[str],
        projections: Mapping[str, Projection],
        subscriptions: Sequence[Subscription],
        tables: Mapping[str, dynamodb.ITable],
        functions: Mapping[str, CairnFunction],
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        d = self.dashboard

        d.add_widgets(cloudwatch.TextWidget(markdown="## HTTP API", width=24, height=1))
        d.add_widgets(
            _graph("API requests", [api.metric_count(statistic="Sum", period=_MINUTE, label="requests")]),
            _graph(
                "API 4xx / 5xx",
                [
                    api.metric_client_error(statistic="Sum", period=_MINUTE, label="4xx"),
                    api.metric_server_error(statistic="Sum", period=_MINUTE, label="5xx"),
                ],
            ),
            _graph(
                "API latency",
                [
                    api.metric_latency(statistic="p50", period=_MINUTE, label="p50"),
                    api.metric_latency(statistic="p99", period=_MINUTE, label="p99"),
                ],
            ),
        )

        d.add_widgets(cloudwatch.TextWidget(markdown="## Commands", width=24, height=1))
        d.add_widgets(
            _graph(
                "Command latency (ms)",
                [
                    command_metric("CommandLatency", service, stat, f"{service} {stat}")
                    for service in command_services
                    for stat in ("p50", "p99")
                ],
            ),
            _graph(
                "Conflicts retried",
                [command_metric("ConflictsRetried", s, "Sum", s) for s in command_services],
            ),
            _graph(
                "Idempotent replays",
                [command_metric("IdempotentReplays", s, "Sum", s) for s in command_services],
            ),
        )

        d.add_widgets(cloudwatch.TextWidget(markdown="## Stream consumers", width=24, height=1))
        for name, projection in projections.items():
            parked = [projection.failed_depth.with_(label="failed batches (make redrive)")]
            if projection.streams_parked is not None:
                parked.insert(0, projection.streams_parked.with_(label="streams parked"))
            errors = [projection.errors.with_(label="errors")]
            if projection.streams_parked is not None:  # the projections leave events behind (parked)
                errors.append(projection.events_behind.with_(label="events behind"))
            d.add_widgets(
                _graph(
                    f"{name}: lag",
                    [projection.lag_seconds.with_(label="oldest unapplied event (s)")],
                    [projection.iterator_age.with_(label="iterator age (ms)")],
                ),
                _graph(f"{name}: errors / events behind", errors),
                _graph(f"{name}: parked streams / failed batches", parked),
            )

        if subscriptions:
            d.add_widgets(cloudwatch.TextWidget(markdown="## Event-driven consumers", width=24, height=1))
            d.add_widgets(
                _graph(
                    "Queue backlog",
                    [
                        s.queue.metric_approximate_number_of_messages_visible(
                            statistic="Maximum", period=_MINUTE, label=s.name
                        )
                        for s in subscriptions
                    ],
                ),
                _graph(
                    "Dead letters",
                    [
                        s.dead_letters.metric_approximate_number_of_messages_visible(
                            statistic="Maximum", period=_MINUTE, label=s.name
                        )
                        for s in subscriptions
                    ],
                ),
                _graph(
                    "Oldest message age (s)",
                    [
                        s.queue.metric_approximate_age_of_oldest_message(
                            statistic="Maximum", period=_MINUTE, label=s.name
                        )
                        for s in subscriptions
                    ],
                ),
            )

        d.add_widgets(cloudwatch.TextWidget(markdown="## DynamoDB", width=24, height=1))
        d.add_widgets(
            _graph(
                "Read throttles",
                [t.metric("ReadThrottleEvents", statistic="Sum", period=_MINUTE, label=n) for n, t in tables.items()],
                width=12,
            ),
            _graph(
                "Write throttles",
                [t.metric("WriteThrottleEvents", statistic="Sum", period=_MINUTE, label=n) for n, t in tables.items()],
                width=12,
            ),
        )

        d.add_widgets(cloudwatch.TextWidget(markdown="## Lambda", width=24, height=1))
        d.add_widgets(
            _graph(
                "Errors",
                [f.function.metric_errors(statistic="Sum", period=_MINUTE, label=n) for n, f in functions.items()],
            ),
            _graph(
                "Throttles",
                [f.function.metric_throttles(statistic="Sum", period=_MINUTE, label=n) for n, f in functions.items()],
            ),
            _graph(
                "Duration p99 (ms)",
                [
                    f.function.metric_duration(statistic="p99", period=_MINUTE, label=n)
                    for n, f in functions.items()
                ],
            ),
        )

        if alarms:
            d.add_widgets(
                cloudwatch.AlarmStatusWidget(alarms=list(alarms), title="Alarms", width=24, height=6)
            )
