"""Least privilege: nothing can mutate events; each kind of function gets exactly its access."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infrastructure.cdk_helpers import Synth, as_list, get_att, ref

MUTATIONS = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
EVENTS = "Cairn/EventStore/Events"


def _statements(synth: Synth) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) for every identity policy statement in the template."""
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for role in policy["Properties"].get("Roles", []):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                yield role["Ref"], statement
    for role_id, role in synth.of_type("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for statement in inline["PolicyDocument"]["Statement"]:
                yield role_id, statement
        assert not role["Properties"].get("ManagedPolicyArns"), f"{role_id} has managed policies"


def _role_of(synth: Synth, function: str) -> str:
    return synth.resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]


def _allowed(synth: Synth, role_id: str) -> dict[str, set[str]]:
    """Allowed actions per resource (resources rendered as JSON) for one role."""
    allowed: dict[str, set[str]] = {}
    for role, statement in _statements(synth):
        if role == role_id and statement["Effect"] == "Allow":
            for resource in as_list(statement["Resource"]):
                allowed.setdefault(json.dumps(resource, sort_keys=True), set()).update(as_list(statement["Action"]))
    return allowed


def _mentions(value: Any, logical_id: str) -> bool:
    return f'"{logical_id}"' in json.dumps(value)


def _matches(action: str, pattern: str) -> bool:
    """IAM action wildcard match (case-insensitive, ``*`` only)."""
    import fnmatch

    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def test_no_role_may_mutate_events(synth: Synth) -> None:
    events_id = synth.logical_id(EVENTS)
    break_glass = synth.logical_id("Cairn/Integrity/BreakGlass")  # the one exception (docs/deploy.md)
    archiver = synth.logical_id("Cairn/Archiver/Role")  # DeleteItem of archived events only (issue 13)
    for role, statement in _statements(synth):
        if statement["Effect"] != "Allow" or role == break_glass:
            continue
        resources = as_list(statement["Resource"])
        touches_events = any(r == "*" or _mentions(r, events_id) for r in resources)
        if not touches_events:
            continue
        for pattern in as_list(statement["Action"]):
            granted = {m for m in MUTATIONS if _matches(m, pattern)}
            if role == archiver:
                granted.discard("dynamodb:DeleteItem")
            assert not granted, f"{role} may {granted} on the events table via {pattern!r}"


def test_every_role_with_events_access_has_the_explicit_deny(synth: Synth) -> None:
    events_id = synth.logical_id(EVENTS)
    with_access = {role for role, s in _statements(synth) if s["Effect"] == "Allow" and _mentions(s["Resource"], events_id)}
    with_access.discard(synth.logical_id("Cairn/Integrity/BreakGlass"))  # the exception (docs/deploy.md)
    assert with_access  # commands, queries, projections, ...
    for role in with_access:
        denies = [
            s for r, s in _statements(synth)
            if r == role and s["Effect"] == "Deny" and s["Resource"] == get_att(events_id)
        ]
        assert denies, f"{role} reads/writes the events table without the append-only Deny"
        if role == synth.logical_id("Cairn/Archiver/Role"):  # it may delete (archived items), nothing else
            assert MUTATIONS - {"dynamodb:DeleteItem"} <= set(as_list(denies[0]["Action"])), role
            continue
        assert MUTATIONS <= set(as_list(denies[0]["Action"])), role


@pytest.mark.parametrize("function", ["OrdersCommands", "AccountsCommands"])
def test_command_functions_append_and_write_markers_only(synth: Synth, function: str) -> None:
    allowed = _allowed(synth, _role_of(synth, function))
    events = json.dumps(get_att(synth.logical_id(EVENTS)), sort_keys=True)
    markers = json.dumps(get_att(synth.logical_id("Cairn/EventStore/Idempotency")), sort_keys=True)
    assert allowed[events] == {"dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:GetItem"}
    assert allowed[markers] == {"dynamodb:PutItem", "dynamodb:GetItem"}
    s3_actions = {a for actions in allowed.values() for a in actions if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}  # read snapshots, never write them
    dynamo_resources = {r for r, actions in allowed.items() if any(a.startswith("dynamodb:") for a in actions)}
    if function == "OrdersCommands":  # prices orders from the catalog's published read model: read only
        intents = json.dumps(get_att(synth.logical_id("Cairn/PaymentIntents/Table")), sort_keys=True)
        assert allowed[intents] == {"dynamodb:PutItem"}  # writes payment intents, never reads them
        dynamo_resources -= {intents}
        catalog = json.dumps(get_att(synth.logical_id("Cairn/CatalogTable/Table")), sort_keys=True)
        assert allowed[catalog] <= {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan",
                                    "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
                                    "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
        dynamo_resources -= {catalog}
        keys = json.dumps(get_att(synth.logical_id("Cairn/PersonalData/Keys")), sort_keys=True)
        assert allowed[keys] == {"dynamodb:GetItem", "dynamodb:PutItem"}  # seal (new key), erase (tombstone)
        dynamo_resources -= {keys}
    assert dynamo_resources == {events, markers}


@pytest.mark.parametrize(
    "function", ["OrdersQueries", "AccountsQueries", "InventoryQueries", "NotificationsQueries", "Ops"]
)
def test_query_functions_only_read(synth: Synth, function: str) -> None:
    read_only = {
        "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:GetItem", "dynamodb:Scan",
        "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:GetRecords",
        "dynamodb:GetShardIterator", "s3:GetObject", "s3:ListBucket",
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    }
    if function == "Ops":  # failed batches: queue depth and a peek (the messages stay)
        read_only |= {"sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
    if function == "OrdersQueries":  # opens personal data for owner/staff (subject context only)
        read_only |= {"kms:Decrypt"}
    allowed = _allowed(synth, _role_of(synth, function))
    if function == "Ops":  # POST /ops/snapshots writes a snapshot folded from the store, nothing else
        snapshots = synth.logical_id("Cairn/EventStore/Snapshots")
        allowed = {r: a - {"s3:PutObject"} if snapshots in r else a for r, a in allowed.items()}
    actions = {a for acts in allowed.values() for a in acts}
    assert actions <= read_only, actions - read_only


PROJECTION_TABLES = {
    "OrdersProjections": {"Cairn/OrderView/Table", "Cairn/UserOrders/Table", "Cairn/Analytics/Table"},
    "AccountsProjections": {"Cairn/AccountView/Table"},
    "Inventory": {"Cairn/InventoryTable/Table"},
    "Notifications": {"Cairn/NotificationsTable/Table"},
    "Snapshotter": set(),
    "Publisher": set(),
}
WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


@pytest.mark.parametrize("function", sorted(PROJECTION_TABLES))
def test_consumers_write_only_their_own_tables(synth: Synth, function: str) -> None:
    own = {json.dumps(get_att(synth.logical_id(path)), sort_keys=True) for path in PROJECTION_TABLES[function]}
    written = {r for r, actions in _allowed(synth, _role_of(synth, function)).items() if actions & WRITES}
    assert written == own


@pytest.mark.parametrize("function", ["OrdersProjections", "AccountsProjections", "Snapshotter", "Publisher"])
def test_stream_consumers_read_the_stream_and_the_events(synth: Synth, function: str) -> None:
    """Through their own enhanced fan-out consumer only (issue 18): SubscribeToShard on that
    consumer, the shard listing of the stream, no GetRecords, no DynamoDB stream, no other consumer."""
    events_id = synth.logical_id(EVENTS)
    allowed = _allowed(synth, _role_of(synth, function))
    mapping = next(m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
                   if m["Properties"]["FunctionName"] == ref(function))
    own = json.dumps(mapping["EventSourceArn"], sort_keys=True)
    assert allowed[own] == {"kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"}
    stream = json.dumps(get_att(synth.logical_id("Cairn/EventStore/FanOut")), sort_keys=True)
    assert allowed[stream] == {"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards"}
    kinesis = {r for r, actions in allowed.items() if any(a.startswith("kinesis:") for a in actions)}
    assert kinesis == {own, stream}
    assert json.dumps(get_att(events_id, "StreamArn"), sort_keys=True) not in allowed
    assert allowed[json.dumps(get_att(events_id), sort_keys=True)] == {"dynamodb:Query", "dynamodb:GetItem"}


def test_only_the_snapshotter_writes_snapshots(synth: Synth) -> None:
    writers = {
        role for role, s in _statements(synth)
        if s["Effect"] == "Allow" and {"s3:PutObject", "s3:*"} & set(as_list(s["Action"]))
        and _mentions(s["Resource"], synth.logical_id("Cairn/EventStore/Snapshots"))
    }
    # the consumer, the daily sweep, and Ops for POST /ops/snapshots
    assert writers == {_role_of(synth, f) for f in ("Snapshotter", "ScheduledSnapshots", "Ops")}


def test_only_the_publisher_puts_events_on_the_bus(synth: Synth) -> None:
    bus = get_att(synth.logical_id("Cairn/IntegrationEvents/Bus"))
    putters = {
        role for role, s in _statements(synth)
        if s["Effect"] == "Allow" and "events:PutEvents" in as_list(s["Action"])
    }
    assert putters == {_role_of(synth, "Publisher")}
    publisher = _allowed(synth, _role_of(synth, "Publisher"))
    assert publisher[json.dumps(bus, sort_keys=True)] == {"events:PutEvents"}


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(synth: Synth) -> None:
    allowed_on_star = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams"}
    for role, statement in _statements(synth):
        if statement["Effect"] == "Allow" and "*" in as_list(statement["Resource"]):
            assert set(as_list(statement["Action"])) <= allowed_on_star, (role, statement["Action"])
        for action in as_list(statement["Action"]):
            assert not action.endswith(":*") and action != "*", (role, action)


def test_each_function_has_its_own_role(synth: Synth) -> None:
    roles = [_role_of(synth, name) for name in synth.of_type("AWS::Lambda::Function")]
    assert len(roles) == len(set(roles))
    for role in roles:
        trust = synth.resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]


def test_function_logs_only_to_its_own_log_group(synth: Synth) -> None:
    for name, fn in synth.of_type("AWS::Lambda::Function").items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]
        allowed = _allowed(synth, _role_of(synth, name))
        log_resources = {r for r, actions in allowed.items() if any(a.startswith("logs:") for a in actions)}
        assert log_resources == {json.dumps(get_att(group["Ref"]), sort_keys=True)}, name
        assert ref(group["Ref"]) == group


def _role_statements(synth: Synth, role: str) -> list[dict]:
    return [
        s
        for p in synth.of_type("AWS::IAM::Policy").values()
        if ref(role) in p["Properties"].get("Roles", [])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize(
    ("function", "prefix"),
    [("Payments", "payment-*"), ("Catalog", "product-*"), ("OrderPayments", "order-*"), ("PaymentTimeouts", "order-*")],
)
def test_services_append_only_to_their_own_streams(synth: Synth, function: str, prefix: str) -> None:
    """dynamodb:LeadingKeys: e.g. the payment service cannot write (or read) an order's stream."""
    events = get_att(synth.logical_id(EVENTS))
    on_events = [
        s for s in _role_statements(synth, _role_of(synth, function))
        if s["Effect"] == "Allow" and events in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert on_events
    for statement in on_events:
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [prefix]}}


def test_payments_read_delete_and_decrypt_intents_only(synth: Synth) -> None:
    statements = _role_statements(synth, _role_of(synth, "Payments"))
    actions = {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    assert {"dynamodb:GetItem", "dynamodb:DeleteItem", "kms:Decrypt"} <= actions
    assert not {"kms:Encrypt", "dynamodb:Scan"} & actions
    # it reads no snapshot; the one bucket it may read is the archive (its own streams' old ranges)
    s3_reads = [s for s in statements if s["Effect"] == "Allow" and "s3:GetObject" in as_list(s["Action"])]
    archive = synth.logical_id("Cairn/Archive/Bucket")
    assert s3_reads and all(archive in json.dumps(s["Resource"]) for s in s3_reads)


# -- unauthenticated requests reach only a function that can read nothing (issue 17 #6) -------------
def test_every_unauthenticated_route_targets_the_public_function(synth: Synth) -> None:
    (http_api,) = [name for name, api in synth.of_type("AWS::ApiGatewayV2::Api").items()
                   if api["Properties"].get("ProtocolType") == "HTTP"]
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()
              if r["Properties"]["ApiId"] == {"Ref": http_api}}  # the WebSocket API authorizes on $connect
    public = {key for key, route in routes.items() if route.get("AuthorizationType", "NONE") == "NONE"}
    assert public == {"$default", "GET /health", "GET /openapi.json"}
    for key in public:
        integration_id = routes[key]["Target"]["Fn::Join"][1][1]["Ref"]
        uri = synth.resources[integration_id]["Properties"]["IntegrationUri"]
        assert uri["Fn::GetAtt"][0] == "Public", key


def test_the_public_function_has_no_data_permission(synth: Synth) -> None:
    actions = {a for acts in _allowed(synth, _role_of(synth, "Public")).values() for a in acts}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert not {a for a in actions if a.split(":")[0] in ("dynamodb", "s3", "sqs", "events", "kms", "ses")}
    assert not synth.resources["Public"]["Properties"].get("Environment", {}).get("Variables", {}).keys() - {
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL",
    }
