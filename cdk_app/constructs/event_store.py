"""The event store: events table (+ stream), idempotency markers, snapshot bucket — and its grants.

The grants are the only way to give a role access: they encode the append-only rule. Any role that
gets any access to the events table also gets an explicit ``Deny`` of the item mutations, so no
later grant (by anyone, ``dynamodb:*`` included) can turn the log into something editable.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.constructs.buckets import log_access, versioned_private_bucket
from cdk_app.constructs.nag import acknowledge, principal_scope, resource_finding

__all__ = [
    "APPEND_ACTIONS",
    "EVENT_MUTATIONS",
    "EventStore",
    "FAN_OUT_CONSUMER_ACTIONS",
    "FAN_OUT_STREAM_ACTIONS",
    "MARKER_ACTIONS",
    "READ_ACTIONS",
    "STREAM_ACTIONS",
]

# What a command may do to the events table: conditional Put (single append), ConditionCheck (in
# TransactWriteItems, whose IAM check is per item action), Query/GetItem (load).
APPEND_ACTIONS = ("dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:GetItem")
READ_ACTIONS = ("dynamodb:Query", "dynamodb:GetItem")
MARKER_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem")
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
# A Lambda mapping on an enhanced fan-out consumer (issue 18): the stream's shards, the consumer.
FAN_OUT_STREAM_ACTIONS = ("kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards")
FAN_OUT_CONSUMER_ACTIONS = ("kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard")
# Denied to every role with access to the events table: the log only grows.
EVENT_MUTATIONS = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)


class EventStore(Construct):
    """Events table (PK ``stream_id`` S, SK ``version`` N, stream NEW_IMAGE), markers, snapshots.

    ``fan_out="kinesis"`` (decisions, issue 18): the table also streams its changes to a Kinesis
    data stream (Kinesis Data Streams for DynamoDB), which the stream consumers read through
    enhanced fan-out consumers, each with its own throughput; the DynamoDB stream stays for at
    most two other readers (AWS's advice per shard) and for the local runtime's forwarder.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        noncurrent_snapshot_days: int = 30,
        access_log_days: int = 365,
        access_logs_bucket: s3.IBucket | None = None,
        fan_out: str = "kinesis",
    ) -> None:
        super().__init__(scope, id)
        self._denied: set[str] = set()
        if fan_out not in ("kinesis", "dynamodb"):
            raise ValueError(f"fan_out must be 'kinesis' or 'dynamodb', not {fan_out!r}")
        self.fan_out_stream: kinesis.Stream | None = None
        if fan_out == "kinesis":
            # On demand: no shard count to manage, and it follows the table's on-demand writes.
            self.fan_out_stream = kinesis.Stream(
                self,
                "FanOut",
                stream_mode=kinesis.StreamMode.ON_DEMAND,
                encryption=kinesis.StreamEncryption.MANAGED,
                retention_period=Duration.hours(24),
            )

        self.events_table = dynamodb.Table(
            self,
            "Events",
            partition_key=dynamodb.Attribute(name="stream_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="version", type=dynamodb.AttributeType.NUMBER),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            kinesis_stream=self.fan_out_stream,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=removal_policy,
        )
        self.idempotency_table = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="idempotency_key", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=removal_policy,
        )

        if access_logs_bucket is None:
            access_logs_bucket = s3.Bucket(
                self,
                "AccessLogs",
                encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 log delivery supports
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                enforce_ssl=True,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="expire-access-logs",
                        expiration=Duration.days(access_log_days),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    )
                ],
                removal_policy=removal_policy,
            )
        self.access_logs_bucket = access_logs_bucket

        self.snapshot_bucket = versioned_private_bucket(
            self, "Snapshots", expire_rule="expire-old-snapshot-versions",
            noncurrent_days=noncurrent_snapshot_days, removal_policy=removal_policy,
        )
        log_access(self.snapshot_bucket, access_logs_bucket, prefix="snapshots/", sid="S3ServerAccessLogs")

    # -- grants ---------------------------------------------------------------------------------

    def _deny_mutations(self, grantee: iam.IGrantable) -> None:
        principal = grantee.grant_principal
        key = principal.node.path if isinstance(principal, Construct) else str(id(principal))
        if key in self._denied:
            return
        self._denied.add(key)
        principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EventsAreAppendOnly",
                effect=iam.Effect.DENY,
                actions=list(EVENT_MUTATIONS),
                resources=[self.events_table.table_arn],
            )
        )

    def grant_append(self, grantee: iam.IGrantable, stream_prefixes: Sequence[str] = ()) -> None:
        """Append events (conditional Put / transactions of Puts + ConditionChecks) and load them.

        ``stream_prefixes``: the aggregates the role may touch (``dynamodb:LeadingKeys``), so the
        accounts role cannot write an ``order-`` stream."""
        self._deny_mutations(grantee)
        conditions = None
        if stream_prefixes:
            conditions = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in stream_prefixes]}}
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(APPEND_ACTIONS), resources=[self.events_table.table_arn], conditions=conditions
            )
        )

    def grant_scan_events(self, grantee: iam.IGrantable) -> None:
        """Scan the events table (verification and digests read every stream)."""
        self._deny_mutations(grantee)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["dynamodb:Scan", "dynamodb:DescribeTable"],
            resource_arns=[self.events_table.table_arn],
        )

    def grant_read_events(self, grantee: iam.IGrantable) -> None:
        """Query / GetItem on the events table (load, time travel, gap repair)."""
        self._deny_mutations(grantee)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(READ_ACTIONS), resource_arns=[self.events_table.table_arn]
        )

    def grant_stream_read(self, grantee: iam.IGrantable) -> None:
        """Read the events table's stream (what an event source mapping's role needs)."""
        self._deny_mutations(grantee)
        stream_arn = self.events_table.table_stream_arn
        assert stream_arn is not None  # the table is created with a stream
        iam.Grant.add_to_principal(grantee=grantee, actions=list(STREAM_ACTIONS), resource_arns=[stream_arn])
        # ListStreams has no resource-level permission; acknowledged in CairnFunction.
        iam.Grant.add_to_principal(grantee=grantee, actions=["dynamodb:ListStreams"], resource_arns=["*"])

    def grant_fan_out_read(self, grantee: iam.IGrantable, consumer: kinesis.StreamConsumer) -> None:
        """What a Lambda mapping on an enhanced fan-out ``consumer`` of the fan-out stream needs:
        SubscribeToShard / DescribeStreamConsumer on that consumer only, and the shard listing
        (DescribeStream, DescribeStreamSummary, ListShards) of the stream; no GetRecords (EFO
        pushes records) and no other consumer."""
        assert self.fan_out_stream is not None
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(FAN_OUT_STREAM_ACTIONS),
            resource_arns=[self.fan_out_stream.stream_arn],
        )
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(FAN_OUT_CONSUMER_ACTIONS),
            resource_arns=[consumer.stream_consumer_arn],
        )

    def grant_write_markers(self, grantee: iam.IGrantable) -> None:
        """Write and read idempotency markers (written in the same transaction as the events)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(MARKER_ACTIONS), resource_arns=[self.idempotency_table.table_arn]
        )

    def grant_snapshot_read(self, grantee: iam.IGrantable) -> None:
        """GetObject on snapshots; ListBucket so a missing snapshot is a 404, not a 403."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:GetObject"], resource_arns=[self.snapshot_bucket.arn_for_objects("*")]
        )
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:ListBucket"], resource_arns=[self.snapshot_bucket.bucket_arn]
        )
        self._acknowledge_object_wildcard(grantee)

    def grant_snapshot_write(self, grantee: iam.IGrantable) -> None:
        """PutObject on snapshots (the snapshotter; commands never write snapshots)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["s3:PutObject"], resource_arns=[self.snapshot_bucket.arn_for_objects("*")]
        )
        self._acknowledge_object_wildcard(grantee)

    def _acknowledge_object_wildcard(self, grantee: iam.IGrantable) -> None:
        scope = principal_scope(grantee)
        if scope is not None:
            acknowledge(
                scope,
                {
                    resource_finding(self, self.snapshot_bucket): (
                        "Snapshot object keys are derived from stream ids at run time (one object per "
                        "stream), so the grant covers the objects of this one bucket only."
                    )
                },
            )
