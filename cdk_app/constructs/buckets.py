"""The private, versioned buckets of the event store's tiers (snapshots, archive segments) and
their server access logs: one shape, so a hardening of one (TLS only, no ACLs, no public access,
old versions expired) is a hardening of all."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

__all__ = ["log_access", "versioned_private_bucket"]


def versioned_private_bucket(
    scope: Construct, id: str, *, expire_rule: str, noncurrent_days: int, removal_policy: RemovalPolicy
) -> s3.Bucket:
    """Versioned (a replaced object stays recoverable for ``noncurrent_days``), S3-managed
    encryption, no public access, bucket-owner-enforced, TLS only."""
    return s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                id=expire_rule,
                noncurrent_version_expiration=Duration.days(noncurrent_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        removal_policy=removal_policy,
    )


def log_access(bucket: s3.Bucket, logs: s3.IBucket, *, prefix: str, sid: str) -> None:
    """Server access logs of ``bucket`` into ``logs`` under ``prefix``, wired by hand under a bucket
    policy (not CDK's legacy log-delivery ACL, which depends on an app feature flag): works in any app."""
    cfn_bucket = bucket.node.default_child
    cfn_bucket.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(  # type: ignore[union-attr]
        destination_bucket_name=logs.bucket_name, log_file_prefix=prefix
    )
    logs.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[logs.arn_for_objects(f"{prefix}*")],
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                "StringEquals": {"aws:SourceAccount": Stack.of(bucket).account},
            },
        )
    )
