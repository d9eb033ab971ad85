"""The template reader resolves intrinsics to deterministic local names."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.template import ACCOUNT_ID, REGION, Template, TemplateError, UnresolvedError

FIXTURE = Path(__file__).parent / "fixture" / "Fixture.template.json"


def _template(resources: dict, **extra) -> Template:
    return Template({"Resources": resources, **extra}, "Stack")


def test_names_are_deterministic_and_respect_explicit_names():
    t = _template({
        "T": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Named": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "events"}},
        "B": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Q": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
    })
    assert t.resolve({"Ref": "T"}) == "Stack-T"
    assert t.resolve({"Ref": "Named"}) == "events"
    assert t.resolve({"Ref": "B"}) == "stack-b"
    assert t.resolve({"Fn::GetAtt": ["Q", "QueueName"]}) == "Stack-Q.fifo"
    assert t.resolve({"Fn::GetAtt": ["T", "Arn"]}) == f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/Stack-T"
    again = _template({"T": {"Type": "AWS::DynamoDB::Table", "Properties": {}}})
    assert again.resolve({"Ref": "T"}) == t.resolve({"Ref": "T"})


def test_long_names_are_truncated_uniquely():
    long_id = "F" * 80
    t = _template({long_id: {"Type": "AWS::Lambda::Function", "Properties": {}},
                   long_id + "X": {"Type": "AWS::Lambda::Function", "Properties": {}}})
    a, b = t.resolve({"Ref": long_id}), t.resolve({"Ref": long_id + "X"})
    assert len(a) <= 64 and len(b) <= 64 and a != b


def test_intrinsics():
    t = _template(
        {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
         "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "bus"}}},
        Parameters={"Env": {"Type": "String", "Default": "dev"}},
        Conditions={"IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]}},
        Mappings={"M": {"dev": {"size": 3}}},
    )
    assert t.resolve({"Fn::Join": ["-", [{"Ref": "T"}, {"Ref": "AWS::Region"}]]}) == f"Stack-T-{REGION}"
    assert t.resolve({"Fn::Sub": "${T}/${Bus.Arn}/${!Literal}"}) == (
        f"Stack-T/arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/bus/${{Literal}}")
    assert t.resolve({"Fn::Sub": ["${X}-${AWS::AccountId}", {"X": {"Ref": "T"}}]}) == f"Stack-T-{ACCOUNT_ID}"
    assert t.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert t.resolve({"Fn::If": ["IsDev", "yes", "no"]}) == "yes"
    assert t.resolve({"Fn::FindInMap": ["M", {"Ref": "Env"}, "size"]}) == 3
    assert t.resolve({"A": {"Ref": "AWS::NoValue"}, "B": 1}) == {"B": 1}
    assert t.resolve([1, {"Ref": "AWS::NoValue"}]) == [1]


def test_stream_arn_is_unknown_until_the_table_exists():
    t = _template({"T": {"Type": "AWS::DynamoDB::Table", "Properties": {}}})
    with pytest.raises(UnresolvedError):
        t.resolve({"Fn::GetAtt": ["T", "StreamArn"]})
    t.resources["T"].attributes["StreamArn"] = "arn:stream"
    assert t.resolve({"Fn::GetAtt": ["T", "StreamArn"]}) == "arn:stream"


def test_unknown_references_fail_loudly():
    t = _template({})
    with pytest.raises(TemplateError):
        t.resolve({"Ref": "Nope"})
    with pytest.raises(TemplateError):
        t.resolve({"Fn::ImportValue": "x"})


def test_dependency_order_puts_dead_letter_queues_first():
    t = _template({
        "Main": {"Type": "AWS::SQS::Queue",
                 "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}}},
        "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
    })
    order = [r.logical_id for r in t.dependency_order(t.of_type("AWS::SQS::Queue"))]
    assert order == ["Dlq", "Main"]


def test_fixture_loads_with_its_stack_name():
    t = Template.load(FIXTURE, "Fixture")
    assert {r.logical_id for r in t.of_type("AWS::Lambda::Function")} >= {"ApiFunction", "ProjectorFunction"}
    assert t.resolve({"Ref": "UserPool"}).startswith(f"{REGION}_")
