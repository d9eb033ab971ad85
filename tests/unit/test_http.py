"""cairn.http building blocks: claims, If-Match, correlation ids, idempotency scoping, problems,
transient-failure classification, and the JSON decoder that turns every bad body into a 400."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.http import (
    correlation_id,
    etag,
    parse_groups,
    parse_if_match,
    principal_of,
    request_fingerprint,
    scoped_idempotency_key,
    transient_failure,
)
from cairn.http.problems import ProblemError, problem_event_response
from cairn.http.service import _loads


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[staff]", {"staff"}),
        ("[staff admin]", {"staff", "admin"}),
        ("staff", {"staff"}),
        (["staff", "admin"], {"staff", "admin"}),
        # issue 17, defect 7: commas, quotes and brackets are legal in Cognito group names
        ("[ops,staff]", {"ops,staff"}),
        ("ops,staff", {"ops,staff"}),
        ('["staff","admin"]', {'"staff","admin"'}),
        ('["staff" admin]', {'"staff"', "admin"}),
        ("[[staff] admin]", {"[staff]", "admin"}),
        ("[staff] [ops]", {"staff]", "[ops"}),
        (["ops,staff"], {"ops,staff"}),
        ("[]", set()),
        ("", set()),
        (None, set()),
    ],
)
def test_groups_in_every_shape(value, expected):
    assert parse_groups(value) == expected


@pytest.mark.parametrize("groups", ["[ops,staff]", '["staff"]', "[staff,]", "[ops;staff]", "[(staff)]", "['staff']", "[Staff]"])
def test_a_group_that_merely_contains_staff_is_not_staff(groups):
    event = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "u-1", "cognito:groups": groups}}}}}
    assert not principal_of(event).is_staff


def test_principal_from_http_api_claims():
    event = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "u-1", "cognito:groups": "[a staff]"}}}}}
    principal = principal_of(event)
    assert principal.sub == "u-1" and principal.is_staff
    assert principal_of({"requestContext": {}}) is None
    assert principal_of({"requestContext": {"authorizer": {"jwt": {"claims": {"sub": " "}}}}}) is None
    assert not principal_of({"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "x"}}}}}).is_staff


@pytest.mark.parametrize(
    ("header", "version"), [('"3"', 3), ('W/"3"', 3), ("3", 3), ('  "12" ', 12), ("*", None), (None, None), ('"0"', 0)]
)
def test_if_match(header, version):
    assert parse_if_match(header) == version


@pytest.mark.parametrize("header", ['"a"', '"1", "2"', "", '"-1"', "1.0", '"' + "9" * 19 + '"'])
def test_if_match_rejects_what_is_not_one_version(header):
    with pytest.raises(ValueError):
        parse_if_match(header)


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_etag_round_trips(version):
    assert parse_if_match(etag(version)) == version


def test_correlation_id_kept_when_sane_replaced_otherwise():
    assert correlation_id({"x-correlation-id": "abc-123:x/y"}) == "abc-123:x/y"
    for bad in ("", "x" * 129, "new\nline", "spa ce", None):
        generated = correlation_id({"x-correlation-id": bad})
        assert generated != bad and len(generated) == 36
    assert correlation_id({}) != correlation_id({})


def test_idempotency_scope_and_fingerprint():
    assert scoped_idempotency_key("alice", "POST /orders", "k") == "alice:POST /orders:k"
    a = request_fingerprint("POST /orders/{id}/payment", {"id": "order-1"}, {"amount": "1.00", "payment_id": "p"})
    b = request_fingerprint("POST /orders/{id}/payment", {"id": "order-1"}, {"payment_id": "p", "amount": "1.00"})
    assert a == b  # key order does not matter
    assert a != request_fingerprint("POST /orders/{id}/payment", {"id": "order-2"}, {"amount": "1.00", "payment_id": "p"})
    assert a != request_fingerprint("POST /orders/{id}/shipment", {"id": "order-1"}, {"amount": "1.00", "payment_id": "p"})
    assert a != request_fingerprint("POST /orders/{id}/payment", {"id": "order-1"}, {"amount": "1.01", "payment_id": "p"})


def test_problem_response_shape():
    response = problem_event_response(ProblemError(409, "insufficient-funds", "no", current_version=3), "cid")
    assert response["statusCode"] == 409
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert json.loads(response["body"]) == {
        "type": "https://cairn.dev/problems/insufficient-funds",
        "title": "Conflict",
        "status": 409,
        "detail": "no",
        "current_version": 3,
        "correlation_id": "cid",
    }


def _client_error(code, reasons=None):
    from botocore.exceptions import ClientError

    response = {"Error": {"Code": code, "Message": "m"}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "Op")


def test_transient_failures():
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

    from cairn.commands import RetriesExhaustedError
    from cairn.store import EventStoreError, EventTooLargeError

    assert transient_failure(_client_error("ProvisionedThroughputExceededException"))
    assert transient_failure(_client_error("ThrottlingException"))
    assert transient_failure(_client_error("RequestLimitExceeded"))
    assert transient_failure(_client_error("TransactionCanceledException", ["None", "TransactionConflict"]))
    assert transient_failure(EndpointConnectionError(endpoint_url="http://x"))
    assert transient_failure(ReadTimeoutError(endpoint_url="http://x"))
    assert transient_failure(RetriesExhaustedError("s", 1, 2))
    assert transient_failure(EventStoreError("cancelled: ThrottlingError"))
    assert not transient_failure(_client_error("ValidationException"))
    assert not transient_failure(_client_error("TransactionCanceledException", ["ConditionalCheckFailed"]))
    assert not transient_failure(_client_error("ResourceNotFoundException"))
    assert not transient_failure(EventTooLargeError("big"))
    assert not transient_failure(KeyError("x"))


@pytest.mark.parametrize("text", ["{", "1" * 5000, "[" * 100_000, "\ud800"])
def test_every_undecodable_body_is_a_json_error(text):
    with pytest.raises(json.JSONDecodeError):
        _loads(text)


def test_valid_json_decodes():
    assert _loads('{"a": [1, "2.50"]}') == {"a": [1, "2.50"]}


# -- issue 17, defect 9: 405 without Powertools' private route tables ---------------------------
def test_405_and_404_come_from_our_own_route_rules():
    import json as _json
    from pathlib import Path

    from cairn.http import HttpService

    service = HttpService("t405", authenticated=False)

    @service.get("/things/<id>")
    def thing(id: str) -> dict:
        return {"id": id}

    @service.post("/things/<id>/poke")
    def poke(id: str) -> dict:
        return {"id": id}

    def call(method: str, path: str) -> dict:
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": method, "path": path}, "stage": "$default", "requestId": "r"},
            "isBase64Encoded": False,
        }
        return service.handler(event)

    assert call("GET", "/things/a-1")["statusCode"] == 200
    wrong = call("DELETE", "/things/a-1")
    assert wrong["statusCode"] == 405 and wrong["headers"]["Allow"] == "GET"
    assert _json.loads(wrong["body"])["type"].endswith("/method-not-allowed")
    assert call("GET", "/things/a-1/poke")["headers"]["Allow"] == "POST"
    assert call("GET", "/things/a/b/c")["statusCode"] == 404
    source = Path(__file__).resolve().parents[2].joinpath("layers/cairn/python/cairn/http/service.py").read_text()
    assert "_static_routes" not in source and "_dynamic_routes" not in source and "app._" not in source
