"""Read-model / service tables: PK ``pk`` S, SK ``sk`` S, on-demand, PITR, encrypted."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

__all__ = ["ReadModelTable"]


class ReadModelTable(Construct):
    """A derived table. Default removal is DESTROY: it is rebuilt from the retained event log
    (``make rebuild``) or, for the EDA services, by replaying the bus archive."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
        time_to_live_attribute: str | None = None,
        stream: dynamodb.StreamViewType | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
            time_to_live_attribute=time_to_live_attribute,
            stream=stream,  # views whose commits are pushed to WebSocket clients (Realtime)
        )
