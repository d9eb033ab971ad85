"""cdk-nag 3.x acknowledgements (``Validations.of(scope).acknowledge``), each with its reason."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

__all__ = ["MIN_REASON_LENGTH", "acknowledge", "principal_scope", "resource_finding"]

MIN_REASON_LENGTH = 40  # a reason says why in a sentence; tests enforce it


def acknowledge(scope: IConstruct, findings: Mapping[str, str]) -> None:
    """Acknowledge rule findings (``RuleId`` or ``RuleId[Finding]``) on ``scope`` and its children."""
    for rule_id, reason in findings.items():
        if len(reason.strip()) < MIN_REASON_LENGTH:
            raise ValueError(f"acknowledgement of {rule_id} needs a real reason, got {reason!r}")
        Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def resource_finding(scope: Construct, resource: Construct, suffix: str = "/*") -> str:
    """The IAM5 finding id cdk-nag reports for ``<resource ARN><suffix>`` in a policy.

    cdk-nag flattens ``Fn::GetAtt [LogicalId, Arn]`` to ``<LogicalId.Arn>``.
    """
    cfn = resource.node.default_child
    logical_id = Stack.of(scope).get_logical_id(cfn)  # type: ignore[arg-type]
    return f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>{suffix}]"


def principal_scope(grantee: iam.IGrantable) -> IConstruct | None:
    """The construct whose subtree holds the grantee's policies (to acknowledge findings on it)."""
    principal = grantee.grant_principal
    return principal if isinstance(principal, Construct) else None
