"""A long session on the local runtime stays flat (issue 19).

A fresh ``make dev`` used to slow with every command (moto deep-copied each table a transaction
touched, sorted the whole table for each Query, and kept every stream record and iterator) until
it answered 503 near 2,000 commands at 11 GB. Here two thousand mixed commands — deposits with
a fresh ``Idempotency-Key``, repeats of earlier keys, deposits and withdrawals without a key,
orders created, paid, shipped or cancelled — run through a runtime of its own with every stream
mapping, projection, snapshotter, publisher and consumer running, from a few concurrent clients.

Fails when
- the median latency of the last 300 commands is more than 1.5× that of the first 300 after a
  warm-up of 200, each relative to the median latency of ``GET /health`` probes sent in the same
  seconds (a function that touches no data: it slows only with the machine). ``make test`` runs
  another worker beside this test, whose load comes and goes (the 10k shuffle, the fault suites);
  raw medians moved by more than 1.5× with it, the ratio to the probe does not, while a runtime
  that slows with its data (the defect this guards) slows the commands and not the probe. A
  burst of the other workers' load can still tip one chunk, so a ratio over the bound is looked
  at again over 300 more commands: a runtime that slows with its data is still slow then, or
- memory grows between the end of the first compared chunk (every kind of command has run by
  then, so the environments it needs exist) and the end: the runtime process (supervisor,
  moto, mappings: where every item, stream record and request's state lives) by more than
  ``RUNTIME_GROWTH_MB``, or the mean execution environment by more than
  ``ENVIRONMENT_GROWTH_MB``. The data written is a few MB; a leak of per-request state is much
  more. The tree's sum is printed, not bounded: it moves with how many environments the other
  workers' load made the runtime start (each 60–90 MB, bounded by the functions' concurrency).

The bench (``python -m bench local_endurance``) runs 20,000 commands for the figures.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from urllib.parse import urlsplit

import pytest

from bench.load import call, token
from bench.local_endurance import RssSampler, drive, mixed_step, runtime_pid

pytestmark = pytest.mark.e2e

COMMANDS = 2000
SECONDS = 150.0  # a cap: the run ends at COMMANDS (about 70 s alone, 110 s beside the other workers)
CHUNK = 300
WARMUP = 200  # commands that start the execution environments (cold starts) are not compared
CLIENTS = 4
GROWTH = 1.5
RUNTIME_GROWTH_MB = 150.0  # the runtime process: moto's data and every request's state live there
ENVIRONMENT_GROWTH_MB = 25.0  # the mean execution environment (fork server included)
ALLOWED = {200, 201}
ALLOWED_CONFLICTS = {"payment", "shipment", "cancellation"}  # an order may have moved on (409)


@pytest.fixture(scope="module")
def own_runtime():
    """A fresh ``python -m local`` of its own: thousands of commands leave minutes of deliveries
    queued, and the other e2e suites must not start on that tail (they share the suite's runtime)."""
    from bench.load import local_runtime

    with local_runtime() as base:
        yield base


class HealthProbe:
    """``GET /health`` every ``interval`` s in a thread: (perf_counter when answered, ms)."""

    def __init__(self, base: str, interval: float = 0.25):
        self.url = urlsplit(base)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.perf_counter()
            conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
            try:
                conn.request("GET", "/health", headers={"Connection": "close"})
                ok = conn.getresponse().status == 200
            except OSError:
                ok = False
            finally:
                conn.close()
            if ok:
                done = time.perf_counter()
                self.samples.append((done, (done - started) * 1000))

    def median_between(self, start: float, end: float) -> float:
        inside = [ms for at, ms in self.samples if start <= at <= end]
        assert len(inside) >= 5, f"only {len(inside)} health probes between the chunk's first and last command"
        return statistics.median(inside)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)


def relative_median(chunk: list, probe: HealthProbe) -> tuple[float, float]:
    """The chunk's median command latency, and that over the probes' median in the same seconds."""
    start = min(r.done - r.ms / 1000 for r in chunk)
    end = max(r.done for r in chunk)
    median = statistics.median(r.ms for r in chunk)
    return median, median / probe.median_between(start, end)


def test_a_long_mixed_session_keeps_latency_and_memory_flat(own_runtime):
    base = own_runtime
    # Ready (outputs.json written) means the demo catalog is orderable: an order placed at once
    # prices. outputs.json used to appear before the seeding, and a fast client's first orders
    # got 409 unknown-product.
    first_order = call(base, "POST", "/orders", {"items": [{"sku": "BOOK-1", "quantity": 1}], "currency": "USD"},
                 token(base, "endurance-first-order"))
    assert first_order.status == 201 and first_order.body["total"] == "9.99", (first_order.status, first_order.body)
    pid = runtime_pid(base)
    with RssSampler(pid, interval=2.0) as rss, HealthProbe(base) as probe:
        records = drive(base, COMMANDS, CLIENTS, 2, mixed_step, seconds=SECONDS)
        assert len(records) >= WARMUP + 2 * CHUNK + 100, f"only {len(records)} commands in {SECONDS:.0f} s"
        first, first_relative = relative_median(records[WARMUP:WARMUP + CHUNK], probe)
        last, last_relative = relative_median(records[-CHUNK:], probe)
        growth = last_relative / first_relative
        if growth > GROWTH:  # one chunk over the bound: look again over the next one
            print(f"\nendurance: x{growth:.2f} relative to /health ({first:.0f} -> {last:.0f} ms); again")
            records += drive(base, CHUNK, CLIENTS, 2, mixed_step, seconds=SECONDS)
            last, last_relative = relative_median(records[-CHUNK:], probe)
            growth = last_relative / first_relative
    bad = [(r.kind, r.status, r.body) for r in records
           if r.status not in ALLOWED and not (r.status == 409 and r.kind in ALLOWED_CONFLICTS)]
    assert not bad, f"{len(bad)} of {len(records)} commands failed, e.g. {bad[:3]}"
    kinds = {r.kind for r in records}
    assert {"deposit+key", "deposit+repeat", "deposit", "withdrawal", "order", "payment"} <= kinds

    # memory once the environments are warm vs the end of the run
    warm_at = records[WARMUP + CHUNK].done  # perf_counter, as the sampler's clock
    _, root_t0, envs_t0, env_mb_t0 = rss.at(warm_at)
    _, root_end, envs_end, env_mb_end = rss.details[-1]
    tree_t0, tree_end = root_t0 + envs_t0 * env_mb_t0, root_end + envs_end * env_mb_end
    print(f"\nendurance: {len(records)} commands, p50 first {first:.0f} ms, last {last:.0f} ms "
          f"(x{last / first:.2f}; x{growth:.2f} relative to /health); tree RSS {tree_t0:.0f} -> {tree_end:.0f} MB "
          f"(peak {rss.peak:.0f} MB); runtime process {root_t0:.0f} -> {root_end:.0f} MB; "
          f"{envs_t0} -> {envs_end} other processes of {env_mb_t0:.0f} -> {env_mb_end:.0f} MB each")
    assert growth <= GROWTH, (
        f"latency grew x{growth:.2f} relative to /health: median {first:.0f} ms -> {last:.0f} ms")
    assert root_end - root_t0 <= RUNTIME_GROWTH_MB, f"the runtime process grew {root_t0:.0f} -> {root_end:.0f} MB"
    assert env_mb_end - env_mb_t0 <= ENVIRONMENT_GROWTH_MB, (
        f"execution environments grew {env_mb_t0:.0f} -> {env_mb_end:.0f} MB each on average")
