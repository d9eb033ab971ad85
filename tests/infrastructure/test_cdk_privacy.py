"""Crypto-shredding's keys as synthesized (docs/privacy.md): a rotating KMS key, the keys table
with PITR, and grants to exactly the two functions that need them: OrdersCommands seals and erases
(no kms:Decrypt: a writer needs only the public key), OrdersQueries only opens."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from cdk_app.constructs import PersonalDataKeys
from tests.infrastructure.cdk_helpers import Synth


def test_key_rotates_and_is_kept(synth: Synth) -> None:
    (key,) = [v for k, v in synth.of_type("AWS::KMS::Key").items() if k.startswith("PersonalData")]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["RotationPeriodInDays"] == 365
    assert key["DeletionPolicy"] == "Retain"


def test_keys_table_has_pitr_and_subject_key(synth: Synth) -> None:
    (table,) = [v for k, v in synth.of_type("AWS::DynamoDB::Table").items() if k.startswith("PersonalData")]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "subject", "KeyType": "HASH"}]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def _grants(synth: Synth) -> dict[str, list[str]]:
    """Role logical id -> the actions its policies allow on the personal-data key or keys table."""
    ids = [k for k in synth.resources if k.startswith("PersonalData")]
    assert ids
    found: dict[str, list[str]] = {}
    for policy in synth.of_type("AWS::IAM::Policy").values():
        props = policy["Properties"]
        for statement in props["PolicyDocument"]["Statement"]:
            if any(f'"{i}"' in json.dumps(statement.get("Resource")) for i in ids):
                for role in props["Roles"]:
                    found.setdefault(role["Ref"], []).extend(_actions([statement]))
    for role in synth.of_type("AWS::IAM::Role").values():
        assert not any(f'"{i}"' in json.dumps(role) for i in ids)  # no inline grants elsewhere
    return {role: sorted(actions) for role, actions in found.items()}


def _role_of(synth: Synth, function: str) -> str:
    return synth.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]


def test_only_the_orders_functions_hold_the_keys(synth: Synth) -> None:
    grants = _grants(synth)
    assert grants == {
        _role_of(synth, "OrdersCommands"): ["dynamodb:GetItem", "dynamodb:PutItem", "kms:GenerateDataKey"],
        _role_of(synth, "OrdersQueries"): ["dynamodb:GetItem", "kms:Decrypt"],
    }


def _actions(statements: list[dict[str, Any]]) -> list[str]:
    return sorted(
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )


def test_grants_are_least_privilege() -> None:
    stack = Stack(App(), "PrivacyGrants")
    keys = PersonalDataKeys(stack, "PersonalData")
    sealer = iam.Role(stack, "Sealer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    eraser = iam.Role(stack, "Eraser", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    opener = iam.Role(stack, "Opener", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    keys.grant_seal(sealer)
    keys.grant_erase(eraser)
    keys.grant_open(opener)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    by_role = {
        json.dumps(p["Properties"]["Roles"]): p["Properties"]["PolicyDocument"]["Statement"]
        for p in policies.values()
    }
    (sealer_statements,) = [s for r, s in by_role.items() if "Sealer" in r]
    (eraser_statements,) = [s for r, s in by_role.items() if "Eraser" in r]
    assert _actions(sealer_statements) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "kms:GenerateDataKey",
    ]  # no kms:Decrypt: sealing needs only the public key in the table
    assert _actions(eraser_statements) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    ]  # no KMS: erasure needs none
    (opener_statements,) = [s for r, s in by_role.items() if "Opener" in r]
    assert _actions(opener_statements) == ["dynamodb:GetItem", "kms:Decrypt"]
    assert all(s.get("Condition") for s in opener_statements if s["Action"] == "kms:Decrypt")
    (kms_statement,) = [s for s in sealer_statements if "kms:GenerateDataKey" in s["Action"]]
    assert kms_statement["Condition"] == {"Null": {"kms:EncryptionContext:subject": "false"}}
    Template.from_stack(stack).has_resource_properties(
        "AWS::KMS::Key", Match.object_like({"EnableKeyRotation": True})
    )
