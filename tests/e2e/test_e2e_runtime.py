"""The local runtime itself, from outside: health, docs, outputs, auth, the local cloud."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_health_openapi_and_docs_are_public(cairn):
    assert cairn.request("GET", "/health")[::2] == (200, {"status": "ok"})
    status, _, doc = cairn.request("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for path in ("/orders", "/orders/{id}", "/accounts", "/accounts/{id}/history", "/health"):
        assert path in doc["paths"], path
    status, headers, _ = cairn.request("GET", "/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")


def test_outputs_name_the_local_resources(cairn):
    out = cairn.outputs
    for key in ("ApiUrl", "AwsEndpointUrl", "EventsTableName", "SnapshotBucketName", "EventBusName",
                "OrderViewTableName", "AccountViewTableName"):
        assert out.get(key), key
    assert out["ApiUrl"].startswith("http://127.0.0.1:")
    tables = cairn.aws("dynamodb").list_tables()["TableNames"]
    assert out["EventsTableName"] in tables and out["OrderViewTableName"] in tables
    desc = cairn.aws("dynamodb").describe_table(TableName=out["EventsTableName"])["Table"]
    assert desc["StreamSpecification"]["StreamEnabled"]
    assert cairn.aws("s3").head_bucket(Bucket=out["SnapshotBucketName"])
    assert cairn.aws("events").describe_event_bus(Name=out["EventBusName"])["Name"] == out["EventBusName"]


def test_protected_routes_need_a_valid_token(cairn):
    assert cairn.request("GET", "/users/me/orders")[0] == 401
    assert cairn.request("GET", "/users/me/orders", token="not.a.jwt")[0] == 401
    assert cairn.request("GET", "/users/me/orders", token=cairn.token("e2e-auth"))[0] == 200


def test_unknown_route_is_404(cairn):
    assert cairn.request("GET", "/no/such/route")[0] == 404
