"""The event-driven flow over the local runtime (``make dev``): real HTTP, real template wiring.

An order with ``tok_visa`` becomes PAID by itself, with the causation chain in its audit trail;
``tok_declined`` ends PAYMENT_FAILED with its stock released; notifications arrive exactly once,
also with the runtime's stream chaos (shuffled shards, duplicated deliveries) switched on.

Runs against ``$CAIRN_E2E_OUTPUTS`` (the outputs.json of a running ``make dev``) when set, else
starts the local runtime for this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FLOW_TIMEOUT = 60.0


class Local:
    def __init__(self, outputs: dict[str, str]):
        self.outputs = outputs
        self.api = outputs["ApiUrl"].rstrip("/")

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")

    def token(self, sub: str, groups: list[str] | None = None) -> str:
        status, _, body = self.request("POST", "/_local/token", {"sub": sub, "groups": groups or []})
        assert status == 200, body
        return body["token"]

    def aws(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.outputs["AwsEndpointUrl"],
            region_name=self.outputs.get("Region", "us-east-1"),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(account_id_endpoint_mode="disabled"),
        )


def wait_for(what: str, probe: Callable[[], Any], timeout: float = FLOW_TIMEOUT) -> Any:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[Local]:
    running = os.environ.get("CAIRN_E2E_OUTPUTS")
    if running:
        outputs = json.loads(Path(running).read_text())
        yield Local(next(iter(outputs.values())))
        return
    state = tmp_path_factory.mktemp("eda-local")
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--state-dir", str(state), "--cdk-out", str(state / "cdk.out"),
         "--quiet", "--no-access-log"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=open(state / "runtime.log", "w"),  # noqa: SIM115 (closed with the process)
        env={**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"},
        start_new_session=True,
    )
    try:
        outputs_file = state / "outputs.json"

        def ready():
            if process.poll() is not None:
                raise AssertionError(f"local runtime exited: {(state / 'runtime.log').read_text()[-3000:]}")
            if not outputs_file.exists():
                return None
            local = Local(next(iter(json.loads(outputs_file.read_text()).values())))
            try:
                return local if local.request("GET", "/health")[0] == 200 else None
            except OSError:
                return None

        yield wait_for("the local runtime", ready, timeout=600)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# -- helpers ------------------------------------------------------------------------------------
def place_order(local: Local, token: str, token_name: str | None, sku: str, quantity: int = 2) -> tuple[str, str]:
    correlation = f"e2e-{uuid.uuid4()}"
    body: dict[str, Any] = {"items": [{"sku": sku, "quantity": quantity, "unit_price": "9.99"}], "currency": "USD"}
    if token_name:
        body["payment_token"] = token_name
    status, headers, answer = local.request("POST", "/orders", body, token, {"X-Correlation-Id": correlation})
    assert status == 201, answer
    assert answer["status"] == "CREATED"  # answered before any payment happened
    return answer["order_id"], correlation


def order_status(local: Local, token: str, order_id: str) -> str:
    status, _, body = local.request("GET", f"/orders/{order_id}", token=token)
    assert status == 200, body
    return body["status"]


def audit_trail(local: Local, token: str, order_id: str) -> list[dict[str, Any]]:
    status, _, body = local.request("GET", f"/orders/{order_id}/events", token=token)
    assert status == 200, body
    return body["events"]


def stream(local: Local, stream_id: str) -> list[dict[str, Any]]:
    """A stream straight from the events table (the payment service's streams have no HTTP API)."""
    ddb = local.aws("dynamodb")
    items = ddb.query(
        TableName=local.outputs["EventsTableName"],
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream_id}},
        ConsistentRead=True,
    )["Items"]
    return [
        {"event_id": i["event_id"]["S"], "type": i["type"]["S"], "metadata": json.loads(i["metadata"]["S"])}
        for i in items
    ]


def reserved(local: Local, staff: str, sku: str) -> int:
    status, _, body = local.request("GET", f"/inventory/{sku}", token=staff)
    assert status == 200, body
    return body["reserved"]


def notifications_of(local: Local, token: str, order_id: str) -> list[str]:
    status, _, body = local.request("GET", "/users/me/notifications?limit=100", token=token)
    assert status == 200, body
    return sorted(n["kind"] for n in body["notifications"] if n["order_id"] == order_id)


# -- the flow -----------------------------------------------------------------------------------
def test_tok_visa_becomes_paid_by_itself_with_the_causation_chain(local):
    from integration import integration_event_id

    from payments.domain import payment_id_for, stream_id_for

    user = f"e2e-{uuid.uuid4().hex[:8]}"
    customer, staff = local.token(user), local.token("e2e-staff", ["staff"])
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    order_id, correlation = place_order(local, customer, "tok_visa", sku)

    wait_for("PAID", lambda: order_status(local, customer, order_id) == "PAID")
    events = audit_trail(local, customer, order_id)
    assert [e["type"] for e in events] == ["OrderCreated", "PaymentProcessed"]
    created, paid = events
    assert created["metadata"]["correlation_id"] == correlation
    assert paid["metadata"]["correlation_id"] == correlation
    assert paid["metadata"]["actor"] == "payments"

    payment = {e["event_id"]: e for e in stream(local, stream_id_for(payment_id_for(order_id)))}
    succeeded = payment[paid["metadata"]["causation_id"]]
    assert succeeded["type"] == "PaymentSucceeded"
    requested = payment[succeeded["metadata"]["causation_id"]]
    assert requested["type"] == "PaymentRequested"
    assert requested["metadata"]["causation_id"] == integration_event_id(created["event_id"], "OrderCreated", 1)
    assert {e["metadata"]["correlation_id"] for e in payment.values()} == {correlation}

    wait_for("the reservation", lambda: reserved(local, staff, sku) == 2)
    wait_for(
        "two notifications",
        lambda: notifications_of(local, customer, order_id) == ["order_created", "payment_processed"],
    )


def test_tok_declined_fails_payment_and_releases_stock(local):
    user = f"e2e-{uuid.uuid4().hex[:8]}"
    customer, staff = local.token(user), local.token("e2e-staff", ["staff"])
    sku = f"E2E-{uuid.uuid4().hex[:8]}"
    keep, _ = place_order(local, customer, None, sku, quantity=3)  # an open order holding stock
    wait_for("the first reservation", lambda: reserved(local, staff, sku) == 3)
    order_id, _ = place_order(local, customer, "tok_declined", sku, quantity=5)

    wait_for("PAYMENT_FAILED", lambda: order_status(local, customer, order_id) == "PAYMENT_FAILED")
    events = audit_trail(local, customer, order_id)
    assert [e["type"] for e in events] == ["OrderCreated", "PaymentFailed"]
    assert events[1]["data"]["reason"] == "card_declined"
    # reserved on OrderCreated, released on PaymentFailed: only the open order holds stock
    wait_for("the release", lambda: local.request("GET", f"/inventory/{sku}", token=staff)[2]["version"] == 3)
    assert reserved(local, staff, sku) == 3
    assert order_status(local, customer, keep) == "CREATED"  # no token: it waits for staff
    wait_for("the order_created notification", lambda: notifications_of(local, customer, order_id) == ["order_created"])
    time.sleep(2)
    assert notifications_of(local, customer, order_id) == ["order_created"]  # no payment notification


def test_notifications_exactly_once_under_duplicated_and_shuffled_delivery(local):
    status, _, before = local.request("POST", "/_local/chaos", {"shuffle": True, "duplicate": 0.6, "seed": 7})
    assert status == 200, before
    try:
        user = f"e2e-{uuid.uuid4().hex[:8]}"
        customer, staff = local.token(user), local.token("e2e-staff", ["staff"])
        order_id, _ = place_order(local, customer, "tok_visa", f"E2E-{uuid.uuid4().hex[:8]}")
        wait_for("PAID", lambda: order_status(local, customer, order_id) == "PAID")
        status, _, body = local.request("POST", f"/orders/{order_id}/shipment", {"tracking": "1Z999"}, staff)
        assert status == 200, body
        status, _, body = local.request("POST", f"/orders/{order_id}/delivery", {}, staff)
        assert status == 200, body
        expected = ["order_created", "order_delivered", "order_shipped", "payment_processed"]
        wait_for("four notifications", lambda: notifications_of(local, customer, order_id) == expected)
        time.sleep(3)  # let late duplicates arrive
        assert notifications_of(local, customer, order_id) == expected
        assert [e["type"] for e in audit_trail(local, customer, order_id)] == [
            "OrderCreated",
            "PaymentProcessed",
            "OrderShipped",
            "OrderDelivered",
        ]
        _, _, chaos = local.request("GET", "/_local/chaos")
        assert chaos["duplicates_sent"] > 0  # the chaos really re-delivered stream records
    finally:
        local.request("POST", "/_local/chaos", {"shuffle": False, "duplicate": 0.0})
