"""Bad input is a 422 naming the field, never a 5xx (issue 17, defect 1), on every route class.

The review's examples: an amount of ``"1e1000000"`` (decimal.Overflow, a 500 before), non-ASCII
digits, blanks around an amount, a year below 1000 in ``?at=``, control and bidi characters in
free text, and the same siblings in headers and query parameters.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api

STAFF = {"user": "sam", "groups": ["staff"]}
# the review's examples; tests/unit/test_money.py fuzzes the parser itself over arbitrary text
BAD_AMOUNTS = ["1e1000000", "\u0661\u0662\u0663", " 5.00", 5]
BAD_TEXT = ["ok\u202etxt.exe", "a\x00b", "line\nbreak", "zero\u200bwidth", "a\u2028b"]


def problem_at(reply: Any, loc: list[Any]) -> bool:
    return reply.is_problem(422, "validation-failed") and loc in [e["loc"] for e in reply.json["errors"]]


def order(api: Api, user: str = "alice") -> str:
    reply = api.post("/orders", ORDER_BODY, user=user)
    assert reply.status == 201, reply.text
    return reply.json["order_id"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_unit_price(orders_api: Api, amount: Any):
    body = {**ORDER_BODY, "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": amount}]}
    assert problem_at(orders_api.post("/orders", body), ["body", "items", 0, "unit_price"])


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_staff_payment(orders_api: Api, amount: Any):
    order_id = order(orders_api)
    reply = orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "p-1", "amount": amount}, **STAFF)
    assert problem_at(reply, ["body", "amount"]), reply.text


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
@pytest.mark.parametrize("kind", ["deposits", "withdrawals"])
def test_deposits_and_withdrawals(accounts_api: Api, kind: str, amount: Any):
    account_id = accounts_api.post("/accounts", {"currency": "USD"}).json["account_id"]
    reply = accounts_api.post(f"/accounts/{account_id}/{kind}", {"amount": amount})
    assert problem_at(reply, ["body", "amount"]), reply.text


@pytest.mark.parametrize("text", BAD_TEXT)
def test_free_text(orders_api: Api, text: str):
    order_id = order(orders_api)
    assert problem_at(orders_api.post(f"/orders/{order_id}/cancellation", {"reason": text}), ["body", "reason"])
    paid = orders_api.post(f"/orders/{order_id}/payment", {"payment_id": text, "amount": ORDER_TOTAL}, **STAFF)
    assert problem_at(paid, ["body", "payment_id"])
    token = orders_api.post("/orders", {**ORDER_BODY, "payment_token": text})
    assert problem_at(token, ["body", "payment_token"])


def test_tracking(orders_api: Api):
    order_id = order(orders_api)
    assert orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "p", "amount": ORDER_TOTAL}, **STAFF).status == 200
    for text in BAD_TEXT:
        assert problem_at(orders_api.post(f"/orders/{order_id}/shipment", {"tracking": text}, **STAFF), ["body", "tracking"])
    assert orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "ÅBC-123 ✓"}, **STAFF).status == 200


@pytest.mark.parametrize(
    "at", ["0999-01-01T00:00:00Z", "\u0662\u0660\u0662\u0666-01-01T00:00:00Z", " 2026-01-01T00:00:00Z", "2026-W01",
           "0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z\n"],
)
def test_time_travel_instants(orders_api: Api, orders_queries: Api, accounts_api: Api, accounts_queries: Api, at: str):
    order_id = order(orders_api)
    account_id = accounts_api.post("/accounts", {"currency": "USD"}).json["account_id"]
    for api, path in ((orders_queries, f"/orders/{order_id}/history"), (accounts_queries, f"/accounts/{account_id}/history")):
        reply = api.get(path, query={"at": at})
        if at.startswith("0999"):
            # a real instant before the entity existed: the same 404 as any instant before it
            assert reply.is_problem(404), reply.text
        else:
            assert problem_at(reply, ["query", "at"]), (path, at, reply.text)


@pytest.mark.parametrize("name,value", [("limit", "\u0661"), ("limit", "0"), ("after", "-1"), ("after", "1e3")])
def test_query_numbers(orders_api: Api, orders_queries: Api, name: str, value: str):
    order_id = order(orders_api)
    reply = orders_queries.get(f"/orders/{order_id}/events", query={name: value})
    assert problem_at(reply, ["query", name]), reply.text


@pytest.mark.parametrize("value", ["\u0661", "1e3", "x"])
def test_min_version_and_version(orders_api: Api, orders_queries: Api, value: str):
    order_id = order(orders_api)
    assert problem_at(orders_queries.get(f"/orders/{order_id}", query={"min_version": value}), ["query", "min_version"])
    reply = orders_queries.get(f"/orders/{order_id}/history", query={"version": value})
    assert problem_at(reply, ["query", "version"])


def test_cursor(orders_queries: Api):
    for cursor in ("\u202e", "not-a-cursor", "eyJ4IjoxfQ", "%%%"):
        reply = orders_queries.get("/users/me/orders", query={"cursor": cursor})
        assert problem_at(reply, ["query", "cursor"]), reply.text


@pytest.mark.parametrize("header,value", [("If-Match", '"\u0661"'), ("If-Match", "1e3"), ("Idempotency-Key", "a\x01b"),
                                          ("Idempotency-Key", "k\u202e")])
def test_command_headers(orders_api: Api, header: str, value: str):
    order_id = order(orders_api)
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "changed my mind"}, headers={header: value})
    assert problem_at(reply, ["header", header.lower()]) or problem_at(reply, ["header", header]), reply.text
