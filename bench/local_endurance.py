"""Endurance of the local runtime (``make dev``): does a long session stay flat?

Issue 19: a fresh ``make dev`` slowed from 70 ms to 280 ms per idempotent deposit over 1,750
events and fell over near 2,000 at 11 GB resident (moto deep-copied every table a transaction
touched). This suite drives ``COMMANDS`` idempotent deposits (a fresh ``Idempotency-Key`` each)
through a fresh local runtime with every stream mapping, projection, snapshotter, publisher and
consumer running, twice:

- **the issue's session** (the goal keys): one client, one account, one deposit after another —
  what the issue measured, and the hardest case for a cost that grows with a stream (one stream
  of 20,000 events);
- **a concurrent session** (keys ending ``_concurrent``, no goal): four clients on two accounts
  each. On this two-core machine it saturates the CPU (four environments, the projections and
  the pusher for eight streams per batch), so its latency is mostly queueing and its growth
  read 0.97–1.44 in four runs (docs/benchmarks.md); it is reported for the memory of a busier
  session and as a second look.

Keys:

- ``local_latency_growth``: p50 latency of the last 1,000 commands / p50 of the first 1,000
  (goal ≤ 1.2; 1.0 is flat);
- ``local_peak_rss_mb``: the peak resident memory of the runtime's whole process tree (the
  supervisor with moto, the fork server and every execution environment; RSS summed, so pages
  shared after fork count once per process — an upper bound), sampled every second (goal ≤ 1,000);
- ``local_peak_pss_mb``: the same peak in proportional set size (``/proc/<pid>/smaps_rollup``: a
  page shared by n processes counts 1/n in each), the tree's real footprint, for context;
- ``local_endurance_commands_per_s`` and the two p50s, for context.

``COMMANDS`` defaults to 20,000 (``CAIRN_ENDURANCE_COMMANDS`` overrides it while developing;
``CAIRN_ENDURANCE_CONCURRENT=0`` skips the concurrent session). Each session prints its p50 per
1,000 commands. The helpers (``tree_rss_mb``, ``RssSampler``, ``mixed_step``) are shared with the
endurance e2e test (``tests/e2e/test_e2e_endurance.py``), which runs a shorter, mixed session in
``make test``.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import Reply, call, local_runtime, token

COMMANDS = int(os.environ.get("CAIRN_ENDURANCE_COMMANDS", "20000"))
# (clients, accounts per client): the session, and the concurrent one
SESSIONS = {"": (1, 1), "_concurrent": (4, 2)}
WINDOW = 1000

GOALS = {
    "local_latency_growth": "≤ 1.2",
    "local_peak_rss_mb": "≤ 1000",
}


# -- memory of a process tree ---------------------------------------------------------------------
def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
            except OSError:
                pass
    return seen


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and its descendants, summed (MB)."""
    return sum(rss_mb(p) for p in tree_pids(root))


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_pss_mb(root: int) -> float:
    """Proportional set size of ``root`` and its descendants, summed (MB): shared pages once."""
    return sum(pss_mb(p) for p in tree_pids(root))


class RssSampler:
    """Samples a process tree's RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, root: int, interval: float = 1.0, pss: bool = False):
        self.root = root
        self.interval = interval
        self.pss = pss
        self.samples: list[tuple[float, float]] = []
        self.pss_samples: list[float] = []
        # (perf_counter, the root's own RSS, how many other processes, their mean RSS), MB
        self.details: list[tuple[float, float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        at = time.perf_counter()
        root, others = rss_mb(self.root), [rss_mb(p) for p in tree_pids(self.root) if p != self.root]
        self.samples.append((at, root + sum(others)))
        self.details.append((at, root, len(others), sum(others) / len(others) if others else 0.0))

    def at(self, when: float) -> tuple[float, float, int, float]:
        """The detail sample nearest to ``when`` (perf_counter)."""
        return min(self.details, key=lambda d: abs(d[0] - when))

    def _run(self) -> None:
        while True:
            self._sample()
            if self.pss:
                self.pss_samples.append(tree_pss_mb(self.root))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)


# -- driving --------------------------------------------------------------------------------------
@dataclass
class Session:
    """One client's streams and tokens."""

    base: str
    user: str
    staff: str
    accounts: list[str] = field(default_factory=list)
    keyed: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (account, key, body)
    orders: list[tuple[str, str, str]] = field(default_factory=list)  # (order id, status, total)

    @classmethod
    def open(cls, base: str, n_accounts: int, staff: str) -> Session:
        user = f"endurance-{uuid.uuid4().hex[:8]}"
        s = cls(base, token(base, user), staff)
        for _ in range(n_accounts):
            reply = call(base, "POST", "/accounts", {"currency": "USD"}, token=s.user)
            if reply.status != 201:
                raise RuntimeError(f"POST /accounts: {reply.status} {reply.body}")
            s.accounts.append(reply.body["account_id"])
        return s

    def post(self, path: str, body: Any, key: str | None = None, staff: bool = False) -> Reply:
        return call_with_key(self.base, path, body, self.staff if staff else self.user, key)


def call_with_key(base: str, path: str, body: Any, auth: str, key: str | None) -> Reply:
    """POST with an optional ``Idempotency-Key`` (bench.load.call sends none)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    url = urlsplit(base)
    cid = str(uuid.uuid4())
    headers = {"X-Correlation-Id": cid, "Connection": "close", "Content-Type": "application/json",
               "Authorization": f"Bearer {auth}"}
    if key:
        headers["Idempotency-Key"] = key
    started = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
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
    return Reply(status, parsed, seconds, cid)


def idempotent_step(s: Session, i: int, rng: random.Random) -> tuple[str, Reply]:
    account = s.accounts[i % len(s.accounts)]
    return "deposit+key", s.post(f"/accounts/{account}/deposits", {"amount": "1.00"}, key=uuid.uuid4().hex)


def mixed_step(s: Session, i: int, rng: random.Random) -> tuple[str, Reply]:
    """Idempotent and not, several streams: deposits with a fresh key, repeats of an earlier key
    (answered from the idempotency record), deposits and withdrawals without a key, and orders
    taken through create -> pay -> ship / cancel."""
    account = s.accounts[i % len(s.accounts)]
    kind = i % 10
    if kind in (0, 1, 2) or (kind == 3 and not s.keyed):
        body = {"amount": f"{rng.randint(1, 50)}.00"}
        key = uuid.uuid4().hex
        s.keyed.append((account, key, body))
        del s.keyed[:-50]
        return "deposit+key", s.post(f"/accounts/{account}/deposits", body, key=key)
    if kind == 3:
        account, key, body = rng.choice(s.keyed)
        return "deposit+repeat", s.post(f"/accounts/{account}/deposits", body, key=key)
    if kind in (4, 5):
        return "deposit", s.post(f"/accounts/{account}/deposits", {"amount": "2.00"})
    if kind == 6:
        return "withdrawal", s.post(f"/accounts/{account}/withdrawals", {"amount": "1.00"})
    if kind == 7 or not s.orders:
        reply = s.post("/orders", {"items": [{"sku": "BOOK-1", "quantity": rng.randint(1, 3), "unit_price": "9.99"}],
                                   "currency": "USD"})
        if reply.status == 201:
            s.orders.append((reply.body["order_id"], "CREATED", reply.body["total"]))
        return "order", reply
    order_id, status, total = s.orders[-1]
    if status == "CREATED" and kind == 8:
        reply = s.post(f"/orders/{order_id}/payment", {"payment_id": f"pay-{uuid.uuid4().hex[:8]}", "amount": total},
                       staff=True)
        s.orders[-1] = (order_id, "PAID", total)
        return "payment", reply
    s.orders.pop()
    if status == "PAID":
        return "shipment", s.post(f"/orders/{order_id}/shipment", {"tracking": "TRK1"}, staff=True)
    return "cancellation", s.post(f"/orders/{order_id}/cancellation", {"reason": "endurance"})


@dataclass
class Record:
    kind: str
    status: int
    ms: float
    done: float  # perf_counter when answered (the order commands are compared in)
    body: Any = None


def drive(base: str, commands: int, clients: int, accounts_per_client: int, step: Any,
          seed: int = 19, seconds: float | None = None) -> list[Record]:
    """``clients`` threads, each with its own accounts and orders, until ``commands`` are answered
    (or ``seconds`` have passed). Records come back in the order they were answered."""
    staff = token(base, "endurance-staff", ["staff"])
    sessions = [Session.open(base, accounts_per_client, staff) for _ in range(clients)]
    records: list[Record] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    issued = [0]
    stop_at = time.perf_counter() + seconds if seconds else float("inf")

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        s = sessions[n]
        i = 0
        try:
            while True:
                with lock:
                    if issued[0] >= commands or time.perf_counter() > stop_at:
                        return
                    issued[0] += 1
                kind, reply = step(s, i, rng)
                i += 1
                with lock:
                    records.append(Record(kind, reply.status, reply.seconds * 1000, time.perf_counter(),
                                          reply.body if reply.status >= 400 else None))
        except BaseException as exc:  # surfaced after the join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), name=f"endurance-{n}") for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sorted(records, key=lambda r: r.done)


def growth(records: list[Record], window: int) -> tuple[float, float, float]:
    """(p50 of the first ``window`` ms, p50 of the last ``window`` ms, last / first)."""
    first = statistics.median(r.ms for r in records[:window])
    last = statistics.median(r.ms for r in records[-window:])
    return first, last, last / first


def runtime_pid(base: str) -> int:
    reply = call(base, "GET", "/_local/status")
    if reply.status != 200 or "pid" not in reply.body:
        raise RuntimeError(f"/_local/status has no pid: {reply.status}")
    return int(reply.body["pid"])


def endurance_session(commands: int, clients: int, accounts_per_client: int, suffix: str = "") -> dict[str, float]:
    """One fresh runtime driven by ``clients`` clients with idempotent deposits; its figures."""
    with local_runtime() as base:
        pid = runtime_pid(base)
        started = time.perf_counter()
        supervisor_start = rss_mb(pid)
        with RssSampler(pid, pss=True) as rss:
            records = drive(base, commands, clients, accounts_per_client, idempotent_step)
        elapsed = time.perf_counter() - started
        supervisor_end = rss_mb(pid)
        peak_at = max(rss.samples, key=lambda s: s[1])[0] - started
    bad = [(r.kind, r.status, r.body) for r in records if r.status != 200]
    if bad:
        raise AssertionError(f"{len(bad)} of {len(records)} deposits not acknowledged, e.g. {bad[:3]}")
    window = min(WINDOW, len(records) // 4)
    first, last, ratio = growth(records, window)
    windows = [round(statistics.median(r.ms for r in records[k:k + window]), 1) for k in range(0, len(records), window)]
    print(f"  session{suffix or ' (the issue)'}: {clients} client(s) x {accounts_per_client} account(s), "
          f"p50 ms per {window} commands: {windows}", flush=True)
    figures = {
        "local_latency_growth": round(ratio, 3),
        "local_peak_rss_mb": round(rss.peak, 1),
        "local_peak_pss_mb": round(max(rss.pss_samples, default=0.0), 1),
        "local_peak_rss_at_s": round(peak_at, 1),  # idle environments are closed after 300 s
        "local_supervisor_rss_start_mb": round(supervisor_start, 1),
        "local_supervisor_rss_end_mb": round(supervisor_end, 1),
        "local_endurance_commands": len(records),
        "local_endurance_commands_per_s": round(len(records) / elapsed, 1),
        "local_endurance_first_p50_ms": round(first, 1),
        "local_endurance_last_p50_ms": round(last, 1),
    }
    return {f"{key}{suffix}": value for key, value in figures.items()}


def run(commands: int = COMMANDS) -> dict[str, float]:
    results: dict[str, float] = {}
    for suffix, (clients, accounts) in SESSIONS.items():
        if suffix and os.environ.get("CAIRN_ENDURANCE_CONCURRENT", "1") == "0":
            continue
        results.update(endurance_session(commands, clients, accounts, suffix))
    return results


if __name__ == "__main__":  # pragma: no cover - python -m bench local_endurance is the entry point
    print(run())
