"""Public (cairn_platform.public.handler): /health, /openapi.json (every API.md route, with
schemas), unknown routes; Ops (cairn_platform.ops.handler): /ops/projections (staff); and the
cross-cutting answers every HTTP Lambda gives."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, PUBLIC_ROUTES, ROUTES, Api, Projector

STAFF = {"user": "sam", "groups": ["staff"]}


def test_health_is_public(public: Api):
    reply = public.get("/health", user=None)
    assert reply.status == 200 and reply.json == {"status": "ok"}
    assert reply.headers["x-correlation-id"]


def test_unknown_route_and_method_are_problems(public: Api):
    assert public.get("/no/such/route", user=None).is_problem(404, "not-found")
    reply = public("DELETE", "/health", user=None)
    assert reply.is_problem(405, "method-not-allowed") and reply.headers["allow"] == "GET"


@pytest.fixture
def openapi(public: Api) -> dict[str, Any]:
    reply = public.get("/openapi.json", user=None)
    assert reply.status == 200 and reply.content_type == "application/json"
    return reply.json


def test_openapi_is_version_3_with_bearer_jwt(openapi: dict[str, Any]):
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

    assert openapi["openapi"].startswith("3.")
    assert openapi["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    OpenAPI.model_validate(openapi)  # parses as an OpenAPI 3 document (Powertools' own model)


def _operations(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    ops = {}
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            ops[f"{method.upper()} {path}"] = operation
    return ops


def test_openapi_has_every_route_of_api_md_and_no_other(openapi: dict[str, Any]):
    assert set(_operations(openapi)) == set(ROUTES)


def test_protected_routes_declare_bearer_auth_public_ones_do_not(openapi: dict[str, Any]):
    for key, operation in _operations(openapi).items():
        if key in PUBLIC_ROUTES:
            assert not operation.get("security"), key
        else:
            assert operation.get("security") == [{"bearerAuth": []}], key
            assert "401" in operation["responses"], key


def test_openapi_has_request_and_response_schemas(openapi: dict[str, Any]):
    ops = _operations(openapi)
    schemas = openapi["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    create = ops["POST /orders"]
    body = resolve(create["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"items", "currency"}
    line = resolve(body["properties"]["items"]["items"])
    assert line["properties"]["quantity"]["maximum"] == 1000
    price = line["properties"]["unit_price"]  # optional (the catalog prices it), a decimal string when sent
    assert {"type": "string"} in [{"type": option.get("type")} for option in price.get("anyOf", [price])]
    assert "unit_price" not in line.get("required", [])
    assert body["properties"]["items"]["maxItems"] == 100
    created = resolve(create["responses"]["201"]["content"]["application/json"]["schema"])
    assert {"order_id", "version", "status", "total"} <= set(created["required"])
    view = resolve(ops["GET /orders/{id}"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"order_id", "customer_id", "status", "timeline", "tracking"} <= set(view["properties"])
    for key, operation in ops.items():
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success, key
        if key.startswith("POST ") and key not in ("POST /orders", "POST /accounts", "POST /ops/snapshots"):
            assert "409" in operation["responses"] and "412" in operation["responses"], key
            problem = operation["responses"]["409"]["content"]["application/problem+json"]["schema"]
            assert {"type", "title", "status"} <= set(problem["required"])
    params = {p["name"].lower(): p for p in ops["POST /accounts/{id}/withdrawals"]["parameters"]}
    key = params["idempotency-key"]
    assert key["in"] == "header" and {"minLength": 1, "maxLength": 128}.items() <= key["schema"]["anyOf"][0].items()
    assert params["if-match"]["in"] == "header"
    assert params["id"]["in"] == "path" and params["id"]["required"] is True
    analytics = {p["name"] for p in ops["GET /analytics/daily"]["parameters"]}
    assert analytics == {"from", "to"}
    assert "403" in ops["GET /analytics/daily"]["responses"]


def test_openapi_paths_use_api_md_parameter_names(openapi: dict[str, Any]):
    for path in openapi["paths"]:
        assert not re.search(r"<|>", path)
        for name in re.findall(r"\{(\w+)\}", path):
            assert name in ("id", "sku", "sub")  # sub: DELETE /users/{sub}/personal-data


def test_ops_answers_no_one_without_a_token(ops: Api):
    # the public routes are not served by the function whose role reads the read models
    assert ops.get("/health", user=None).is_problem(401, "unauthorized")
    assert ops.get("/openapi.json", user=None).is_problem(401, "unauthorized")
    assert ops.get("/no/such/route", user=None).is_problem(401, "unauthorized")


def test_projections_are_staff_only(ops: Api):
    assert ops.get("/ops/projections", user=None).is_problem(401, "unauthorized")
    assert ops.get("/ops/projections", user="alice").is_problem(403, "forbidden")


def test_projection_status_after_orders_and_accounts(
    orders_api: Api, accounts_api: Api, ops: Api, order_projector: Projector, account_projector: Projector
):
    order = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    orders_api.post(f"/orders/{order}/cancellation", {"reason": "r"})
    account = accounts_api.post("/accounts", {"currency": "USD"}).json["account_id"]
    assert account
    order_projector.run()
    account_projector.run()
    reply = ops.get("/ops/projections", **STAFF)
    assert reply.status == 200, reply.text
    by_name = {p["name"]: p for p in reply.json["projections"]}
    assert set(by_name) == {"order_view", "user_orders", "analytics", "account_view", "catalog"}
    for entry in by_name.values():
        assert {"name", "generation", "streams", "events_applied", "lag_events", "parked_streams"} <= set(entry)
        assert entry["generation"] >= 1 and entry["lag_events"] == 0 and entry["parked_streams"] == 0
    assert (by_name["order_view"]["streams"], by_name["order_view"]["events_applied"]) == (1, 2)
    assert (by_name["account_view"]["streams"], by_name["account_view"]["events_applied"]) == (1, 1)


def test_snapshot_on_demand(orders_api: Api, ops: Api):
    from cairn_platform.snapshotter import CONTEXT_APPS, _runtime

    order = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    orders_api.post(f"/orders/{order}/cancellation", {"reason": "r"})
    assert ops.post("/ops/snapshots", {"stream_id": order}, user=None).is_problem(401, "unauthorized")
    assert ops.post("/ops/snapshots", {"stream_id": order}, user="alice").is_problem(403, "forbidden")
    reply = ops.post("/ops/snapshots", {"stream_id": order}, **STAFF)
    assert reply.status == 202, reply.text
    assert reply.json == {"stream_id": order, "version": 2}
    runtime = _runtime("order")
    stored = runtime.snapshots.get(order, runtime.decider.state_schema_version)
    assert stored is not None and stored.version == 2 and set(CONTEXT_APPS) == {"order", "account"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"stream_id": "order-00000000-0000-0000-0000-000000000000"}, 404, "not-found"),
        ({"stream_id": "widget-1"}, 404, "not-found"),
        ({"stream_id": "../etc"}, 422, "validation-failed"),
        ({"stream_id": 7}, 422, "validation-failed"),
        ({}, 422, "validation-failed"),
        ({"stream_id": "order-1", "extra": 1}, 422, "validation-failed"),
    ],
)
def test_snapshot_of_bad_or_unknown_streams_is_a_problem(ops: Api, body, status, code):
    assert ops.post("/ops/snapshots", body, **STAFF).is_problem(status, code)
