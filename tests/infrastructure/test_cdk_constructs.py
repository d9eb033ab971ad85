"""Each construct on its own, in a small app with cdk-nag attached: reusable, and nag-clean alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from cdk_app.app import attach_nag
from cdk_app.constructs import (
    EVENT_MUTATIONS,
    Alerts,
    CairnFunction,
    EventBus,
    EventStore,
    HttpService,
    Projection,
    ReadModelTable,
    Route,
)

CODE = "def handler(event, context):\n    return None\n"


def _function(scope, id: str, handler: str = "index.handler", service: str = "probe") -> CairnFunction:
    return CairnFunction(
        scope,
        id,
        code=lambda_.Code.from_inline(CODE),
        handler=handler,
        service=service,
        memory_size=256,
        timeout=cdk.Duration.seconds(20),
    )


@dataclass
class Stacks:
    event_store: Template
    projection: Template
    http: Template
    bus: Template


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Stacks:
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("constructs")))

    store_stack = cdk.Stack(app, "EventStoreOnly")
    store = EventStore(store_stack, "Store")
    writer = iam.Role(store_stack, "Writer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    store.grant_append(writer)
    store.grant_read_events(writer)  # a second grant must not add a second Deny
    store.grant_write_markers(writer)

    projection_stack = cdk.Stack(app, "ProjectionOnly")
    p_store = EventStore(projection_stack, "Store")
    view = ReadModelTable(projection_stack, "View").table
    Projection(
        projection_stack,
        "Projection",
        function=_function(projection_stack, "Projector", service="probe"),
        event_store=p_store,
        stream_prefixes=["thing-"],
        read_models=[view],
        alerts=Alerts(projection_stack, "Alerts"),
        batch_size=50,
        retry_attempts=3,
        max_record_age=cdk.Duration.hours(1),
    )
    Projection(  # one of the at most two readers kept on the DynamoDB stream (issue 18)
        projection_stack,
        "StreamReader",
        function=_function(projection_stack, "Detector", service="probe"),
        event_store=p_store,
        source="dynamodb",
    )

    http_stack = cdk.Stack(app, "HttpOnly")
    private_fn = _function(http_stack, "Private")
    public_fn = _function(http_stack, "Public")
    HttpService(
        http_stack,
        "Http",
        routes=[
            Route("GET", "/things/{id}", private_fn.function),
            Route("POST", "/things", private_fn.function),
            Route("GET", "/ping", public_fn.function, public=True),
        ],
        rate_limit=10,
        burst_limit=20,
    )

    bus_stack = cdk.Stack(app, "BusOnly")
    bus = EventBus(bus_stack, "Bus", source="probe.things", alerts=Alerts(bus_stack, "Alerts"))
    bus.subscribe(
        "Sub",
        function=_function(bus_stack, "Consumer"),
        detail_types=["ThingCreated"],
        detail={"data": {"flag": cdk.aws_events.Match.exists()}},
        max_receive_count=3,
    )

    attach_nag(app)  # fails the synth below if a construct is not nag-clean on its own
    return Stacks(
        Template.from_stack(store_stack),
        Template.from_stack(projection_stack),
        Template.from_stack(http_stack),
        Template.from_stack(bus_stack),
    )


# -- EventStore ------------------------------------------------------------------------------------


def test_event_store_tables_and_bucket(stacks: Stacks) -> None:
    t = stacks.event_store
    t.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "KeySchema": [
                        {"AttributeName": "stream_id", "KeyType": "HASH"},
                        {"AttributeName": "version", "KeyType": "RANGE"},
                    ],
                    "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "DeletionProtectionEnabled": True,
                    "BillingMode": "PAY_PER_REQUEST",
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )
    t.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "idempotency_key", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )
    t.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "LoggingConfiguration": Match.object_like({"LogFilePrefix": "snapshots/"}),
                    "LifecycleConfiguration": {
                        "Rules": [Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}})]
                    },
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )


def test_event_store_grants_deny_mutations_once(stacks: Stacks) -> None:
    policies = stacks.event_store.find_resources("AWS::IAM::Policy")
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert len(denies) == 1
    assert set(denies[0]["Action"]) == set(EVENT_MUTATIONS)
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}
    assert not allowed & {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


# -- Projection ------------------------------------------------------------------------------------


def test_projection_event_source_mapping(stacks: Stacks) -> None:
    stacks.projection.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 50,
            "MaximumBatchingWindowInSeconds": 1,
            "BisectBatchOnFunctionError": True,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumRetryAttempts": 3,
            "MaximumRecordAgeInSeconds": 3600,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
            "FilterCriteria": {
                "Filters": [
                    {
                        "Pattern": json.dumps(
                            {"data": {"eventName": ["INSERT"],
                                      "dynamodb": {"Keys": {"stream_id": {"S": [{"prefix": "thing-"}]}}}}},
                            separators=(",", ":"),
                        )
                    }
                ]
            },
        },
    )
    stacks.projection.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"PARKED_QUEUE_URL": Match.any_value()})}},
    )


def test_projection_reads_the_fan_out_or_the_dynamodb_stream(stacks: Stacks) -> None:
    mappings = stacks.projection.find_resources("AWS::Lambda::EventSourceMapping")
    sources = sorted(next(iter(m["Properties"]["EventSourceArn"]["Fn::GetAtt"][1:])) for m in mappings.values())
    assert sources == ["ConsumerARN", "StreamArn"]  # one EFO consumer, one DynamoDB stream reader
    assert len(stacks.projection.find_resources("AWS::Kinesis::StreamConsumer")) == 1


def test_projection_alarms(stacks: Stacks) -> None:
    alarms = stacks.projection.find_resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    assert metrics == ["ApproximateNumberOfMessagesVisible", "Errors", "IteratorAge", "LagSeconds", "StreamsParked"]
    stacks.projection.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "StreamsParked", "Namespace": "Cairn", "Dimensions": [{"Name": "service", "Value": "probe"}]},
    )


def test_projection_writes_only_its_read_model(stacks: Stacks) -> None:
    (policy,) = [
        p for p in stacks.projection.find_resources("AWS::IAM::Policy").values()
        if "Projector" in json.dumps(p["Properties"]["Roles"])
    ]
    writes = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and "dynamodb:PutItem" in s["Action"]
    ]
    assert len(writes) == 1 and "View" in json.dumps(writes[0]["Resource"])


# -- HttpService -----------------------------------------------------------------------------------


def test_http_routes_and_authorizer(stacks: Stacks) -> None:
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in stacks.http.find_resources(
        "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"GET /things/{id}", "POST /things", "GET /ping"}
    assert routes["GET /things/{id}"]["AuthorizationType"] == "JWT"
    assert routes["POST /things"]["AuthorizationType"] == "JWT"
    assert routes["GET /ping"].get("AuthorizationType", "NONE") == "NONE"
    stacks.http.resource_count_is("AWS::ApiGatewayV2::Integration", 2)  # one per function
    stacks.http.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "DefaultRouteSettings": {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20},
            "AccessLogSettings": Match.object_like({"DestinationArn": Match.any_value()}),
        },
    )


def test_http_service_rejects_duplicate_routes() -> None:
    stack = cdk.Stack(cdk.App(), "Dup")
    fn = _function(stack, "Fn")
    with pytest.raises(ValueError, match="duplicate routes"):
        HttpService(stack, "Http", routes=[Route("GET", "/a", fn.function), Route("GET", "/a", fn.function)])


# -- EventBus --------------------------------------------------------------------------------------


def test_bus_subscription(stacks: Stacks) -> None:
    t = stacks.bus
    t.resource_count_is("AWS::Events::Archive", 1)
    t.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["probe.things"],
                "detail-type": ["ThingCreated"],
                "detail": {"data": {"flag": [{"exists": True}]}},
            },
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value()})],
        },
    )
    t.has_resource_properties(
        "AWS::SQS::Queue",
        {"VisibilityTimeout": 120, "RedrivePolicy": Match.object_like({"maxReceiveCount": 3})},
    )
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 10},
    )
    t.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 1}
    )


def test_constructs_do_not_depend_on_the_repository_layout() -> None:
    """Reusable: the constructs package never refers to Cairn's functions/ or layers/ paths."""
    package = Path(__file__).resolve().parents[2] / "cdk_app" / "constructs"
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "functions/" not in text and "REPO_ROOT" not in text, source
