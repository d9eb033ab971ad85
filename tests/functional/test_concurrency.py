"""Concurrent commands on one account through the real handler, from several processes.

Each worker process is a separate "Lambda container" (its own import, resolver, warm state
cache and boto3 client) firing deposits and withdrawals at one account at the same moment. They
share a moto server whose DynamoDB requests are serialized by a lock: moto itself is not atomic
under concurrent requests (tests/unit/test_store_moto_atomicity.py proves it), and the lock gives
exactly DynamoDB's per-request atomicity, nothing more — the handlers still race between their
read and their conditional write.

Checked: the balance never went below zero (every acknowledged withdrawal was covered), no
acknowledged deposit is missing, nothing unacknowledged was stored, versions are contiguous,
and the writers really did collide (conflicts were retried).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import ENV, Api, reset_runtimes

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
OPS_PER_WORKER = 30

WORKER = r"""
import json, sys, time
from tests.functional.conftest import Api, metric_values
import io, contextlib
from accounts.api import handler

account_id, start_at, ops = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
api = Api(handler)
results = []
buffer = io.StringIO()
while time.time() < start_at:
    time.sleep(0.001)
with contextlib.redirect_stdout(buffer):
    for i in range(ops):
        kind, amount = ("withdrawals", "7.00") if i % 2 == 0 else ("deposits", "3.00")
        reply = api.post(f"/accounts/{account_id}/{kind}", {"amount": amount}, user="alice")
        body = reply.json
        results.append({"kind": kind, "amount": amount, "status": reply.status,
                        "type": body.get("type"), "version": body.get("version")})
retries = sum(metric_values(buffer.getvalue(), "ConflictsRetried"))
print(json.dumps({"results": results, "retries": retries}))
"""


class _Serialized:
    """WSGI middleware: one lock around each DynamoDB request (DynamoDB's atomicity, no more)."""

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, _Serialized(DomainDispatcherApplication(create_backend_app)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    reset_runtimes()
    try:
        yield endpoint
    finally:
        reset_runtimes()
        server.shutdown()
        thread.join(5)


def test_concurrent_withdrawals_and_deposits_on_one_account(moto_endpoint: str):
    from accounts.api import handler
    from accounts.app import runtime
    from cairn.aws import client
    from cairn.store.dynamodb import create_tables

    create_tables(client("dynamodb"), ENV["EVENTS_TABLE"], ENV["IDEMPOTENCY_TABLE"])
    client("s3").create_bucket(Bucket=ENV["SNAPSHOT_BUCKET"])
    client("dynamodb").create_table(
        TableName=ENV["ACCOUNT_VIEW_TABLE"],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    api = Api(handler)
    account_id = api.post("/accounts", {"currency": "USD"}).json["account_id"]
    initial = api.post(f"/accounts/{account_id}/deposits", {"amount": "50.00"})
    assert initial.status == 200

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/cairn/python"), str(ROOT / "functions"), str(ROOT)]),
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    start_at = time.time() + 4.0  # every worker imports first, then all fire together
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, account_id, str(start_at), str(OPS_PER_WORKER)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))

    results = [r for o in outputs for r in o["results"]]
    assert len(results) == WORKERS * OPS_PER_WORKER
    statuses = {(r["kind"], r["status"], r["type"]) for r in results}
    allowed = {
        ("deposits", 200, None),
        ("withdrawals", 200, None),
        ("withdrawals", 409, "https://cairn.dev/problems/insufficient-funds"),
        # a writer losing every retry answers 503 and stores nothing (counted below)
        ("deposits", 503, "https://cairn.dev/problems/service-unavailable"),
        ("withdrawals", 503, "https://cairn.dev/problems/service-unavailable"),
    }
    assert statuses <= allowed, statuses - allowed
    ok_deposits = sum(1 for r in results if r["kind"] == "deposits" and r["status"] == 200)
    ok_withdrawals = sum(1 for r in results if r["kind"] == "withdrawals" and r["status"] == 200)
    assert ok_deposits > 0 and ok_withdrawals > 0

    events = list(runtime().store.read(account_id))
    assert [e.version for e in events] == list(range(1, len(events) + 1))  # contiguous, no overwrite
    deposits = [e for e in events if e.type == "MoneyDeposited"]
    withdrawals = [e for e in events if e.type == "MoneyWithdrawn"]
    assert len(deposits) == ok_deposits + 1  # every acknowledged deposit, nothing else
    assert len(withdrawals) == ok_withdrawals
    acknowledged_versions = sorted(r["version"] for r in results if r["status"] == 200)
    assert acknowledged_versions == [e.version for e in events if e.version > 2]  # one answer per event

    balance = Decimal("0")
    for event in events:  # replay: the balance must never have been negative at any point
        if event.type == "MoneyDeposited":
            balance += event.data.amount
        elif event.type == "MoneyWithdrawn":
            balance -= event.data.amount
        assert balance >= 0
    assert balance == Decimal("50.00") + 3 * ok_deposits - 7 * ok_withdrawals
    from accounts.queries import handler as queries

    final = Api(queries).get(f"/accounts/{account_id}", query={"min_version": len(events)})
    assert final.status == 200 and final.json["balance"] == f"{balance:.2f}"
    assert sum(o["retries"] for o in outputs) > 0  # the writers really raced
    print(f"{ok_deposits} deposits, {ok_withdrawals} withdrawals acknowledged; "
          f"{sum(o['retries'] for o in outputs)} conflicts retried; final balance {balance}")
