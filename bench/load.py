"""Load against the local runtime (``make dev``): many concurrent HTTP clients, real routes.

Three workloads, each bounded in clients, commands and seconds, loopback only:

- ``one_account``: clients race deposits and withdrawals on ONE account. Checked: no response
  shows a negative balance and neither does any prefix of the event history; versions are
  contiguous from 1; acknowledged == recorded (the ``X-Correlation-Id`` of every 200 is on
  exactly one event, and every event's correlation id belongs to a 200); the read model ends
  at the fold of the events.
- ``one_order``: staff clients race payment / shipment / delivery / cancellation on ONE order
  until it is final, then on a new one. Checked: the history is a valid path of the status
  machine, versions contiguous, acknowledged == recorded, losers got 409.
- ``many_streams``: each client works on its own accounts and orders (no contention):
  throughput (acknowledged commands/s) and p50/p99 latency of commands as the client sees it
  (HTTP front -> command Lambda's execution environment -> moto, all on this machine); the
  same mix with one client (``load_one_client_*``) gives the service time without queueing.

A violated invariant raises (``InvariantError``): a fast wrong answer is not a result.
Runs its own runtime (``python -m local --port 0`` in a temp state dir) unless
``CAIRN_E2E_OUTPUTS`` points at a running one's outputs.json.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 600.0  # a first synth on a cold machine

GOALS = {
    "load_one_account_lost": "0",
    "load_one_order_lost": "0",
}


class InvariantError(AssertionError):
    """The system under load broke one of its guarantees."""


# -- runtime -------------------------------------------------------------------------------------
@contextlib.contextmanager
def local_runtime() -> Iterator[str]:
    """Base URL of a running local runtime: ``CAIRN_E2E_OUTPUTS`` or a fresh ``python -m local``."""
    running = os.environ.get("CAIRN_E2E_OUTPUTS")
    if running:
        outputs = json.loads(Path(running).read_text())
        yield next(iter(outputs.values()))["ApiUrl"].rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="cairn-load-") as tmp:
        state = Path(tmp)
        log_path = state / "runtime.log"
        with open(log_path, "w") as log:
            env = {**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "PYTHONDONTWRITEBYTECODE": "1"}
            env.pop("AWS_ENDPOINT_URL", None)
            process = subprocess.Popen(
                [sys.executable, "-m", "local", "--port", "0", "--state-dir", str(state), "--quiet", "--no-access-log"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            try:
                yield _wait_ready(process, state, log_path)
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


def _wait_ready(process: subprocess.Popen, state: Path, log_path: Path) -> str:
    outputs = state / "outputs.json"
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local runtime exited:\n{log_path.read_text()[-4000:]}")
        if outputs.exists():
            try:
                base = next(iter(json.loads(outputs.read_text()).values()))["ApiUrl"].rstrip("/")
                if call(base, "GET", "/health").status == 200:
                    return base
            except (OSError, ValueError):
                pass
        time.sleep(0.25)
    raise RuntimeError(f"local runtime not ready after {START_TIMEOUT:.0f} s:\n{log_path.read_text()[-4000:]}")


# -- HTTP ----------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    body: Any
    seconds: float
    correlation_id: str


def call(
    base: str, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 60.0
) -> Reply:
    """One request on a fresh connection (never retried: a repeated POST would be a new command)."""
    url = urlsplit(base)
    correlation_id = str(uuid.uuid4())
    headers = {"X-Correlation-Id": correlation_id, "Connection": "close"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, seconds, correlation_id)


def token(base: str, sub: str, groups: list[str] | None = None) -> str:
    reply = call(base, "POST", "/_local/token", {"sub": sub, "groups": groups or []})
    if reply.status != 200:
        raise RuntimeError(f"no token: {reply.status} {reply.body}")
    return reply.body["token"]


def all_events(base: str, kind: str, stream_id: str, auth: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        reply = call(base, "GET", f"/{kind}/{stream_id}/events?after={after}&limit=1000", token=auth)
        if reply.status != 200:
            raise InvariantError(f"reading events of {stream_id}: {reply.status} {reply.body}")
        events.extend(reply.body["events"])
        after = reply.body.get("next_after")
        if after is None:
            return events


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


# -- the driver ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str
    stream_id: str
    reply: Reply
    detail: dict[str, Any] = field(default_factory=dict)


def drive(clients: int, seconds: float, max_commands: int, step: Callable[[int, random.Random], Outcome | None]) -> tuple[list[Outcome], float]:
    """``clients`` threads call ``step(client, rng)`` until the time or command budget is spent.
    ``step`` returning None means that client is done. Returns outcomes and elapsed seconds."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(clients)
    deadline = [0.0]

    def worker(n: int) -> None:
        rng = random.Random(n * 7919 + 17)
        try:
            start.wait()
            while time.perf_counter() < deadline[0]:
                with lock:
                    if len(outcomes) >= max_commands:
                        return
                outcome = step(n, rng)
                if outcome is None:
                    return
                with lock:
                    outcomes.append(outcome)
        except BaseException as exc:  # surfaced after the join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), name=f"load-{n}") for n in range(clients)]
    began = time.perf_counter()
    deadline[0] = began + seconds
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return outcomes, elapsed


def _latency_figures(prefix: str, outcomes: list[Outcome], elapsed: float) -> dict[str, float]:
    ok = [o for o in outcomes if o.reply.status in (200, 201)]
    latencies = [o.reply.seconds * 1000 for o in outcomes]
    return {
        f"{prefix}_requests": len(outcomes),
        f"{prefix}_acknowledged": len(ok),
        f"{prefix}_commands_per_s": len(ok) / elapsed if elapsed else 0.0,
        f"{prefix}_p50_ms": percentile(latencies, 50) if latencies else 0.0,
        f"{prefix}_p99_ms": percentile(latencies, 99) if latencies else 0.0,
    }


def _unexpected(outcomes: list[Outcome], allowed: set[int]) -> None:
    bad = [(o.kind, o.reply.status, o.reply.body) for o in outcomes if o.reply.status not in allowed]
    if bad:
        raise InvariantError(f"{len(bad)} unexpected responses, e.g. {bad[:3]}")


def _acknowledged_equals_recorded(
    stream_id: str, outcomes: list[Outcome], events: list[dict[str, Any]], first: Reply
) -> tuple[int, int]:
    """Every 2xx's correlation id is on exactly one event, every event's on a 2xx: (lost, unknown).

    ``unknown``: events of commands answered 5xx (outcome unknown to the client, e.g. a timeout
    after the write); allowed and counted. An event of a command answered 4xx is a violation.
    """
    versions = [e["version"] for e in events]
    if versions != list(range(1, len(events) + 1)):
        raise InvariantError(f"{stream_id}: versions not contiguous: {versions[:20]}")
    by_cid = {o.reply.correlation_id: o for o in outcomes}
    by_cid[first.correlation_id] = Outcome("create", stream_id, first)
    acked = {cid: o for cid, o in by_cid.items() if o.reply.status in (200, 201)}
    recorded: dict[str, dict[str, Any]] = {}
    for event in events:
        cid = event["metadata"]["correlation_id"]
        if cid in recorded:
            raise InvariantError(f"{stream_id}: command {cid} recorded twice (versions {recorded[cid]['version']}, {event['version']})")
        recorded[cid] = event
    lost = [cid for cid in acked if cid not in recorded]
    unknown = [cid for cid in recorded if cid not in acked and cid in by_cid and by_cid[cid].reply.status >= 500]
    phantom = [cid for cid in recorded if cid not in acked and cid not in unknown]
    for cid, outcome in acked.items():
        event = recorded.get(cid)
        body = outcome.reply.body
        if event is not None and isinstance(body, dict) and body.get("version") != event["version"]:
            raise InvariantError(f"{stream_id}: acknowledged version {body.get('version')} != recorded {event['version']}")
    if lost or phantom:
        raise InvariantError(
            f"{stream_id}: {len(lost)} acknowledged but not recorded, {len(phantom)} recorded but refused or never sent"
        )
    return len(lost), len(unknown)


# -- one account -------------------------------------------------------------------------------------
def one_account(base: str, clients: int = 8, seconds: float = 10.0, max_commands: int = 400) -> dict[str, float]:
    owner = token(base, f"load-{uuid.uuid4().hex[:8]}")
    opened = call(base, "POST", "/accounts", {"currency": "USD"}, owner)
    if opened.status != 201:
        raise InvariantError(f"open account: {opened.status} {opened.body}")
    account = opened.body["account_id"]

    def step(_n: int, rng: random.Random) -> Outcome:
        if rng.random() < 0.5:
            amount = Decimal(rng.randint(100, 2000)) / 100
            reply = call(base, "POST", f"/accounts/{account}/deposits", {"amount": str(amount)}, owner)
            return Outcome("deposit", account, reply, {"amount": amount})
        amount = Decimal(rng.randint(100, 3000)) / 100
        reply = call(base, "POST", f"/accounts/{account}/withdrawals", {"amount": str(amount)}, owner)
        return Outcome("withdraw", account, reply, {"amount": amount})

    outcomes, elapsed = drive(clients, seconds, max_commands, step)
    _unexpected(outcomes, {200, 409, 503})
    for o in outcomes:
        if o.reply.status == 409 and "insufficient-funds" not in str(o.reply.body.get("type")):
            raise InvariantError(f"409 that is not insufficient funds: {o.reply.body}")
        if o.reply.status == 200 and Decimal(o.reply.body["balance"]) < 0:
            raise InvariantError(f"negative balance acknowledged: {o.reply.body}")
    events = all_events(base, "accounts", account, owner)
    lost, unknown = _acknowledged_equals_recorded(account, outcomes, events, opened)
    balance = Decimal("0.00")
    for event in events[1:]:
        amount = Decimal(event["data"]["amount"])
        balance += amount if event["type"] == "MoneyDeposited" else -amount
        if balance < 0:
            raise InvariantError(f"balance below zero at version {event['version']}")
    view = call(base, "GET", f"/accounts/{account}?min_version={len(events)}", token=owner)
    if view.status != 200 or Decimal(view.body["balance"]) != balance or view.body["version"] != len(events):
        raise InvariantError(f"account view {view.body} != fold ({balance}, v{len(events)})")
    results = _latency_figures("load_one_account", outcomes, elapsed)
    results.update(
        {
            "load_one_account_clients": clients,
            "load_one_account_recorded": len(events) - 1,
            "load_one_account_lost": lost,
            "load_one_account_unknown_outcome_recorded": unknown,
            "load_one_account_insufficient_funds": sum(1 for o in outcomes if o.reply.status == 409),
            "load_one_account_unavailable": sum(1 for o in outcomes if o.reply.status == 503),
        }
    )
    return results


# -- one order ----------------------------------------------------------------------------------------
VALID_PATHS = {
    ("OrderCreated",),
    ("OrderCreated", "OrderCancelled"),
    ("OrderCreated", "PaymentProcessed"),
    ("OrderCreated", "PaymentProcessed", "OrderCancelled"),
    ("OrderCreated", "PaymentProcessed", "OrderShipped"),
    ("OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"),
}
FINAL = {"DELIVERED", "CANCELLED"}


# The products the load orders (POST /orders prices every line from the catalog, issue 15).
LOAD_PRODUCTS: dict[str, tuple[str, str, str]] = {"LOAD-1": ("Load item", "12.50", "USD")} | {
    f"LOAD-SKU-{n}": (f"Load sku {n}", "5.00", "USD") for n in range(1, 11)
}


def list_load_products(base: str) -> None:
    """Put the load's products in the catalog (as staff, idempotent) and wait until orders price them."""
    from local.seed import seed_catalog

    seed_catalog(base, token(base, "load-shop-owner", ["staff"]), LOAD_PRODUCTS)


def one_order(base: str, clients: int = 8, seconds: float = 10.0, max_commands: int = 400) -> dict[str, float]:
    list_load_products(base)
    staff = token(base, f"load-staff-{uuid.uuid4().hex[:8]}", ["staff"])
    lock = threading.Lock()
    orders: list[tuple[str, Reply]] = []
    current: dict[str, Any] = {"order": None, "final": True}

    def new_order() -> str:
        reply = call(
            base, "POST", "/orders", {"items": [{"sku": "LOAD-1", "quantity": 2, "unit_price": "12.50"}], "currency": "USD"}, staff
        )
        if reply.status != 201:
            raise InvariantError(f"create order: {reply.status} {reply.body}")
        orders.append((reply.body["order_id"], reply))
        return reply.body["order_id"]

    def step(_n: int, rng: random.Random) -> Outcome:
        with lock:  # one order at a time: all clients race on it until it is final
            if current["final"]:
                current["order"], current["final"] = new_order(), False
            order = current["order"]
        kind = rng.choices(["payment", "shipment", "delivery", "cancellation"], weights=[4, 3, 3, 1])[0]
        body: dict[str, Any] = {
            "payment": {"payment_id": f"pay-{uuid.uuid4().hex[:12]}", "amount": "25.00"},
            "shipment": {"tracking": f"TRK{rng.randint(1000, 9999)}"},
            "delivery": {},
            "cancellation": {"reason": "load test"},
        }[kind]
        reply = call(base, "POST", f"/orders/{order}/{kind}", body, staff)
        if reply.status == 200 and reply.body.get("status") in FINAL:
            with lock:
                if current["order"] == order:
                    current["final"] = True
        return Outcome(kind, order, reply)

    outcomes, elapsed = drive(clients, seconds, max_commands, step)
    _unexpected(outcomes, {200, 409, 503})
    recorded = lost = 0
    for order, created in orders:
        mine = [o for o in outcomes if o.stream_id == order]
        for o in mine:
            if o.reply.status == 409 and "invalid-transition" not in str(o.reply.body.get("type")):
                raise InvariantError(f"409 that is not an invalid transition: {o.reply.body}")
        events = all_events(base, "orders", order, staff)
        path = tuple(e["type"] for e in events)
        if path not in VALID_PATHS:
            raise InvariantError(f"{order}: impossible history {path}")
        missing, _ = _acknowledged_equals_recorded(order, mine, events, created)
        lost += missing
        recorded += len(events) - 1
    results = _latency_figures("load_one_order", outcomes, elapsed)
    results.update(
        {
            "load_one_order_clients": clients,
            "load_one_order_orders": len(orders),
            "load_one_order_recorded": recorded,
            "load_one_order_lost": lost,
            "load_one_order_conflicts": sum(1 for o in outcomes if o.reply.status == 409),
        }
    )
    return results


# -- many streams ------------------------------------------------------------------------------------
def many_streams(
    base: str, clients: int = 8, seconds: float = 15.0, max_commands: int = 2000, prefix: str = "load_many_streams"
) -> dict[str, float]:
    """Each client: its own user, 3 accounts (deposits) and new orders; 3 deposits per order."""
    list_load_products(base)
    users = [token(base, f"load-user-{n}-{uuid.uuid4().hex[:6]}") for n in range(clients)]
    accounts: list[list[str]] = []
    for user in users:
        mine = []
        for _ in range(3):
            reply = call(base, "POST", "/accounts", {"currency": "USD"}, user)
            if reply.status != 201:
                raise InvariantError(f"open account: {reply.status} {reply.body}")
            mine.append(reply.body["account_id"])
        accounts.append(mine)

    def step(n: int, rng: random.Random) -> Outcome:
        if rng.random() < 0.25:
            body = {"items": [{"sku": f"LOAD-SKU-{rng.randint(1, 10)}", "quantity": 1, "unit_price": "5.00"}], "currency": "USD"}
            reply = call(base, "POST", "/orders", body, users[n])
            return Outcome("order", reply.body.get("order_id", "") if isinstance(reply.body, dict) else "", reply)
        account = rng.choice(accounts[n])
        reply = call(base, "POST", f"/accounts/{account}/deposits", {"amount": "1.00"}, users[n])
        return Outcome("deposit", account, reply)

    outcomes, elapsed = drive(clients, seconds, max_commands, step)
    _unexpected(outcomes, {200, 201})
    for n, mine in enumerate(accounts):
        for account in mine:
            acked = sum(1 for o in outcomes if o.stream_id == account and o.reply.status == 200)
            events = all_events(base, "accounts", account, users[n])
            if len(events) - 1 != acked:
                raise InvariantError(f"{account}: {acked} deposits acknowledged, {len(events) - 1} recorded")
    results = _latency_figures(prefix, outcomes, elapsed)
    results[f"{prefix}_clients"] = clients
    results[f"{prefix}_streams"] = sum(len(a) for a in accounts) + sum(1 for o in outcomes if o.kind == "order")
    return results


def machine_figures() -> dict[str, float]:
    return {"load_machine_cpus": float(os.cpu_count() or 0)}


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    with local_runtime() as base:
        many_streams(base, seconds=4.0, max_commands=200, prefix="warmup")  # execution environments started
        # one client: service time without queueing (the same mix, no concurrency)
        results.update(many_streams(base, clients=1, seconds=6.0, prefix="load_one_client"))
        results.update(many_streams(base))
        results.update(one_account(base))
        results.update(one_order(base))
    results.update(machine_figures())
    return {k: round(float(v), 3) for k, v in results.items()}


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["load"]))
