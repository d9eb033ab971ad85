"""Personal-data keys (issue 12, docs/privacy.md): the KMS key that wraps per-subject X25519
private keys and the keys table that holds them (wrapped, next to the public key), one item (key
pair or erasure tombstone) per subject.

OrdersCommands seals and erases (``grant_seal``: a writer needs only the public key, so KMS
``GenerateDataKey`` for a new subject and never ``Decrypt``; the erasure routes live there);
OrdersQueries and the SES sender only open (``grant_open``: GetItem + Decrypt). No other function
touches the keys. The keys table is *not* encrypted with this key (AWS-owned keys suffice for
wrapped blobs) so an erasure never depends on the key's state.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

__all__ = ["PersonalDataKeys"]


class PersonalDataKeys(Construct):
    def __init__(
        self, scope: Construct, id: str, *, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    ) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "Key",
            description="Cairn: wraps the per-subject data keys of personal data (crypto-shredding)",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            key_spec=kms.KeySpec.SYMMETRIC_DEFAULT,
            key_usage=kms.KeyUsage.ENCRYPT_DECRYPT,
            removal_policy=removal_policy,
            pending_window=Duration.days(30),
        )
        self.table = dynamodb.Table(
            self,
            "Keys",
            partition_key=dynamodb.Attribute(name="subject", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=removal_policy,
        )

    def grant_seal(self, grantee: iam.IGrantable) -> None:
        """Seal only: read a subject's public key, store a new subject's key pair, generate its
        private key with KMS under a ``subject`` encryption context — and no ``kms:Decrypt``: a
        writer cannot open what it sealed."""
        self.table.grant(grantee, "dynamodb:GetItem", "dynamodb:PutItem")
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey"],
                resources=[self.key.key_arn],
                conditions={"Null": {"kms:EncryptionContext:subject": "false"}},
            )
        )

    def grant_open(self, grantee: iam.IGrantable) -> None:
        """Open only: read a subject's wrapped key and unwrap it under a ``subject`` context."""
        self.table.grant(grantee, "dynamodb:GetItem")
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={"Null": {"kms:EncryptionContext:subject": "false"}},
            )
        )

    def grant_erase(self, grantee: iam.IGrantable) -> None:
        """Erase: read the item and replace it by a tombstone (one conditional PutItem); no KMS."""
        self.table.grant(grantee, "dynamodb:GetItem", "dynamodb:PutItem")
