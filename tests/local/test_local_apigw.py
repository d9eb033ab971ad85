"""Route matching and the payload 2.0 event / response mapping (no functions run)."""

from __future__ import annotations

import base64
import json

import pytest

from local.apigw import HttpApi, HttpRequest, Route


def _route(key: str) -> Route:
    method, _, path = key.partition(" ")
    segs = tuple(s for s in path.strip("/").split("/") if s) if key != "$default" else ()
    return Route(key, method if key != "$default" else "", segs, "fn", "2.0", None, (), 30000)


@pytest.fixture
def api():
    routes = [_route(k) for k in (
        "GET /orders/{id}", "GET /orders/summary", "ANY /orders/{id}", "GET /files/{path+}",
        "POST /orders", "$default",
    )]
    return HttpApi("abc123", routes, None, lambdas=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("method, path, key, params", [
    ("GET", "/orders/summary", "GET /orders/summary", {}),
    ("GET", "/orders/o-1", "GET /orders/{id}", {"id": "o-1"}),
    ("DELETE", "/orders/o-1", "ANY /orders/{id}", {"id": "o-1"}),
    ("GET", "/files/a/b%20c.txt", "GET /files/{path+}", {"path": "a/b c.txt"}),
    ("POST", "/orders", "POST /orders", {}),
    ("GET", "/orders", "$default", {}),
    ("GET", "/orders/o-1/extra", "$default", {}),
])
def test_most_specific_route_wins(api, method, path, key, params):
    route, got = api.find(method, path)
    assert route is not None and route.route_key == key
    assert got == params


def test_no_default_means_404():
    api = HttpApi("x", [_route("GET /a")], None, lambdas=None)  # type: ignore[arg-type]
    assert api.find("GET", "/b") == (None, {})


def test_event_has_the_payload_2_shape(api):
    req = HttpRequest(
        method="POST", raw_path="/orders/o%2D1", raw_query="a=1&a=2&b=",
        headers=[("Content-Type", "application/json"), ("X-Multi", "1"), ("x-multi", "2"),
                 ("Cookie", "s=1; t=2"), ("User-Agent", "ua"), ("Host", "127.0.0.1:3000")],
        body=b'{"x": 1}', source_ip="127.0.0.9",
    )
    route, params = api.find("POST", "/orders/o%2D1")
    auth = {"jwt": {"claims": {"sub": "alice"}, "scopes": None}}
    ev = api.build_event(req, route, params, "req-1", auth)
    assert ev["version"] == "2.0" and ev["routeKey"] == "ANY /orders/{id}"
    assert ev["rawPath"] == "/orders/o%2D1" and ev["pathParameters"] == {"id": "o-1"}
    assert ev["rawQueryString"] == "a=1&a=2&b="
    assert ev["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert ev["headers"]["x-multi"] == "1,2" and "cookie" not in ev["headers"]
    assert ev["cookies"] == ["s=1", "t=2"]
    assert ev["headers"]["x-forwarded-for"] == "127.0.0.9"
    assert ev["body"] == '{"x": 1}' and ev["isBase64Encoded"] is False
    ctx = ev["requestContext"]
    assert ctx["authorizer"] == auth and ctx["http"]["method"] == "POST"
    assert ctx["http"]["sourceIp"] == "127.0.0.9" and ctx["http"]["userAgent"] == "ua"
    assert ctx["requestId"] == "req-1" and ctx["stage"] == "$default" and ctx["apiId"] == "abc123"
    assert isinstance(ctx["timeEpoch"], int)


def test_binary_bodies_are_base64_and_empty_bodies_absent(api):
    route, params = api.find("POST", "/orders")
    binary = HttpRequest("POST", "/orders", "", [("Content-Type", "application/octet-stream")], b"\x00\xff")
    ev = api.build_event(binary, route, params, "r", None)
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == b"\x00\xff"
    empty = api.build_event(HttpRequest("POST", "/orders", "", [], b""), route, params, "r", None)
    assert "body" not in empty and "queryStringParameters" not in empty and "pathParameters" not in empty
    assert "authorizer" not in empty["requestContext"]


def test_response_mapping():
    r = HttpApi.map_response({"statusCode": 201, "headers": {"ETag": '"1"'}, "body": "{}",
                              "cookies": ["a=1", "b=2"]})
    assert r.status == 201 and ("ETag", '"1"') in r.headers
    assert [v for k, v in r.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    b = HttpApi.map_response({"statusCode": 200, "body": base64.b64encode(b"\x01").decode(),
                              "isBase64Encoded": True})
    assert b.body == b"\x01"
    inferred = HttpApi.map_response({"hello": "world"})
    assert inferred.status == 200 and json.loads(inferred.body) == {"hello": "world"}
    assert ("Content-Type", "application/json") in inferred.headers
