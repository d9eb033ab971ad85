"""Chaos delivery (shuffled over shards, duplicated, throttled): read models end equal to the store."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


def test_read_models_equal_the_store_after_chaotic_delivery(cairn, staff):
    users = [cairn.token(f"chaos-{i}-{uuid.uuid4().hex[:6]}") for i in range(2)]
    cairn.chaos(shuffle=True, duplicate=0.3, throttle=0.02, seed=1234)
    orders: list[tuple[str, str]] = []
    accounts: list[tuple[str, str]] = []
    try:
        for i in range(6):
            token = users[i % 2]
            status, _, body = cairn.request(
                "POST", "/orders", {"items": [{"sku": f"SKU-C{i}", "quantity": 1 + i, "unit_price": "3.10"}],
                                    "currency": "USD"}, token)
            assert status == 201, body
            orders.append((body["order_id"], token))
            if i % 3 != 2:
                total = body["total"]
                assert cairn.request("POST", f"/orders/{body['order_id']}/payment",
                                     {"payment_id": f"p{i}", "amount": total}, staff)[0] == 200
            if i % 3 == 0:
                assert cairn.request("POST", f"/orders/{body['order_id']}/shipment", {"tracking": f"T{i}"}, staff)[0] == 200
            if i == 5:
                assert cairn.request("POST", f"/orders/{body['order_id']}/cancellation", {"reason": "x"}, token)[0] == 200
        for token in users:
            account = cairn.request("POST", "/accounts", {"currency": "USD"}, token)[2]["account_id"]
            for amount in ("10.00", "2.50", "7.25"):
                assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": amount}, token)[0] == 200
            assert cairn.request("POST", f"/accounts/{account}/withdrawals", {"amount": "4.75"}, token)[0] == 200
            accounts.append((account, token))
        cairn.wait_idle(timeout=120)
        chaos = cairn.request("GET", "/_local/chaos")[2]
        assert chaos["duplicates_sent"] > 0  # the chaos really re-delivered records
    finally:
        cairn.chaos(shuffle=False, duplicate=0.0, throttle=0.0)

    for order_id, token in orders:
        events = cairn.request("GET", f"/orders/{order_id}/events", token=token)[2]["events"]
        latest = events[-1]["version"]
        store = cairn.request("GET", f"/orders/{order_id}/history?version={latest}", token=token)[2]
        status, _, view = cairn.request("GET", f"/orders/{order_id}", token=token)
        assert status == 200
        assert (view["status"], view["version"], view["total"]) == (store["status"], latest, store["total"])
        assert [t["version"] for t in view["timeline"]] == list(range(1, latest + 1))  # once each, in order
    for token in users:
        listed = {o["order_id"]: o for o in cairn.request("GET", "/users/me/orders", token=token)[2]["orders"]}
        for order_id, owner in orders:
            if owner == token:
                view = cairn.request("GET", f"/orders/{order_id}", token=token)[2]
                assert (listed[order_id]["status"], listed[order_id]["version"]) == (view["status"], view["version"])
    for account, token in accounts:
        events = cairn.request("GET", f"/accounts/{account}/events", token=token)[2]["events"]
        store = cairn.request("GET", f"/accounts/{account}/history?version={events[-1]['version']}", token=token)[2]
        view = cairn.request("GET", f"/accounts/{account}", token=token)[2]
        assert (view["balance"], view["version"]) == (store["balance"], events[-1]["version"]) == ("15.00", 5)
    status, _, ops = cairn.request("GET", "/ops/projections", token=staff)
    assert status == 200
    for projection in ops["projections"]:
        assert projection["lag_events"] == 0, projection
