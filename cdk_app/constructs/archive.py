"""The archive tier (issue 13): the archive bucket, the scheduled archiver, and its grants.

- The bucket: segments are written with the Glacier Instant Retrieval storage class by the
  archiver itself (rare reads, millisecond access; 90-day minimum, which archived events never
  leave early), manifests in Standard. SSE-S3, SSL only, versioned (an overwritten or deleted
  object keeps its previous version for ``noncurrent_days``), server access logs.
- The archiver (EventBridge schedule -> Lambda, with a dead-letter queue and an alarm on
  ``ArchiveFailures``): reads and writes the bucket, reads snapshots, and is the only role
  besides break glass that the events table lets ``DeleteItem`` (the table's resource policy,
  ``Integrity(deleters=...)``); every other mutation stays explicitly denied to it.
- Readers (commands, queries, projections, ops, the tamper detector, the digest job): GetObject
  on the archive prefix and ListBucket (a missing object is then a 404, not a 403), and
  ``ARCHIVE_BUCKET`` in their environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.buckets import log_access, versioned_private_bucket
from cdk_app.constructs.event_store import EVENT_MUTATIONS, EventStore
from cdk_app.constructs.function import METRICS_NAMESPACE, CairnFunction
from cdk_app.constructs.nag import acknowledge, principal_scope, resource_finding

__all__ = ["ARCHIVER_TABLE_ACTIONS", "ArchiveTier"]

# What the archiver does to the events table: find streams (Scan), read heads and ranges (Query),
# check a snapshot's event (GetItem), remove archived items (DeleteItem, conditional on the hash).
ARCHIVER_TABLE_ACTIONS = ("dynamodb:Query", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:DeleteItem")
PREFIX = "archive/"


class ArchiveTier(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        store: EventStore,
        archiver: CairnFunction,
        readers: Sequence[CairnFunction],
        alerts: Alerts,
        every: Duration = Duration.days(1),
        noncurrent_days: int = 30,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = versioned_private_bucket(
            self, "Bucket", expire_rule="expire-replaced-archive-versions", noncurrent_days=noncurrent_days,
            removal_policy=removal_policy,
        )
        log_access(self.bucket, store.access_logs_bucket, prefix=PREFIX, sid="S3ServerAccessLogsArchive")

        for reader in readers:
            self._grant_read(reader)
            reader.add_environment("ARCHIVE_BUCKET", self.bucket.bucket_name)

        # -- the archiver ---------------------------------------------------------------------------
        role = archiver.role
        self._grant_read(archiver)
        iam.Grant.add_to_principal(
            grantee=role, actions=["s3:PutObject"], resource_arns=[self.bucket.arn_for_objects(f"{PREFIX}*")]
        )
        iam.Grant.add_to_principal(
            grantee=role, actions=list(ARCHIVER_TABLE_ACTIONS), resource_arns=[store.events_table.table_arn]
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ArchiverOnlyDeletes",
                effect=iam.Effect.DENY,
                actions=[a for a in EVENT_MUTATIONS if a != "dynamodb:DeleteItem"],
                resources=[store.events_table.table_arn],
            )
        )
        store.grant_snapshot_read(archiver.role)
        archiver.add_environment("ARCHIVE_BUCKET", self.bucket.bucket_name)
        self.dead_letters = sqs.Queue(
            self,
            "ArchiverDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            {
                "AwsSolutions-SQS3": "This queue is the dead-letter queue of the archiver schedule's target; an "
                "operator reads it (a failed run is repeated safely by the next schedule).",
                "Serverless-SQSRedrivePolicy": "Dead-letter destination of a schedule target; nothing consumes it "
                "automatically, so there is no receive count to redrive on.",
            },
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.rate(every),
            description="Cairn: archive old events to S3 (verified segments), then remove them from DynamoDB",
            targets=[targets.LambdaFunction(archiver.function, dead_letter_queue=self.dead_letters, retry_attempts=2)],
        )
        alerts.alarm(
            self,
            "ArchiveFailuresAlarm",
            metric=cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="ArchiveFailures",
                dimensions_map={"service": archiver.service},
                statistic="Maximum",
                period=Duration.hours(1),
            ),
            threshold=1,
            description="The archiver stopped on a stream (a segment or manifest that does not verify, or "
            "DynamoDB disagreeing with the archive): see its log, run make verify",
        )

    def _grant_read(self, fn: CairnFunction) -> None:
        iam.Grant.add_to_principal(
            grantee=fn.role, actions=["s3:GetObject"], resource_arns=[self.bucket.arn_for_objects(f"{PREFIX}*")]
        )
        iam.Grant.add_to_principal(grantee=fn.role, actions=["s3:ListBucket"], resource_arns=[self.bucket.bucket_arn])
        scope = principal_scope(fn.role)
        if scope is not None:
            acknowledge(
                scope,
                {
                    resource_finding(self, self.bucket, f"/{PREFIX}*"): (
                        "Archive segment and manifest keys are derived from stream ids and version ranges at "
                        "run time; the grant covers the archive prefix of this one bucket only."
                    )
                },
            )
