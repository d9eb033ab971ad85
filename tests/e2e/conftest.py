"""The local runtime for the e2e suite: ``python -m local`` in a subprocess, driven over real HTTP.

One runtime per session (start-up is a few seconds; the first ever synth ~20 s). Set
``CAIRN_E2E_OUTPUTS=.local/outputs.json`` to run the suite against an already running
``make dev`` instead.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 600.0  # a first synth on a cold machine
E2E_PAYMENT_TIMEOUT = 15  # seconds; the deployed default is 900
E2E_KEY_CACHE_SECONDS = 5  # the deployed default is 60


def _parse(payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


class Cairn:
    """A client of one running local runtime."""

    def __init__(self, outputs: dict[str, Any], state_dir: Path | None = None):
        self.outputs = outputs
        self.api = outputs["ApiUrl"].rstrip("/")
        self.state_dir = state_dir

    seed_catalog = True  # POST /orders lists its lines' SKUs at the prices it sends (see list_products)

    def list_products(self, body: Any) -> None:
        """Put an order body's SKUs in the catalog at the prices it sends (``PUT /catalog``, as
        staff) and wait until the catalog's read model — what ``POST /orders`` prices from — has
        them. Tests written before the catalog send their own prices; the server still decides."""
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return
        from local.seed import DEMO_PRODUCTS

        listed = self.__dict__.setdefault("_listed", {})
        staff = self.__dict__.get("_catalog_token") or self.token("e2e-catalog", ["staff"])
        self.__dict__["_catalog_token"] = staff
        wanted = {}
        for line in body["items"]:
            if isinstance(line, dict) and isinstance(line.get("unit_price"), str) and isinstance(line.get("sku"), str):
                entry = (line["unit_price"], body.get("currency") or "USD")
                if listed.get(line["sku"]) != entry and line["sku"] not in DEMO_PRODUCTS:  # never re-price the demo
                    wanted[line["sku"]] = entry
        for sku, (price, currency) in wanted.items():
            status, _, answer = self.request("PUT", f"/catalog/{sku}", {"name": sku, "unit_price": price,
                                                                         "currency": currency}, token=staff)
            if status != 200:
                continue  # a SKU the catalog refuses: the order is refused too (what the test checks)

            def shown(sku: str = sku, version: int = answer["version"]) -> bool:
                code, hdrs, got = self.request("GET", f"/catalog/{sku}", token=staff)
                return code == 200 and hdrs.get("X-Cairn-Source") == "read-model" and got["version"] >= version

            wait_for(f"{sku} in the catalog read model", shown)
            listed[sku] = (price, currency)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any, Any]:
        if self.seed_catalog and method == "POST" and path == "/orders" and raw is None:
            self.list_products(body)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.api + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.headers, _parse(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, _parse(exc.read())

    def token(self, sub: str, groups: list[str] | None = None) -> str:
        status, _, body = self.request("POST", "/_local/token", {"sub": sub, "groups": groups or []})
        assert status == 200, body
        return body["token"]

    def aws(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, endpoint_url=self.outputs["AwsEndpointUrl"], region_name=self.outputs.get("Region", "us-east-1"),
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(account_id_endpoint_mode="disabled"),
        )

    def status(self) -> dict[str, Any]:
        code, _, body = self.request("GET", "/_local/status")
        assert code == 200, body
        return body

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until every stream/queue mapping has delivered all it has (twice in a row)."""
        deadline = time.time() + timeout
        calm = 0
        while time.time() < deadline:
            calm = calm + 1 if self.status()["idle"] else 0
            if calm >= 2:
                return
            time.sleep(0.2)
        raise AssertionError(f"the local runtime did not become idle: {self.status()['mappings']}")

    def chaos(self, **settings: Any) -> dict[str, Any]:
        code, _, body = self.request("POST", "/_local/chaos", settings)
        assert code == 200, body
        return body


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def cairn(tmp_path_factory) -> Iterator[Cairn]:
    running = os.environ.get("CAIRN_E2E_OUTPUTS")
    if running:
        outputs = json.loads(Path(running).read_text())
        yield Cairn(next(iter(outputs.values())))
        return
    state = tmp_path_factory.mktemp("cairn-local")
    log = open(state / "runtime.log", "w")  # noqa: SIM115 - closed after the process
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--state-dir", str(state), "--quiet", "--no-access-log"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "PYTHONDONTWRITEBYTECODE": "1",
             # payment timeouts short enough to test (test_e2e_processes), swept every 2 s (only that
             # schedule: the archiver, digest and snapshot schedules keep their own period)
             # and the personal-data key cache (how long an erasure takes to reach a warm instance)
             # bounded at 5 s instead of 60 (test_e2e_privacy waits for it)
             "CAIRN_LOCAL_ENV": f"PAYMENT_TIMEOUT_SECONDS={E2E_PAYMENT_TIMEOUT},"
                                f"PERSONAL_DATA_KEY_CACHE_SECONDS={E2E_KEY_CACHE_SECONDS}",
             "CAIRN_LOCAL_SCHEDULE_SECONDS": "2:PaymentTimeouts"},
        start_new_session=True,
    )
    outputs_file = state / "outputs.json"

    def ready() -> Cairn | None:
        if process.poll() is not None:
            raise AssertionError(f"local runtime exited:\n{(state / 'runtime.log').read_text()[-4000:]}")
        if not outputs_file.exists():
            return None
        c = Cairn(next(iter(json.loads(outputs_file.read_text()).values())), state)
        try:
            return c if c.request("GET", "/health")[0] == 200 else None
        except OSError:
            return None

    try:
        yield wait_for("the local runtime's /health", ready, timeout=START_TIMEOUT, interval=0.25)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def staff(cairn: Cairn) -> str:
    return cairn.token("e2e-staff", ["staff"])
