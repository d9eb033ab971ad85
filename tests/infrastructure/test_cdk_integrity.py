"""The log proves itself (issue 11) in the template: the table's resource policy, LeadingKeys per
writer, the tamper detector's MODIFY/REMOVE feed and alarm, the Object Lock digest bucket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.cdk_helpers import Synth, as_list, get_att

EVENTS = "Cairn/EventStore/Events"


def _role_statements(synth: Synth, function: str) -> list[dict[str, Any]]:
    role = synth.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"].get("Roles", []):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_the_events_table_denies_mutation_to_all_but_break_glass(synth: Synth) -> None:
    table = synth.resources[synth.logical_id(EVENTS)]["Properties"]
    (statement,) = [s for s in table["ResourcePolicy"]["PolicyDocument"]["Statement"] if s.get("Sid") == "EventsAreAppendOnly"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == {"AWS": "*"}
    assert {
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    } <= set(as_list(statement["Action"]))
    exempt = as_list(statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    assert exempt == [get_att(synth.logical_id("Cairn/Integrity/BreakGlass"))]
    # DeleteItem: break glass and the archiver only (issue 13)
    (deletes,) = [s for s in table["ResourcePolicy"]["PolicyDocument"]["Statement"] if s.get("Sid") == "OnlyTheArchiverDeletes"]
    assert deletes["Effect"] == "Deny" and deletes["Principal"] == {"AWS": "*"}
    assert as_list(deletes["Action"]) == ["dynamodb:DeleteItem"]
    assert as_list(deletes["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == [
        get_att(synth.logical_id("Cairn/Integrity/BreakGlass")),
        get_att(synth.logical_id("Cairn/Archiver/Role")),
    ]
    role = synth.resources[synth.logical_id("Cairn/Integrity/BreakGlass")]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert role["MaxSessionDuration"] == 3600


@pytest.mark.parametrize(
    ("function", "prefixes"),
    [("OrdersCommands", ["order-*", "erasure-*"]), ("AccountsCommands", ["account-*"]), ("Payments", ["payment-*"]),
     ("OrderPayments", ["order-*"]), ("PaymentTimeouts", ["order-*"]), ("Catalog", ["product-*"])],
)
def test_writers_append_only_to_their_own_aggregates(synth: Synth, function: str, prefixes: list[str]) -> None:
    events = get_att(synth.logical_id(EVENTS))
    appends = [
        s for s in _role_statements(synth, function)
        if s["Effect"] == "Allow" and "dynamodb:PutItem" in as_list(s["Action"]) and s["Resource"] == events
    ]
    assert appends, function
    for statement in appends:
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": prefixes}}


def test_the_tamper_detector_reads_modify_and_remove_records(synth: Synth) -> None:
    mappings = [
        m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "TamperDetector"}
    ]
    (mapping,) = mappings
    (pattern,) = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["MODIFY", "REMOVE"]}
    alarms = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    assert any(a.get("MetricName") == "TamperDetected" and a["Threshold"] == 1 for a in alarms)
    assert any(a.get("MetricName") == "IntegrityViolations" for a in alarms)


def test_the_digest_bucket_is_locked_in_compliance_mode(synth: Synth) -> None:
    buckets = [b["Properties"] for b in synth.of_type("AWS::S3::Bucket").values() if b["Properties"].get("ObjectLockEnabled")]
    (bucket,) = buckets
    rule = bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert rule["Mode"] == "COMPLIANCE" and rule["Days"] >= 365
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    outputs = synth.template["Outputs"]
    assert "DigestBucketName" in outputs and "BreakGlassRoleArn" in outputs
    rules = [r["Properties"] for r in synth.of_type("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert any(t["Arn"] == get_att("DigestJob") for r in rules for t in r["Targets"])
