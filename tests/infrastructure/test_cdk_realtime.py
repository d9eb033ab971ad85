"""The WebSocket API as synthesized: routes, authorizer, two-way $default, stage, connections
table, the pusher's feed and least-privilege grants (docs/realtime.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.cdk_helpers import Synth, as_list, flatten_join, get_att, ref
from tests.infrastructure.test_cdk_iam import _allowed, _role_of, _statements

REALTIME = ("WsAuthorizer", "WsConnect", "WsDisconnect", "WsDefault", "WsPusher")
CONNECTIONS = "Cairn/Realtime/Connections"
VIEWS = {"Cairn/OrderView/Table", "Cairn/AccountView/Table"}


def _ws_api(synth: Synth) -> str:
    (api_id,) = [k for k, v in synth.of_type("AWS::ApiGatewayV2::Api").items()
                 if v["Properties"].get("ProtocolType") == "WEBSOCKET"]
    return api_id


def _of_api(synth: Synth, cfn_type: str) -> dict[str, dict[str, Any]]:
    api = ref(_ws_api(synth))
    return {k: v["Properties"] for k, v in synth.of_type(cfn_type).items() if v["Properties"].get("ApiId") == api}


def _function_of(uri: Any) -> str:
    return json.dumps(uri).split('"Fn::GetAtt": ["', 1)[1].split('"', 1)[0]


def test_routes_go_to_their_functions_and_only_connect_is_authorized(synth: Synth) -> None:
    routes = {p["RouteKey"]: (k, p) for k, p in _of_api(synth, "AWS::ApiGatewayV2::Route").items()}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    integrations = _of_api(synth, "AWS::ApiGatewayV2::Integration")
    for key, function in (("$connect", "WsConnect"), ("$disconnect", "WsDisconnect"), ("$default", "WsDefault")):
        target = routes[key][1]["Target"]["Fn::Join"][1][1]["Ref"]
        assert integrations[target]["IntegrationType"] == "AWS_PROXY"
        assert _function_of(integrations[target]["IntegrationUri"]) == function, key
    connect = routes["$connect"][1]
    assert connect["AuthorizationType"] == "CUSTOM"
    (authorizer_id, authorizer), = _of_api(synth, "AWS::ApiGatewayV2::Authorizer").items()
    assert connect["AuthorizerId"] == ref(authorizer_id)
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
    assert _function_of(authorizer["AuthorizerUri"]) == "WsAuthorizer"
    # $default answers on the socket (two-way); the others do not
    responses = _of_api(synth, "AWS::ApiGatewayV2::RouteResponse").values()
    assert [r["RouteId"] for r in responses] == [ref(routes["$default"][0])]
    assert routes["$default"][1]["RouteResponseSelectionExpression"] == "$default"


def test_authorizer_checks_the_pool_and_the_client(synth: Synth) -> None:
    env = synth.resources["WsAuthorizer"]["Properties"]["Environment"]["Variables"]
    pool = synth.logical_id("Cairn/Http/Users")
    assert env["USER_POOL_ISSUER"] == get_att(pool, "ProviderURL")
    assert env["USER_POOL_CLIENT_IDS"] == ref(synth.logical_id("Cairn/Http/Users/ApiClient"))
    assert flatten_join(env["JWKS_URL"]) == "TOKEN/.well-known/jwks.json"


def test_stage_throttles_logs_and_is_the_ws_url(synth: Synth) -> None:
    (stage,) = _of_api(synth, "AWS::ApiGatewayV2::Stage").values()
    assert stage["StageName"] == "live" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert {"requestId", "eventType", "routeKey", "status", "connectionId"} <= set(
        json.loads(stage["AccessLogSettings"]["Format"]))
    url = synth.template["Outputs"]["WsUrl"]["Value"]
    assert flatten_join(url) == "wss://TOKEN.execute-api.TOKEN.TOKEN/live"
    assert ref(_ws_api(synth)) in url["Fn::Join"][1]
    pusher_env = synth.resources["WsPusher"]["Properties"]["Environment"]["Variables"]
    assert flatten_join(pusher_env["WS_MANAGEMENT_ENDPOINT"]) == "https://TOKEN.execute-api.TOKEN.TOKEN/live"


def test_connections_table(synth: Synth) -> None:
    props = synth.resources[synth.logical_id(CONNECTIONS)]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "connection_id", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert indexes["by_user"]["KeySchema"][0] == {"AttributeName": "user", "KeyType": "HASH"}
    assert indexes["by_stream"]["KeySchema"][0] == {"AttributeName": "stream", "KeyType": "HASH"}
    assert all(i["Projection"]["ProjectionType"] == "KEYS_ONLY" for i in indexes.values())
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_the_pusher_reads_the_view_tables_checkpoint_commits(synth: Synth) -> None:
    mappings = [m["Properties"] for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
                if m["Properties"]["FunctionName"] == ref("WsPusher")]
    assert {m["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings} == {synth.logical_id(v) for v in VIEWS}
    for m in mappings:
        assert m["StartingPosition"] == "LATEST"
        assert m["MaximumRetryAttempts"] == 2 and m["MaximumRecordAgeInSeconds"] == 300
        (pattern,) = [json.loads(f["Pattern"]) for f in m["FilterCriteria"]["Filters"]]
        assert pattern == {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["cp"]}}}}


def test_only_the_pusher_posts_and_only_to_this_stage(synth: Synth) -> None:
    posting = {role for role, s in _statements(synth)
               if s["Effect"] == "Allow" and any("execute-api:" in a for a in as_list(s["Action"]))}
    assert posting == {_role_of(synth, "WsPusher")}
    (statement,) = [s for role, s in _statements(synth) if role in posting and "execute-api:ManageConnections"
                    in as_list(s["Action"])]
    assert statement["Action"] == "execute-api:ManageConnections"
    resource = flatten_join(statement["Resource"])
    assert resource == "arn:TOKEN:execute-api:TOKEN:TOKEN:TOKEN/live/POST/@connections/*"
    assert ref(_ws_api(synth)) in statement["Resource"]["Fn::Join"][1]


@pytest.mark.parametrize(("function", "actions"), [
    ("WsConnect", {"dynamodb:PutItem"}),
    ("WsDisconnect", {"dynamodb:Query", "dynamodb:DeleteItem"}),
    ("WsDefault", {"dynamodb:PutItem"}),
    ("WsPusher", {"dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"}),
])
def test_realtime_functions_get_only_their_table_actions(synth: Synth, function: str, actions: set[str]) -> None:
    table = json.dumps(get_att(synth.logical_id(CONNECTIONS)), sort_keys=True)
    allowed = _allowed(synth, _role_of(synth, function))
    assert allowed.get(table) == actions
    views = {json.dumps(get_att(synth.logical_id(v)), sort_keys=True) for v in VIEWS}
    for resource, granted in allowed.items():
        if resource in views:
            assert granted <= {"dynamodb:GetItem", "dynamodb:DescribeStream", "dynamodb:GetRecords",
                               "dynamodb:GetShardIterator", "dynamodb:ListStreams"}, (function, granted)
        assert "EventStoreEvents" not in resource, f"{function} may touch the events table"


def test_realtime_functions_are_on_the_dashboard(synth: Synth) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = flatten_join(dashboard["Properties"]["DashboardBody"])
    for name in ("PushesSent", "PushesFailed", "ConnectionsGone", "PushDelay", "ConnectCount"):
        assert f'"{name}"' in body, name
    alarms = {k for k in synth.of_type("AWS::CloudWatch::Alarm") if k.startswith("Realtime")}
    assert any("PushesFailed" in a for a in alarms) and any("PusherIteratorAge" in a for a in alarms)
    for function in REALTIME:
        assert synth.resources[function]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] \
            == "realtime"
