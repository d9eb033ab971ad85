"""The log proves itself (issue 11): no silent overwrite, a tamper detector, and the digest bucket.

- A resource policy on the events table denies every item mutation (UpdateItem, DeleteItem,
  BatchWriteItem, PartiQL update/delete) to every principal except the named break-glass role
  (docs/deploy.md says when and how it is used). Identity policies already deny them to every
  role with access (``EventStore._deny_mutations``); the resource policy also binds roles made
  later, by anyone, with ``dynamodb:*``.
- The tamper detector consumes MODIFY and REMOVE records of the events table's stream (IAM cannot
  force a PutItem to be conditional, so an overwrite is still possible for a writer role): a
  ``TamperDetected`` metric, alarmed.
- The digest bucket: S3 Object Lock in compliance mode; the scheduled digest job writes the root
  hash over every stream head there, and ``make verify`` checks the store against the latest one.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.event_store import EVENT_MUTATIONS, EventStore
from cdk_app.constructs.function import METRICS_NAMESPACE, CairnFunction
from cdk_app.constructs.nag import acknowledge, principal_scope, resource_finding
from cdk_app.constructs.projection import Projection
from cdk_app.constructs.queues import dead_letter_queue

__all__ = ["BREAK_GLASS_ROLE_NAME_OUTPUT", "Integrity"]

BREAK_GLASS_ROLE_NAME_OUTPUT = "BreakGlassRoleArn"


class Integrity(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        store: EventStore,
        tamper_detector: CairnFunction,
        digest_job: CairnFunction,
        alerts: Alerts,
        mutation_principals: Sequence[iam.IRole] = (),
        deleters: Sequence[iam.IRole] = (),
        digest_retention: Duration = Duration.days(400),
        digest_every: Duration = Duration.hours(1),
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, id)
        table = store.events_table

        # -- break glass: the only principal the table lets mutate an item ------------------------
        self.break_glass = iam.Role(
            self,
            "BreakGlass",
            assumed_by=iam.AccountRootPrincipal().with_conditions(
                {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
            ),
            max_session_duration=Duration.hours(1),
            description="Cairn break glass: the only role that may update or delete event items "
            "(docs/deploy.md). Every use is reported by the tamper detector.",
        )
        iam.Grant.add_to_principal(
            grantee=self.break_glass,
            actions=["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            resource_arns=[table.table_arn],
        )
        exempt = [self.break_glass.role_arn, *(role.role_arn for role in mutation_principals)]
        # DeleteItem in a statement of its own: the archiver (``deleters``) may remove archived
        # items, and nothing else (issue 13; docs/deploy.md, threat model)
        table.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventsAreAppendOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=[a for a in EVENT_MUTATIONS if a != "dynamodb:DeleteItem" or not deleters],
                resources=["*"],  # the table itself (a resource policy cannot name its own generated ARN)
                conditions={"ArnNotEquals": {"aws:PrincipalArn": exempt}},
            )
        )
        if deleters:
            table.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OnlyTheArchiverDeletes",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["dynamodb:DeleteItem"],
                    resources=["*"],
                    conditions={"ArnNotEquals": {"aws:PrincipalArn": [*exempt, *(r.role_arn for r in deleters)]}},
                )
            )

        # -- tamper detector ----------------------------------------------------------------------
        self.tamper_consumer = Projection(
            self,
            "TamperConsumer",
            function=tamper_detector,
            event_store=store,
            event_names=("MODIFY", "REMOVE"),
            # On the table's own DynamoDB stream (one of the two readers it may have, issue 18):
            # the detector watches the source of truth, not a copy one hop downstream.
            source="dynamodb",
            alerts=alerts,
            emits_parked_streams=False,
        )
        self.tamper_detected = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="TamperDetected",
            dimensions_map={"service": tamper_detector.service},
            statistic="Sum",
            period=Duration.minutes(1),
        )
        alerts.alarm(
            self,
            "TamperDetectedAlarm",
            metric=self.tamper_detected,
            threshold=1,
            description="An event item was changed or removed behind the store (see the detector's log "
            "for the stream id); run make verify",
        )

        # -- digest bucket (Object Lock, compliance mode) and the scheduled digest job ------------
        self.digest_bucket = s3.Bucket(
            self,
            "Digests",
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(digest_retention),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        log_prefix = "digests/"
        logs_bucket = store.access_logs_bucket
        cfn_bucket = self.digest_bucket.node.default_child
        cfn_bucket.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(  # type: ignore[union-attr]
            destination_bucket_name=logs_bucket.bucket_name, log_file_prefix=log_prefix
        )
        logs_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3ServerAccessLogsDigests",
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[logs_bucket.arn_for_objects(f"{log_prefix}*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": self.digest_bucket.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                },
            )
        )

        store.grant_scan_events(digest_job.role)
        iam.Grant.add_to_principal(
            grantee=digest_job.role,
            actions=["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"],
            resource_arns=[self.digest_bucket.arn_for_objects("digests/*")],
        )
        iam.Grant.add_to_principal(
            grantee=digest_job.role, actions=["s3:ListBucket"], resource_arns=[self.digest_bucket.bucket_arn]
        )
        digest_scope = principal_scope(digest_job.role)
        if digest_scope is not None:
            acknowledge(
                digest_scope,
                {
                    resource_finding(self, self.digest_bucket, "/digests/*"): (
                        "One new digest object per run, named by its time; the grant covers the digests "
                        "prefix of this one bucket, whose Object Lock forbids changing any of them."
                    )
                },
            )
        digest_job.add_environment("DIGEST_BUCKET", self.digest_bucket.bucket_name)
        self.digest_dlq = dead_letter_queue(
            self, "DigestDeadLetters", holds="runs of the digest schedule that could not be started",
            handled="an operator reads it, and the next run of the schedule writes the digest",
        )
        self.schedule = events.Rule(
            self,
            "DigestSchedule",
            schedule=events.Schedule.rate(digest_every),
            description="Cairn: verify every stream and write the digest of their heads",
            targets=[targets.LambdaFunction(digest_job.function, dead_letter_queue=self.digest_dlq, retry_attempts=2)],
        )
        self.violations = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="IntegrityViolations",
            dimensions_map={"service": digest_job.service},
            statistic="Maximum",
            period=Duration.hours(1),
        )
        alerts.alarm(
            self,
            "IntegrityViolationsAlarm",
            metric=self.violations,
            threshold=1,
            description="The digest job found streams whose hash chain or head does not verify; no digest "
            "was written (run make verify)",
        )
