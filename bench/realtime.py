"""Real-time updates on the local runtime: push throughput and command-response -> push delay.

- ``ws_push_delay_p50_ms`` / ``_p99_ms``: one client places orders one at a time (no payment
  token: one push per order) and times from the command's 201 to the order's push on its socket.
  This is the pipeline's latency — events stream -> projection commit -> view stream -> pusher ->
  management API -> socket — dominated locally by the two streams' polling and batching windows.
- ``ws_pushes_per_second``: ``BENCH_RT_CONNECTIONS`` sockets of one user, ``BENCH_RT_ORDERS``
  orders one after the other; within each order's fan-out (every socket gets the push), pushes
  per second from the first socket reached to the last: what one pusher invocation sustains
  through the local management API.

Runs its own runtime like bench/load.py (``CAIRN_E2E_OUTPUTS`` reuses a running one).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from typing import Any

from bench.load import call, local_runtime, token

__all__ = ["GOALS", "run"]

GOALS = {
    "ws_push_delay_p50_ms": "local: two stream hops with 1 s batching window on the first",
    "ws_pushes_per_second": "local pusher fan-out (one process, HTTP management API)",
}
ORDER = {"items": [{"sku": "SKU-1", "quantity": 1, "unit_price": "9.99"}], "currency": "USD"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _ws_url(base: str) -> str:
    status = call(base, "GET", "/_local/status")
    return status.body["outputs"]["WsUrl"]


def push_delays(base: str, ws_url: str, orders: int) -> list[float]:
    from websockets.sync.client import connect

    auth = token(base, "bench-rt-delay")
    delays = []
    with connect(f"{ws_url}?token={auth}", open_timeout=30) as sock:
        for _ in range(orders):
            reply = call(base, "POST", "/orders", ORDER, auth)
            answered = time.perf_counter()
            if reply.status != 201:
                raise RuntimeError(f"POST /orders: {reply.status} {reply.body}")
            while True:
                message = json.loads(sock.recv(timeout=60))
                if message.get("order_id") == reply.body["order_id"]:
                    break
            delays.append((time.perf_counter() - answered) * 1000)
    return delays


def push_rate(base: str, ws_url: str, connections: int, orders: int) -> tuple[float, int]:
    """Pushes per second within each order's fan-out (first to last socket reached), summed over
    the orders: the pusher's own loop, not the pipeline in front of it."""
    from websockets.sync.client import connect

    auth = token(base, "bench-rt-fanout")
    socks = [connect(f"{ws_url}?token={auth}", open_timeout=60) for _ in range(connections)]
    stamps: dict[str, list[float]] = {}
    lock = threading.Lock()

    def read(sock: Any) -> None:
        for _ in range(orders):
            message = json.loads(sock.recv(timeout=180))
            with lock:
                stamps.setdefault(message["order_id"], []).append(time.perf_counter())

    try:
        readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in socks]
        for r in readers:
            r.start()
        for _ in range(orders):  # one at a time: each fan-out is measured alone
            reply = call(base, "POST", "/orders", ORDER, auth)
            if reply.status != 201:
                raise RuntimeError(f"POST /orders: {reply.status} {reply.body}")
            oid = reply.body["order_id"]
            deadline = time.time() + 180
            while time.time() < deadline:
                with lock:
                    if len(stamps.get(oid, ())) == connections:
                        break
                time.sleep(0.01)
        for r in readers:
            r.join(timeout=180)
    finally:
        for s in socks:
            s.close()
    pushes = sum(len(v) for v in stamps.values())
    if pushes != orders * connections:
        raise RuntimeError(f"{pushes} of {orders * connections} pushes arrived")
    span = sum(max(v) - min(v) for v in stamps.values())
    gaps = sum(len(v) - 1 for v in stamps.values())
    return (gaps / span if span > 0 else float("inf")), pushes


def run() -> dict[str, float]:
    delay_orders = int(os.environ.get("BENCH_RT_DELAY_ORDERS", "30"))
    connections = int(os.environ.get("BENCH_RT_CONNECTIONS", "50"))
    orders = int(os.environ.get("BENCH_RT_ORDERS", "10"))
    with local_runtime() as base:
        ws_url = _ws_url(base)
        delays = push_delays(base, ws_url, delay_orders)
        rate, pushes = push_rate(base, ws_url, connections, orders)
    return {
        "ws_push_delay_p50_ms": round(statistics.median(delays), 1),
        "ws_push_delay_p99_ms": round(_percentile(delays, 0.99), 1),
        "ws_pushes_per_second": round(rate, 1),
        "ws_pushes_measured": float(pushes),
    }
