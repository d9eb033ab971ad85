"""Identity and existence (issue 17, defect 7, the code parts).

- ``cognito:groups`` is parsed exactly as API Gateway's JWT authorizer renders it; a group whose
  name merely contains "staff" (``ops,staff``: commas are legal in Cognito group names) is not staff.
- Time travel answers a missing order or account exactly as another user's (status, type, title,
  detail): no existence oracle, whatever the instant or version asked for.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api

MISSING_ORDER = "order-00000000-0000-4000-8000-000000000000"
MISSING_ACCOUNT = "account-00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("groups", ["[ops,staff]", '["staff"]', "[staff,ops]", "ops,staff"])
def test_a_group_named_like_staff_does_not_grant_staff(orders_api: Api, groups: str):
    order_id = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    reply = orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "p", "amount": ORDER_TOTAL}, user="mallory", groups=groups)
    assert reply.is_problem(403, "forbidden"), reply.text
    staff = orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "p", "amount": ORDER_TOTAL}, user="sam",
                            groups="[ops,staff staff]")
    assert staff.status == 200, staff.text


def _shape(reply: Any) -> tuple[Any, ...]:
    body = reply.json
    return reply.status, reply.content_type, body["type"], body["title"], body["detail"].replace(reply.event["rawPath"].split("/")[2], "ID")


QUERIES = [{"at": "2000-01-01T00:00:00Z"}, {"at": "2999-01-01T00:00:00Z"}, {"version": 1}, {"version": 99}]


@pytest.mark.parametrize("query", QUERIES)
def test_order_history_of_another_users_order_is_a_missing_order(orders_api: Api, orders_queries: Api, query: dict):
    order_id = orders_api.post("/orders", ORDER_BODY, user="alice").json["order_id"]
    theirs = orders_queries.get(f"/orders/{order_id}/history", query=query, user="mallory")
    missing = orders_queries.get(f"/orders/{MISSING_ORDER}/history", query=query, user="mallory")
    assert theirs.status == 404 and _shape(theirs) == _shape(missing), (theirs.text, missing.text)


@pytest.mark.parametrize("query", QUERIES)
def test_account_history_of_another_users_account_is_a_missing_account(accounts_api: Api, accounts_queries: Api, query: dict):
    account_id = accounts_api.post("/accounts", {"currency": "USD"}, user="alice").json["account_id"]
    theirs = accounts_queries.get(f"/accounts/{account_id}/history", query=query, user="mallory")
    missing = accounts_queries.get(f"/accounts/{MISSING_ACCOUNT}/history", query=query, user="mallory")
    assert theirs.status == 404 and _shape(theirs) == _shape(missing), (theirs.text, missing.text)
