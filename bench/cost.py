"""Cost model: US dollars per million account deposits, from measured request counts and sizes.

Measured (this run's bench/results.json and this module): AWS calls per command warm/cold
(foundation suite), item sizes of the events and idempotency markers the store really writes
(-> write/read request units by DynamoDB's rules), projection requests and request units per
event (projection_calls suite). Assumed and stated below: Lambda durations (not measurable on
moto), log volume, X-Ray sampling, snapshot cadence from the stack. Prices: public us-east-1
list prices (``PRICES``), no free tier, no savings plans.

Two scenarios bracket reality:

- ``warm``: high traffic, the command Lambda has the stream's state cached (1 conditional
  PutItem), stream batches are full (100 events per projection invocation);
- ``cold``: low traffic, every command loads (snapshot GET + tail Query + PutItem) and every
  stream batch holds one event.

Run after ``foundation`` and ``projection_calls`` (it reads their figures from results.json).
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"

# us-east-1 list prices, USD, as published on the AWS pricing pages (checked 2026-11; DynamoDB
# on-demand prices are those in force since the 2024-11-01 reduction).
PRICES = {
    "apigw_http_per_million": 1.00,  # HTTP API, first 300 M requests/month, per 512 KB request
    "lambda_request_per_million": 0.20,
    "lambda_gb_s_arm64": 0.0000133334,  # first 7.5 B GB-s/month
    "ddb_wru_per_million": 0.625,  # on-demand write request unit (1 KB; transactional: 2 per KB)
    "ddb_rru_per_million": 0.125,  # on-demand read request unit (strongly consistent 4 KB)
    "ddb_streams_lambda_reads": 0.0,  # GetRecords by a Lambda event source mapping: free
    "s3_get_per_thousand": 0.0004,  # S3 Standard GET
    "s3_put_per_thousand": 0.005,  # S3 Standard PUT
    "eventbridge_per_million": 1.00,  # custom events (PutEvents, per 64 KB)
    "logs_ingest_per_gb": 0.50,  # CloudWatch Logs standard ingestion
    "xray_per_million_traces": 5.00,  # traces recorded
}

# Stated assumptions (not measurable here). Durations are billed per ms at the stack's memory.
ASSUMPTIONS = {
    "command_memory_gb": 1.0,  # cdk_app/stacks/cairn_stack.py: AccountsCommands 1024 MB
    "command_ms_warm": 15.0,  # one PutItem round trip (~5-10 ms) + Powertools/pydantic work
    "command_ms_cold": 40.0,  # + S3 GET and Query round trips
    "projection_memory_gb": 1.0,  # AccountsProjections / Snapshotter 1024 MB
    "projection_ms_per_full_batch": 150.0,  # 100 records, ~11 DynamoDB requests
    "projection_ms_single": 30.0,  # one record, 3 requests
    "snapshotter_ms_per_batch": 20.0,  # usually nothing due: decides from the records alone
    "log_kb_per_invocation": 1.0,  # one structured log line + EMF metrics (Powertools)
    "xray_sampled_fraction": 0.05,  # default sampling rule: 1 request/s + 5 %
    "snapshot_every_account": 100,  # SNAPSHOT_EVERY account=100 (stack)
}

GOALS: dict[str, str] = {}


def _deposit_sizes() -> dict[str, int]:
    """Bytes of what the store writes for a deposit: the event item and the idempotency marker."""
    from accounts import domain
    from accounts.app import registry
    from bench.projection_calls import item_bytes
    from cairn.events import EventMetadata, NewEvent
    from cairn.store.dynamodb import DynamoDBEventStore, item_from_encoded

    store = DynamoDBEventStore(registry, client=None, events_table="events", idempotency_table="idempotency")
    stream_id = f"account-{uuid.uuid4()}"
    meta = EventMetadata(correlation_id=str(uuid.uuid4()), actor="a1b2c3d4-user-sub", command_id=str(uuid.uuid4()))
    (encoded,) = store.encode_batch(stream_id, [NewEvent(data=domain.MoneyDeposited(amount="125.50"), metadata=meta)], 41)
    event = item_bytes(item_from_encoded(stream_id, encoded))
    answer = {"account_id": stream_id, "version": 42, "balance": "1234.56", "currency": "USD"}
    marker = item_bytes(store._marker(f"alice:POST /accounts/{{id}}/deposits:{uuid.uuid4()}", "f" * 64, stream_id, [encoded], answer))
    return {"event": event, "marker": marker}


def _lambda(invocations: float, ms: float, gb: float) -> float:
    return invocations * (PRICES["lambda_request_per_million"] / 1e6 + ms / 1000 * gb * PRICES["lambda_gb_s_arm64"])


def model(measured: dict[str, float], sizes: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per-command dollars by component, for each scenario (multiply by 1e6 for per-million)."""
    a, p = ASSUMPTIONS, PRICES
    wru, rru = p["ddb_wru_per_million"] / 1e6, p["ddb_rru_per_million"] / 1e6
    event_wru = math.ceil(sizes["event"] / 1024)
    marker_wru = math.ceil(sizes["marker"] / 1024)
    every = a["snapshot_every_account"]
    tail_rru = math.ceil(every / 2 * sizes["event"] / 4096)  # consistent Query of the average tail
    logs = a["log_kb_per_invocation"] / 1024 / 1024 * p["logs_ingest_per_gb"]
    out: dict[str, dict[str, float]] = {}
    for scenario in ("warm", "cold"):
        warm = scenario == "warm"
        c: dict[str, float] = {}
        c["API Gateway HTTP API request"] = p["apigw_http_per_million"] / 1e6
        c["command Lambda (request + GB-s)"] = _lambda(
            1, a["command_ms_warm"] if warm else a["command_ms_cold"], a["command_memory_gb"]
        )
        c["event append (PutItem)"] = event_wru * wru
        if not warm:
            c["snapshot GET (S3)"] = p["s3_get_per_thousand"] / 1000
            c["tail Query (consistent)"] = tail_rru * rru
        projection_wru = measured["projection_wru_per_event_accounts" + ("" if warm else "_single")]
        projection_rru = measured["projection_rru_per_event_accounts"] if warm else 2.0  # BatchGet 2 keys
        if not warm:
            projection_rru += 0.5  # the generation meta GetItem (eventually consistent) after its TTL
        c["account view projection (DynamoDB)"] = projection_wru * wru + projection_rru * rru
        per_batch = 0.01 if warm else 1.0  # Lambda invocations per event
        c["projection Lambda"] = _lambda(
            per_batch, a["projection_ms_per_full_batch"] if warm else a["projection_ms_single"], a["projection_memory_gb"]
        )
        c["snapshotter Lambda"] = _lambda(per_batch, a["snapshotter_ms_per_batch"], a["projection_memory_gb"])
        # a snapshot every `every` events: S3 GET of the previous one, Query of the events since, PUT
        c["snapshots (S3 + Query, amortised)"] = (
            p["s3_get_per_thousand"] / 1000 + p["s3_put_per_thousand"] / 1000 + math.ceil(every * sizes["event"] / 4096) * rru
        ) / every
        c["DynamoDB Streams reads"] = p["ddb_streams_lambda_reads"]
        c["CloudWatch Logs"] = logs * (1 + 2 * per_batch)
        c["X-Ray traces"] = a["xray_sampled_fraction"] * p["xray_per_million_traces"] / 1e6
        out[scenario] = c
    idempotent = dict(out["warm"])
    idempotent["event append (PutItem)"] = 2 * (event_wru + marker_wru) * wru  # TransactWriteItems
    out["warm_idempotent"] = idempotent
    return out


def run() -> dict[str, float]:
    measured = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    needed = ["calls_per_command_warm", "calls_per_command_cold", "projection_wru_per_event_accounts"]
    missing = [k for k in needed if k not in measured]
    if missing:
        raise RuntimeError(f"run the foundation and projection_calls suites first (missing {missing})")
    if measured["calls_per_command_warm"] != 1 or measured["calls_per_command_cold"] != 3:
        raise RuntimeError("the model assumes 1 call warm and 3 cold, as measured; the measurement changed")
    sizes = _deposit_sizes()
    scenarios = model(measured, sizes)
    print(f"deposit event item {sizes['event']} B, idempotency marker {sizes['marker']} B")
    components = list(scenarios["cold"])
    print(f"{'USD per million deposits':<38} {'warm':>8} {'cold':>8} {'warm+Idempotency-Key':>22}")
    for name in components:
        cells = [scenarios[s].get(name) for s in ("warm", "cold", "warm_idempotent")]
        shown = [f"{v * 1e6:8.3f}" if v is not None else f"{'-':>8}" for v in cells]
        print(f"{name:<38} {shown[0]} {shown[1]} {shown[2]:>22}")
    totals = {s: sum(c.values()) * 1e6 for s, c in scenarios.items()}
    print(f"{'total':<38} {totals['warm']:8.3f} {totals['cold']:8.3f} {totals['warm_idempotent']:>22.3f}")
    return {
        "cost_deposit_event_item_bytes": float(sizes["event"]),
        "cost_idempotency_marker_bytes": float(sizes["marker"]),
        "cost_usd_per_million_deposits_warm": round(totals["warm"], 3),
        "cost_usd_per_million_deposits_cold": round(totals["cold"], 3),
        "cost_usd_per_million_deposits_warm_idempotent": round(totals["warm_idempotent"], 3),
    }


if __name__ == "__main__":
    import sys

    from bench.__main__ import main

    sys.exit(main(["cost"]))
