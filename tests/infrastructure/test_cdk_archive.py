"""The archive tier (issue 13) in the template: the bucket, the schedule, least privilege (only
the archiver deletes, and nothing else), readers with GetObject and ARCHIVE_BUCKET."""

from __future__ import annotations

from typing import Any

from tests.infrastructure.cdk_helpers import Synth, as_list, get_att

EVENTS = "Cairn/EventStore/Events"


def _role_statements(synth: Synth, function: str) -> list[dict[str, Any]]:
    role = synth.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"].get("Roles", []):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions(statements: list[dict[str, Any]], effect: str, resource: Any) -> set[str]:
    out: set[str] = set()
    for s in statements:
        if s["Effect"] == effect and resource in as_list(s["Resource"]):
            out |= set(as_list(s["Action"]))
    return out


def test_the_archive_bucket(synth: Synth) -> None:
    bucket = synth.resources[synth.logical_id("Cairn/Archive/Bucket")]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "archive/"
    assert "ArchiveBucketName" in synth.template["Outputs"]


def test_the_archiver_runs_on_a_schedule(synth: Synth) -> None:
    rules = [
        r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
        if any(t["Arn"] == get_att("Archiver") for t in r["Properties"].get("Targets", []))
    ]
    (rule,) = rules
    assert rule["ScheduleExpression"] == "rate(1 day)"
    assert rule["Targets"][0]["DeadLetterConfig"]
    alarms = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    assert any(a.get("MetricName") == "ArchiveFailures" for a in alarms)


def test_only_the_archiver_deletes_events_and_it_changes_nothing_else(synth: Synth) -> None:
    events = get_att(synth.logical_id(EVENTS))
    statements = _role_statements(synth, "Archiver")
    assert "dynamodb:DeleteItem" in _actions(statements, "Allow", events)
    assert "dynamodb:PutItem" not in _actions(statements, "Allow", events)
    denied = _actions(statements, "Deny", events)
    assert {"dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLDelete"} <= denied
    assert "dynamodb:DeleteItem" not in denied
    archive_objects = {"Fn::Join": ["", [get_att(synth.logical_id("Cairn/Archive/Bucket")), "/archive/*"]]}
    assert {"s3:GetObject", "s3:PutObject"} <= _actions(statements, "Allow", archive_objects)
    for function in ("OrdersCommands", "OrdersQueries", "OrdersProjections", "AccountsCommands", "TamperDetector"):
        others = _role_statements(synth, function)
        assert "dynamodb:DeleteItem" in _actions(others, "Deny", events) or function == "TamperDetector"
        assert "dynamodb:DeleteItem" not in _actions(others, "Allow", events)
        assert _actions(others, "Allow", archive_objects) == {"s3:GetObject"}, function
        env = synth.resources[function]["Properties"]["Environment"]["Variables"]
        assert env["ARCHIVE_BUCKET"] == {"Ref": synth.logical_id("Cairn/Archive/Bucket")}
