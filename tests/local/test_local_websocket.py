"""The local WebSocket API behaves like API Gateway's: handshake auth, routes, two-way answers,
the management API (410 when gone) and the idle timeout — with a real ``websockets`` client.

Functions are Python callables here (the template-driven path, with the real functions, is
tests/e2e/test_e2e_realtime.py); what is under test is the emulation of API Gateway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from local.apigw import HttpRequest
from local.lambdas import FunctionError, InvokeResult
from local.websocket import WebSocketApi, _Route

AUTH, CONNECT, DISCONNECT, DEFAULT = "fn:auth", "fn:connect", "fn:disconnect", "fn:default"


class Functions:
    """A LambdaService stand-in: records events, answers with the given callables."""

    def __init__(self, answers: dict[str, Callable[[dict[str, Any]], Any]]):
        self.answers = answers
        self.events: list[tuple[str, dict[str, Any]]] = []

    def get(self, key: str) -> None:
        return None

    def invoke(self, key: str, event: Any, *, chaos: bool = True) -> InvokeResult:
        self.events.append((key, event))
        return InvokeResult(self.answers[key](event), "req", 1.0, False)

    def called(self, key: str) -> list[dict[str, Any]]:
        return [e for k, e in self.events if k == key]


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    token = event["queryStringParameters"]["token"]
    if token == "bad":
        raise FunctionError({"errorType": "Exception", "errorMessage": "Unauthorized"})
    effect = "Deny" if token == "deny" else "Allow"
    return {"principalId": token, "context": {"sub": token, "groups": ""},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]}}


@pytest.fixture
def gateway() -> Iterator[tuple[WebSocketApi, Functions]]:
    functions = Functions({
        AUTH: authorize,
        CONNECT: lambda e: {"statusCode": 403 if e["requestContext"]["authorizer"]["sub"] == "banned" else 200},
        DISCONNECT: lambda e: {"statusCode": 200},
        DEFAULT: lambda e: {"statusCode": 200, "body": json.dumps({"echo": e["body"],
                                                                  "sub": e["requestContext"]["authorizer"]["sub"]})},
    })
    routes = {"$connect": _Route("$connect", CONNECT, False), "$disconnect": _Route("$disconnect", DISCONNECT, False),
              "$default": _Route("$default", DEFAULT, True)}
    api = WebSocketApi("abc123", "live", routes, AUTH, ["route.request.querystring.token"],
                       "$request.body.action", functions, idle_timeout=1.0, max_lifetime=60.0)
    api.start("127.0.0.1", 0)
    try:
        yield api, functions
    finally:
        api.stop()


def refused_with(api: WebSocketApi, query: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{api.url}{query}", open_timeout=10)
    return refused.value.response.status_code


def test_handshake_authorization(gateway: tuple[WebSocketApi, Functions]) -> None:
    api, functions = gateway
    assert refused_with(api, "") == 401
    assert functions.called(AUTH) == []  # a missing identity source never reaches the authorizer
    assert refused_with(api, "?token=bad") == 401
    assert refused_with(api, "?token=deny") == 403
    assert refused_with(api, "?token=banned") == 403  # $connect said no
    assert functions.called(CONNECT)[-1]["requestContext"]["eventType"] == "CONNECT"
    with connect(f"{api.url}?token=alice", open_timeout=10) as sock:
        sock.send('{"action": "anything"}')
        assert json.loads(sock.recv(timeout=10)) == {"echo": '{"action": "anything"}', "sub": "alice"}
    auth_event = functions.called(AUTH)[-1]
    assert auth_event["type"] == "REQUEST"
    assert auth_event["methodArn"].endswith(":abc123/live/$connect")


def test_management_api_posts_and_answers_410_when_gone(gateway: tuple[WebSocketApi, Functions]) -> None:
    api, functions = gateway
    with connect(f"{api.url}?token=alice", open_timeout=10) as sock:
        deadline = time.time() + 10
        while not api.connections and time.time() < deadline:
            time.sleep(0.01)
        (connection_id,) = api.connections
        posted = api.management(HttpRequest("POST", f"/live/@connections/{connection_id}", "", [],
                                             b'{"type":"x"}', "127.0.0.1", "HTTP/1.1"))
        assert posted is not None and posted.status == 200
        assert json.loads(sock.recv(timeout=10)) == {"type": "x"}
        got = api.management(HttpRequest("GET", f"/live/%40connections/{connection_id}", "", [], b"",
                                          "127.0.0.1", "HTTP/1.1"))
        assert got is not None and got.status == 200 and "ConnectedAt" in json.loads(got.body)
    deadline = time.time() + 10
    while not functions.called(DISCONNECT) and time.time() < deadline:
        time.sleep(0.01)
    disconnect = functions.called(DISCONNECT)[-1]["requestContext"]
    assert disconnect["connectionId"] == connection_id and disconnect["authorizer"]["sub"] == "alice"
    gone = api.management(HttpRequest("POST", f"/live/@connections/{connection_id}", "", [], b"{}",
                                      "127.0.0.1", "HTTP/1.1"))
    assert gone is not None and gone.status == 410
    assert ("x-amzn-ErrorType", "GoneException") in gone.headers
    assert api.management(HttpRequest("GET", "/orders", "", [], b"", "127.0.0.1", "HTTP/1.1")) is None


def test_idle_connections_are_closed(gateway: tuple[WebSocketApi, Functions]) -> None:
    api, functions = gateway  # idle timeout 1 s here (10 minutes by default, as API Gateway)
    with connect(f"{api.url}?token=alice", open_timeout=10) as sock:
        with pytest.raises(ConnectionClosed):
            sock.recv(timeout=15)
        assert sock.close_code == 1001
