"""A consumer of the events stream: function + event source mapping + parked queue + alarms.

Used for the read-model projections and for the other stream consumers (snapshotter, publisher):
all of them need the same delivery settings — start at the beginning of the stream, bisect a
failing batch, report partial failures, bounded retries and record age, and an on-failure queue so
a poison batch never blocks its shard for 24 hours.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.event_store import EventStore
from cdk_app.constructs.function import METRICS_NAMESPACE, CairnFunction
from cdk_app.constructs.queues import dead_letter_queue

__all__ = ["Projection", "stream_filters"]


def stream_filters(
    prefixes: Sequence[str], event_names: Sequence[str] = ("INSERT",), *, kinesis_data: bool = False
) -> list[dict]:
    """FilterCriteria: inserted items (appends) whose ``stream_id`` starts with one of ``prefixes``.

    No prefixes = every append. Filters are ORed by Lambda. With ``kinesis_data`` the same pattern
    sits under ``data``: Lambda decodes a Kinesis record's base64 data as JSON and filters on it
    (Kinesis Data Streams for DynamoDB writes the change there). ``event_names``: other record kinds
    (the tamper detector wants MODIFY and REMOVE).
    """
    insert = lambda_.FilterRule.is_equal(event_names[0]) if len(event_names) == 1 else lambda_.FilterRule.or_(*event_names)

    def pattern(body: dict) -> dict:
        return lambda_.FilterCriteria.filter({"data": body} if kinesis_data else body)

    if not prefixes:
        return [pattern({"eventName": insert})]
    return [
        pattern(
            {
                "eventName": insert,
                "dynamodb": {"Keys": {"stream_id": {"S": lambda_.FilterRule.begins_with(prefix)}}},
            }
        )
        for prefix in prefixes
    ]


class Projection(Construct):
    """Feeds ``function`` from the event store's stream; it may write only ``read_models``."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        function: CairnFunction,
        event_store: EventStore,
        stream_prefixes: Sequence[str] = (),
        read_models: Sequence[dynamodb.ITable] = (),
        alerts: Alerts | None = None,
        emits_parked_streams: bool = True,
        event_names: Sequence[str] = ("INSERT",),
        batch_size: int = 100,
        max_batching_window: Duration = Duration.seconds(1),
        retry_attempts: int = 10,
        max_record_age: Duration = Duration.hours(6),
        parallelization_factor: int = 1,
        iterator_age_alarm: Duration = Duration.minutes(5),
        lag_alarm: Duration = Duration.minutes(5),
        consumer: str | None = None,
        source: str = "fan_out",
    ) -> None:
        """``source``: ``"fan_out"`` reads the event store's Kinesis fan-out stream when it has one
        (its own enhanced fan-out consumer); ``"dynamodb"`` reads the table's DynamoDB stream,
        for the at most two readers kept there (issue 18)."""
        super().__init__(scope, id)
        self.function = function
        self.read_models = list(read_models)
        fn = function.function

        # Batches the event source mapping gave up on (KinesisBatchInfo / DDBStreamBatchInfo: shard
        # + sequence range, no records): drained by `make redrive`. Parking notices go to the parked queue.
        self.failed_queue = dead_letter_queue(
            self, "Failed", holds="batches the stream event source mapping gave up on",
            handled="an operator drains it with make redrive",
        )
        self.parked_queue = dead_letter_queue(
            self, "Parked", holds="notices of streams a projection parked",
            handled="an operator reads it and unparks with make unpark",
        )

        event_store.grant_read_events(function.role)  # gap repair reads the store
        for table in self.read_models:
            table.grant_read_write_data(function.role)
        self.parked_queue.grant_send_messages(function.role)
        function.add_environment("PARKED_QUEUE_URL", self.parked_queue.queue_url)
        # the `consumer` dimension of LagSeconds / EventsBehind (cairn.lag)
        self.consumer = consumer or function.node.id
        function.add_environment("CAIRN_CONSUMER", self.consumer)

        settings = dict(
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            retry_attempts=retry_attempts,
            max_record_age=max_record_age,
            parallelization_factor=parallelization_factor,
            on_failure=sources.SqsDlq(self.failed_queue),
        )
        self.stream_consumer: kinesis.StreamConsumer | None = None
        if source not in ("fan_out", "dynamodb"):
            raise ValueError(f"source must be 'fan_out' or 'dynamodb', not {source!r}")
        if event_store.fan_out_stream is not None and source == "fan_out":
            # Its own enhanced fan-out consumer: 2 MB/s per shard pushed to this reader alone, so
            # the readers do not share (and throttle) each other's throughput.
            self.stream_consumer = kinesis.StreamConsumer(
                self,
                "FanOutConsumer",
                stream=event_store.fan_out_stream,
                stream_consumer_name=self.consumer,
            )
            # Not KinesisConsumerEventSource: its bind grants GetRecords, SubscribeToShard and
            # ListStreams on the whole stream too. Lambda reads an EFO consumer with these only
            # (no KMS grant: the stream uses the AWS-managed aws/kinesis key).
            event_store.grant_fan_out_read(function.role, self.stream_consumer)
            self.mapping = fn.add_event_source_mapping(
                "FanOutMapping",
                event_source_arn=self.stream_consumer.stream_consumer_arn,
                filters=stream_filters(stream_prefixes, event_names, kinesis_data=True),
                **settings,
            )
            self.mapping.node.add_dependency(function.role)
        else:
            event_store.grant_stream_read(function.role)
            # DynamoEventSource.bind grants dynamodb:ListStreams on '*' like grant_stream_read does.
            source = sources.DynamoEventSource(
                event_store.events_table, filters=stream_filters(stream_prefixes, event_names), **settings
            )
            fn.add_event_source(source)

        # Unlabelled on purpose: a labelled metric makes alarms use metric-math queries.
        self.iterator_age = fn.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(1))
        self.errors = fn.metric_errors(statistic="Sum", period=Duration.minutes(1))
        self.parked_depth = self.parked_queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=Duration.minutes(5)
        )
        self.failed_depth = self.failed_queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=Duration.minutes(5)
        )
        lag_dimensions = {"service": function.service, "consumer": self.consumer}
        self.lag_seconds = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="LagSeconds",
            dimensions_map=lag_dimensions,
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        self.events_behind = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="EventsBehind",
            dimensions_map=lag_dimensions,
            statistic="Maximum",
            period=Duration.minutes(1),
        )
        self.streams_parked = (
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="StreamsParked",
                dimensions_map={"service": function.service},
                statistic="Sum",
                period=Duration.minutes(5),
            )
            if emits_parked_streams
            else None
        )

        if alerts is not None:
            alerts.alarm(
                self,
                "IteratorAgeAlarm",
                metric=self.iterator_age,
                threshold=iterator_age_alarm.to_milliseconds(),
                evaluation_periods=5,
                datapoints_to_alarm=3,
                description=f"{id} lags the event stream by more than {iterator_age_alarm.to_human_string()}",
            )
            alerts.alarm(
                self,
                "LagAlarm",
                metric=self.lag_seconds,
                threshold=lag_alarm.to_seconds(),
                evaluation_periods=5,
                datapoints_to_alarm=3,
                description=f"{id}: the oldest event received and not yet applied is older than "
                f"{lag_alarm.to_human_string()} (docs/ops.md#lag)",
            )
            alerts.alarm(
                self,
                "ErrorsAlarm",
                metric=self.errors,
                threshold=1,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                description=f"{id} keeps failing (batches are being retried)",
            )
            alerts.alarm(
                self,
                "FailedBatchesAlarm",
                metric=self.failed_depth,
                threshold=1,
                description=f"{id}: a batch exhausted its retries and was sent to the on-failure queue (make redrive)",
            )
            if self.streams_parked is not None:
                alerts.alarm(
                    self,
                    "StreamsParkedAlarm",
                    metric=self.streams_parked,
                    threshold=1,
                    description=f"{id} parked a stream it could not apply (see the read-model table)",
                )
