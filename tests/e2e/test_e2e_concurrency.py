"""Concurrent HTTP commands on one stream: nothing lost, nothing duplicated (real runtime, real moto)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e


def test_concurrent_deposits_lose_nothing(cairn):
    owner = cairn.token(f"erin-{uuid.uuid4().hex[:6]}")
    status, _, body = cairn.request("POST", "/accounts", {"currency": "USD"}, owner)
    account = body["account_id"]
    n = 24

    def deposit(i: int):
        # a client as API.md asks: a 503 (writers kept winning the race) is retried after Retry-After
        # with the same Idempotency-Key, so a retry can never deposit twice
        key = {"Idempotency-Key": f"dep-{i}-{uuid.uuid4()}"}
        for _ in range(10):
            status, headers, body = cairn.request(
                "POST", f"/accounts/{account}/deposits", {"amount": "1.25"}, owner, key)
            if status != 503:
                break
            time.sleep(min(float(headers.get("Retry-After") or 1), 2.0))
        return status, headers, body

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(deposit, range(n)))
    assert [r[0] for r in results] == [200] * n, [r[2] for r in results if r[0] != 200]
    versions = sorted(r[2]["version"] for r in results)
    assert versions == list(range(2, n + 2))  # every deposit got its own version
    events = cairn.request("GET", f"/accounts/{account}/events?limit=1000", token=owner)[2]["events"]
    assert [e["version"] for e in events] == list(range(1, n + 2))
    assert len({e["event_id"] for e in events}) == n + 1
    status, _, view = cairn.request("GET", f"/accounts/{account}?min_version={n + 1}", token=owner)
    assert Decimal(view["balance"]) == Decimal("1.25") * n
    cairn.wait_idle()
    status, _, view = cairn.request("GET", f"/accounts/{account}", token=owner)
    assert (view["balance"], view["version"]) == (str(Decimal("1.25") * n), n + 1)


def test_concurrent_repeats_of_one_idempotent_command_append_once(cairn):
    owner = cairn.token(f"frank-{uuid.uuid4().hex[:6]}")
    account = cairn.request("POST", "/accounts", {"currency": "USD"}, owner)[2]["account_id"]
    key = f"k-{uuid.uuid4()}"
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(
            lambda _: cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "7.00"}, owner,
                                    {"Idempotency-Key": key}), range(6)))
    ok = [r for r in results if r[0] == 200]
    assert ok and all(r[2] == ok[0][2] for r in ok)
    assert all(r[0] in (200, 409) for r in results)  # a repeat racing the first may be told it is in flight
    events = cairn.request("GET", f"/accounts/{account}/events", token=owner)[2]["events"]
    assert [e["type"] for e in events] == ["AccountOpened", "MoneyDeposited"]
