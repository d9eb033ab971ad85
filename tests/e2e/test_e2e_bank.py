"""The seed's bank story over HTTP: deposits, withdrawals, never below zero, balance at a past time."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_e2e_orders import _instant_after_now

pytestmark = pytest.mark.e2e


def _open(cairn, token):
    status, headers, body = cairn.request("POST", "/accounts", {"currency": "USD"}, token)
    assert status == 201, body
    assert body["version"] == 1 and body["balance"] == "0.00"
    return body["account_id"]


def test_bank_account_story(cairn):
    owner = cairn.token(f"carol-{uuid.uuid4().hex[:6]}")
    other = cairn.token(f"dave-{uuid.uuid4().hex[:6]}")
    account = _open(cairn, owner)
    at_open = _instant_after_now()

    status, headers, body = cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "100.00"}, owner)
    assert (status, body["balance"], body["version"]) == (200, "100.00", 2) and headers["ETag"] == '"2"'
    after_deposit = _instant_after_now()
    status, _, body = cairn.request("POST", f"/accounts/{account}/withdrawals", {"amount": "30.50"}, owner)
    assert (status, body["balance"], body["version"]) == (200, "69.50", 3)
    after_withdrawal = _instant_after_now()

    status, _, problem = cairn.request("POST", f"/accounts/{account}/withdrawals", {"amount": "69.51"}, owner)
    assert status == 409 and problem["type"].endswith("/insufficient-funds")
    assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "0"}, owner)[0] == 422
    assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "1000000.01"}, owner)[0] == 422
    assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": 5.5}, owner)[0] == 422

    status, _, view = cairn.request("GET", f"/accounts/{account}?min_version=3", token=owner)
    assert (status, view["balance"], view["version"], view["currency"]) == (200, "69.50", 3, "USD")

    # Balance at a past time, and at a version.
    for at, balance, version in ((at_open, "0.00", 1), (after_deposit, "100.00", 2), (after_withdrawal, "69.50", 3)):
        status, _, past = cairn.request("GET", f"/accounts/{account}/history?at={at}", token=owner)
        assert (status, past["balance"], past["version"]) == (200, balance, version), at
    status, _, past = cairn.request("GET", f"/accounts/{account}/history?version=2", token=owner)
    assert (status, past["balance"]) == (200, "100.00")

    # Optimistic concurrency: a stale If-Match is refused with where the stream is.
    status, _, problem = cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "1.00"}, owner,
                                       {"If-Match": '"2"'})
    assert status == 412 and problem["current_version"] == 3
    status, _, body = cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "1.00"}, owner,
                                    {"If-Match": '"3"'})
    assert (status, body["version"], body["balance"]) == (200, 4, "70.50")

    # Idempotency: the repeat answers the same and appends nothing; another body with the key is 422.
    key = f"dep-{uuid.uuid4()}"
    first = cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "10.00"}, owner, {"Idempotency-Key": key})
    again = cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "10.00"}, owner, {"Idempotency-Key": key})
    assert first[0] == again[0] == 200 and first[2] == again[2] and first[2]["balance"] == "80.50"
    assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "11.00"}, owner,
                         {"Idempotency-Key": key})[0] == 422
    events = cairn.request("GET", f"/accounts/{account}/events", token=owner)[2]["events"]
    assert [e["type"] for e in events] == ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn", "MoneyDeposited",
                                           "MoneyDeposited"]

    # Isolation.
    assert cairn.request("GET", f"/accounts/{account}", token=other)[0] == 404
    assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "1.00"}, other)[0] == 404
    cairn.wait_idle()
    status, _, view = cairn.request("GET", f"/accounts/{account}", token=owner)
    assert (status, view["balance"], view["version"]) == (200, "80.50", 5)
