"""Crypto-shredding's keys as synthesized (docs/privacy.md): a rotating KMS key, the keys table
with PITR, and — until the routes are wired — no grant to anyone."""

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


def test_nobody_is_granted_yet(synth: Synth) -> None:
    ids = [k for k in synth.resources if k.startswith("PersonalData")]
    policies = {**synth.of_type("AWS::IAM::Policy"), **synth.of_type("AWS::IAM::Role")}
    text = json.dumps(policies)
    assert ids and not any(f'"{i}"' in text for i in ids)


def _actions(statements: list[dict[str, Any]]) -> list[str]:
    return sorted(
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )


def test_grants_are_least_privilege() -> None:
    stack = Stack(App(), "PrivacyGrants")
    keys = PersonalDataKeys(stack, "PersonalData")
    codec = iam.Role(stack, "Codec", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    eraser = iam.Role(stack, "Eraser", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    keys.grant_codec(codec)
    keys.grant_erase(eraser)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    by_role = {
        json.dumps(p["Properties"]["Roles"]): p["Properties"]["PolicyDocument"]["Statement"]
        for p in policies.values()
    }
    (codec_statements,) = [s for r, s in by_role.items() if "Codec" in r]
    (eraser_statements,) = [s for r, s in by_role.items() if "Eraser" in r]
    assert _actions(codec_statements) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]
    assert _actions(eraser_statements) == [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    ]  # no KMS: erasure needs none
    (kms_statement,) = [s for s in codec_statements if "kms:Decrypt" in s["Action"]]
    assert kms_statement["Condition"] == {"Null": {"kms:EncryptionContext:subject": "false"}}
    Template.from_stack(stack).has_resource_properties(
        "AWS::KMS::Key", Match.object_like({"EnableKeyRotation": True})
    )
