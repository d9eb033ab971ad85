"""A long session on the local runtime stays flat (issue 19).

A fresh ``make dev`` used to slow with every command (moto deep-copied each table a transaction
touched, sorted the whole table for each Query, and kept every stream record and iterator) until
it answered 503 near 2,000 commands at 11 GB. Here a few thousand mixed commands — deposits with
a fresh ``Idempotency-Key``, repeats of earlier keys, deposits and withdrawals without a key,
orders created, paid, shipped or cancelled — run through the e2e runtime with every stream
mapping, projection, snapshotter, publisher and consumer running, from a few concurrent clients.

Fails when
- the median latency of the last 200 commands is more than 1.5× that of the first 200 after a
  warm-up of 100 (medians of 200 ride out the noise of a shared 2-core machine), or
- the runtime's process tree (supervisor + moto, fork server, execution environments; RSS
  summed from /proc) grows by more than ``RSS_GROWTH_MB`` between the end of the warm-up and
  the end: the data written is a few MB; a leak of per-request state
  is much more.

The bench (``python -m bench local_endurance``) runs 20,000 commands for the figures.
"""

from __future__ import annotations

import statistics

import pytest

from bench.local_endurance import RssSampler, drive, mixed_step, runtime_pid, tree_rss_mb

pytestmark = pytest.mark.e2e

COMMANDS = 2400
SECONDS = 90.0  # the run stops issuing after this (a loaded 2-core machine does ~12 commands/s)
CHUNK = 200
WARMUP = 100  # commands that start the execution environments (cold starts) are not compared
CLIENTS = 4
GROWTH = 1.5
RSS_GROWTH_MB = 200.0
ALLOWED = {200, 201}
ALLOWED_CONFLICTS = {"payment", "shipment", "cancellation"}  # an order may have moved on (409)


@pytest.fixture(scope="module")
def own_runtime():
    """A fresh ``python -m local`` of its own: thousands of commands leave minutes of deliveries
    queued, and the other e2e suites must not start on that tail (they share the suite's runtime)."""
    from bench.load import local_runtime

    with local_runtime() as base:
        yield base


def test_a_long_mixed_session_keeps_latency_and_memory_flat(own_runtime):
    base = own_runtime
    pid = runtime_pid(base)
    with RssSampler(pid, interval=2.0) as rss:
        records = drive(base, COMMANDS, CLIENTS, 2, mixed_step, seconds=SECONDS)
    assert len(records) >= WARMUP + 2 * CHUNK + 100, f"only {len(records)} commands in {SECONDS:.0f} s"
    bad = [(r.kind, r.status, r.body) for r in records
           if r.status not in ALLOWED and not (r.status == 409 and r.kind in ALLOWED_CONFLICTS)]
    assert not bad, f"{len(bad)} of {len(records)} commands failed, e.g. {bad[:3]}"
    kinds = {r.kind for r in records}
    assert {"deposit+key", "deposit+repeat", "deposit", "withdrawal", "order", "payment"} <= kinds

    first = statistics.median(r.ms for r in records[WARMUP:WARMUP + CHUNK])
    last = statistics.median(r.ms for r in records[-CHUNK:])
    # memory once the environments are warm vs the end of the run
    warm_at = records[WARMUP].done  # perf_counter, as the sampler's clock
    t0 = min(rss.samples, key=lambda s: abs(s[0] - warm_at))[1]
    end = tree_rss_mb(pid)
    print(f"\nendurance: {len(records)} commands, p50 first {first:.0f} ms, last {last:.0f} ms "
          f"(x{last / first:.2f}); tree RSS {t0:.0f} -> {end:.0f} MB (peak {rss.peak:.0f} MB)")
    assert last <= GROWTH * first, f"latency grew: median {first:.0f} ms -> {last:.0f} ms"
    assert end - t0 <= RSS_GROWTH_MB, f"runtime memory grew {t0:.0f} -> {end:.0f} MB"
