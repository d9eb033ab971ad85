"""One Cairn Lambda function: arm64, Python 3.13, X-Ray, Powertools env, its own role and log group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.constructs.nag import acknowledge

__all__ = ["CairnFunction", "METRICS_NAMESPACE", "RUNTIME"]

METRICS_NAMESPACE = "Cairn"
RUNTIME = lambda_.Runtime.PYTHON_3_13


class CairnFunction(Construct):
    """A function with an explicit role (no managed policies: every grant is visible and scoped).

    The log group is created here, with retention, so the role can be scoped to it and the logs
    do not outlive their retention. ``service`` becomes ``POWERTOOLS_SERVICE_NAME``, i.e. the
    ``service`` dimension of every EMF metric the function emits (the dashboard relies on it).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        handler: str,
        service: str,
        memory_size: int,
        timeout: Duration,
        layers: Sequence[lambda_.ILayerVersion] = (),
        environment: Mapping[str, str] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_level: str = "INFO",
        metrics_namespace: str = METRICS_NAMESPACE,
        description: str | None = None,
        reserved_concurrent_executions: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.service = service
        self.handler = handler
        self.timeout = timeout

        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Cairn {id} ({handler})",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        env = {
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
            "LOG_LEVEL": log_level,
        }
        env.update(environment or {})
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            layers=list(layers),
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment=env,
            description=description or f"Cairn {id}",
            reserved_concurrent_executions=reserved_concurrent_executions,
        )

        acknowledge(
            self,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Only actions without resource-level permissions use '*': xray:PutTraceSegments/"
                    "PutTelemetryRecords (active tracing) and, for stream consumers, dynamodb:ListStreams "
                    "(checked by Lambda when it creates the event source mapping). "
                    "tests/infrastructure asserts no other action is granted on '*'."
                ),
                "AwsSolutions-L1": (
                    "Pinned to python3.13: the layer's native wheels (pydantic_core) are built for "
                    "cp313/aarch64 by cdk_app/bundling.py; a runtime bump must rebuild and retest the layer."
                ),
                "Serverless-LambdaLatestVersion": (
                    "Pinned to python3.13 with the cp313 layer build (see AwsSolutions-L1 acknowledgement)."
                ),
                "Serverless-LambdaDLQ": (
                    "Never invoked asynchronously: API Gateway invokes it synchronously and event source "
                    "mappings poll; failed stream batches go to the mapping's on-failure queue and failed "
                    "SQS messages to the source queue's redrive DLQ, so an async DLQ would stay empty."
                ),
            },
        )

    def add_environment(self, key: str, value: str) -> None:
        """Set one environment variable (used by constructs that own the resource it names)."""
        self.function.add_environment(key, value)
