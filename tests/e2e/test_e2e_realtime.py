"""Real-time updates end to end: a real WebSocket client on the local runtime's ``WsUrl``.

The authorizer, the route functions and the pusher run as the template says; the pusher reaches
the sockets through the management API the runtime implements. Claims: a token is required; the
owner receives CREATED then PAID of an order paid by card, each pushed version is already
readable with a plain GET; nobody else receives any of it; bad messages leave the socket open.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import Cairn

pytestmark = pytest.mark.e2e

ORDER = {"items": [{"sku": "SKU-1", "quantity": 1, "unit_price": "9.99"}], "currency": "USD"}


def ws(cairn: Cairn, token: str | None) -> ClientConnection:
    url = cairn.outputs["WsUrl"] + (f"?token={token}" if token is not None else "")
    return connect(url, open_timeout=30, close_timeout=5)


def next_message(sock: ClientConnection, timeout: float = 60.0) -> dict[str, Any]:
    return json.loads(sock.recv(timeout=timeout))


def ask(sock: ClientConnection, raw: str) -> dict[str, Any]:
    sock.send(raw)
    return next_message(sock, 30)


def test_the_handshake_needs_a_valid_token(cairn: Cairn) -> None:
    for token in (None, "", "not-a-jwt"):
        with pytest.raises(InvalidStatus) as refused:
            ws(cairn, token)
        assert refused.value.response.status_code == 401


def test_the_owner_receives_created_then_paid_and_others_nothing(cairn: Cairn) -> None:
    alice, bob = cairn.token("rt-alice"), cairn.token("rt-bob")
    with ws(cairn, alice) as mine, ws(cairn, bob) as theirs:
        status, _, created = cairn.request("POST", "/orders", {**ORDER, "payment_token": "tok_visa"}, alice)
        assert status == 201, created
        assert created["pending"] == ["payment"]
        order_id = created["order_id"]

        received = []
        deadline = time.time() + 90
        while not received or received[-1]["status"] != "PAID":
            assert time.time() < deadline, f"no PAID push (got {received})"
            message = next_message(mine, timeout=max(1.0, deadline - time.time()))
            assert message["type"] == "order.updated" and message["order_id"] == order_id, message
            # pushed only once the read model has it: a plain GET (no min_version) is at least there
            code, headers, view = cairn.request("GET", f"/orders/{order_id}", token=alice)
            assert code == 200 and view["version"] >= message["version"], (message, view)
            assert headers["X-Cairn-Source"] == "read-model"
            received.append(message)
        assert [(m["version"], m["status"]) for m in received] == [(1, "CREATED"), (2, "PAID")]
        assert all(m["occurred_at"].endswith("Z") for m in received)
        _, _, view = cairn.request("GET", f"/orders/{order_id}", token=alice)
        assert view["pending"] == []

        # bob: nothing of alice's order, not even by asking for it
        cairn.wait_idle()
        with pytest.raises(TimeoutError):
            theirs.recv(timeout=1.0)
        answer = ask(theirs, json.dumps({"action": "subscribe", "stream_id": order_id}))
        missing = ask(theirs, json.dumps({"action": "subscribe", "stream_id": "order-does-not-exist"}))
        assert answer["code"] == missing["code"] == "stream-not-found"
        assert {k: v for k, v in answer.items() if k != "stream_id"} == \
            {k: v for k, v in missing.items() if k != "stream_id"}


def test_bad_messages_get_an_error_and_the_connection_stays(cairn: Cairn, staff: str) -> None:
    alice = cairn.token("rt-carol")
    with ws(cairn, staff) as sock:
        assert ask(sock, "this is not json")["code"] == "bad-message"
        assert ask(sock, json.dumps({"action": "dance"}))["code"] == "unknown-action"
        # still open: staff follows carol's order and sees it ship
        _, _, created = cairn.request("POST", "/orders", ORDER, alice)
        order_id = created["order_id"]
        assert created["pending"] == []
        cairn.wait_idle()
        answer = ask(sock, json.dumps({"action": "subscribe", "stream_id": order_id}))
        assert answer == {"type": "subscribed", "stream_id": order_id, "version": 1}
        status, _, _ = cairn.request("POST", f"/orders/{order_id}/payment",
                                     {"payment_id": "pay-rt-1", "amount": "9.99"}, staff)
        assert status == 200
        pushed = next_message(sock)
        assert (pushed["order_id"], pushed["version"], pushed["status"]) == (order_id, 2, "PAID")


def test_account_updates_reach_the_owner(cairn: Cairn) -> None:
    dave = cairn.token("rt-dave")
    with ws(cairn, dave) as sock:
        status, _, opened = cairn.request("POST", "/accounts", {"currency": "USD"}, dave)
        assert status == 201, opened
        account_id = opened["account_id"]
        status, _, deposited = cairn.request("POST", f"/accounts/{account_id}/deposits", {"amount": "12.50"}, dave)
        assert status == 200, deposited
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["version"] < 2:
            message = next_message(sock)
            assert message["type"] == "account.updated" and message["account_id"] == account_id, message
            seen.append(message)
        assert seen[-1]["balance"] == "12.50"
        assert [m["version"] for m in seen] == sorted({m["version"] for m in seen})
