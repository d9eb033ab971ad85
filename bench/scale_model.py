"""The model at internet scale: a day at 10k and 100k commands/s over 10 million streams (docs/scale.md).

Not a measurement: a deterministic simulation that combines what the bench measured on this code
(calls, request units, item sizes: bench/results.json) with AWS's published limits and prices
(``LIMITS``, ``PRICES``: every figure names its page) and stated assumptions (``ASSUMPTIONS``).
It answers: which limit binds first (and at what command rate), how far behind the projections
are at the peak, and the monthly bill by service.

How it works:

- **Traffic.** ``PEAKS`` are the peak-hour rates; the other hours follow ``DIURNAL`` (a
  two-humped weekday curve, mean 0.60 of the peak). Commands pick a stream by a Zipf law of
  exponent ``zipf_s`` over ``streams`` streams: stream rank k gets ``k^-s / H(N, s)`` of the traffic.
- **Limits as command rates.** Each limit is turned into the command rate at which it binds (e.g.
  the API Gateway account quota binds at ``10,000 / (1 + queries per command)`` commands/s). The
  first bottleneck is the smallest; its code is in ``BOTTLENECKS``.
- **The day.** Hour by hour: the hottest streams are capped at the per-stream ceiling (the excess
  is refused after retries: ``commands refused``), the top ``HOT_KEYS`` streams are hashed onto the
  table's partitions with ``random.Random(SEED)`` (the rest spread evenly), and each partition's
  stream shard feeds the projection event source mapping: a fluid queue per shard gives the backlog,
  hence the projection lag at the peak.
- **Bill.** Requests and units of the day, times 30, at us-east-1 list prices.

Bounded: pure arithmetic (no per-stream arrays: the Zipf sum uses Euler–Maclaurin past 10^5
terms), under a second, a few MB.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
SEED = 20261205
PEAKS = (10_000, 100_000)
HOT_KEYS = 100_000  # streams placed on partitions one by one; the tail is spread evenly

GOALS: dict[str, str] = {}

# Published limits (us-east-1 defaults). "adjustable" = a Service Quotas increase request.
LIMITS: dict[str, tuple[float, str]] = {
    "ddb_partition_wcu": (1_000, "DynamoDB: a partition serves up to 1,000 WCU/s (re:Post KC on-demand-table-throttling-dynamodb; developerguide bp-partition-key-design)"),
    "ddb_partition_rcu": (3_000, "DynamoDB: a partition serves up to 3,000 RCU/s (same pages)"),
    "ddb_table_wcu_quota": (40_000, "DynamoDB on-demand: 40,000 WRU/s table-level default quota, adjustable (developerguide on-demand-capacity-mode, ServiceQuotas)"),
    "ddb_table_rcu_quota": (40_000, "DynamoDB on-demand: 40,000 RRU/s table-level default quota, adjustable (same)"),
    "ddb_new_table_wcu": (4_000, "DynamoDB on-demand: a new table sustains 4,000 WRU / 12,000 RRU at once (developerguide on-demand-capacity-mode, initial throughput)"),
    "ddb_peak_multiple": (2.0, "DynamoDB on-demand: up to 2x the previous peak within 30 minutes without throttling (same page; re:Post KC)"),
    "ddb_stream_readers": (2, "DynamoDB Streams: no more than 2 processes reading one shard at a time, or throttling (DynamoDB Streams LimitExceededException text; developerguide Streams)"),
    "lambda_account_concurrency": (1_000, "Lambda: 1,000 concurrent executions per Region, adjustable (Lambda quotas page)"),
    "lambda_scale_per_10s": (1_000, "Lambda: each function scales by 1,000 concurrent executions every 10 s (Lambda scaling behavior page, since 2023-11)"),
    "esm_parallelization_max": (10, "Lambda DynamoDB Streams event source mapping: ParallelizationFactor default 1, maximum 10 (services-ddb-params)"),
    "esm_polls_per_s": (4, "Lambda polls each DynamoDB stream shard 4 times a second per mapping (Lambda with-ddb page, as recalled: not in the stored excerpts)"),
    "apigw_account_rps": (10_000, "API Gateway: 10,000 requests/s per account per Region across HTTP/REST/WebSocket APIs, burst 5,000, adjustable (API Gateway quotas page)"),
    "eventbridge_putevents_tps": (10_000, "EventBridge: PutEvents 10,000 requests/s in us-east-1, adjustable (eb-quota)"),
    "eventbridge_invocations_tps": (18_750, "EventBridge: 18,750 target invocations/s in us-east-1, adjustable (eb-quota)"),
    "eventbridge_entries_per_put": (10, "EventBridge: 10 entries per PutEvents (API reference; functions/cairn_platform/publisher.py)"),
    "sqs_standard_tps": (math.inf, "SQS standard queues: nearly unlimited API calls per second (SQS quotas page)"),
    "sqs_fifo_ht_tps": (70_000, "SQS FIFO high-throughput mode: 70,000 transactions/s per API action in us-east-1 (SQS quotas page)"),
    "kinesis_shard_write_records": (1_000, "Kinesis: a shard ingests 1,000 records/s or 1 MB/s (Kinesis service limits page)"),
    "kinesis_efo_propagation_ms": (70, "Kinesis enhanced fan-out: ~70 ms average propagation whatever the consumer count (Kinesis building-consumers page)"),
    "kinesis_shared_propagation_ms_per_reader": (200, "Kinesis shared throughput: ~200 ms average with 1 consumer, ~1,000 ms with 5 (building-consumers page)"),
}

# us-east-1 list prices (USD). Those also in bench/cost.py are read from there.
PRICES: dict[str, tuple[float, str]] = {
    "ddb_storage_gb_month": (0.25, "DynamoDB Standard table class storage, per GB-month (DynamoDB on-demand pricing page)"),
    "sqs_standard_per_million": (0.40, "SQS standard requests, per million 64 KB chunks (SQS pricing page)"),
    "sqs_fifo_per_million": (0.50, "SQS FIFO requests, per million (SQS pricing page)"),
    "kinesis_cdc_per_million": (0.10, "DynamoDB change data capture units for Kinesis Data Streams, per million 1 KB units (DynamoDB pricing page)"),
    "kinesis_shard_hour": (0.015, "Kinesis provisioned shard-hour (Kinesis pricing page)"),
    "kinesis_put_unit_per_million": (0.014, "Kinesis PUT payload units (25 KB), per million (Kinesis pricing page)"),
    "kinesis_efo_consumer_shard_hour": (0.015, "Kinesis enhanced fan-out consumer-shard-hour (Kinesis pricing page)"),
    "kinesis_efo_gb": (0.013, "Kinesis enhanced fan-out data retrieval, per GB (Kinesis pricing page)"),
}

ASSUMPTIONS: dict[str, tuple[float, str]] = {
    "streams": (10_000_000, "streams in the table (the issue)"),
    "zipf_s": (1.0, "Zipf exponent of commands over streams (classic Zipf; docs/scale.md shows 0.8 and 1.2)"),
    "queries_per_command": (1.0, "HTTP reads per command (a client reads its result once)"),
    "idempotent_fraction": (0.3, "commands carrying an Idempotency-Key (TransactWriteItems: 2x units, + marker)"),
    "cold_fraction": (0.02, "commands served by a fresh instance (snapshot GET + tail Query)"),
    "orders_fraction": (0.5, "commands on order streams (the rest on accounts)"),
    "integration_per_order_event": (1.0, "integration events published per order event (publisher: every order event)"),
    "rules_per_integration_event": (1.5, "EventBridge target invocations per integration event (OrderCreated matches 3 subscriptions, others 0-1)"),
    "ddb_put_rtt_ms": (8.0, "conditional PutItem round trip inside the Region (DynamoDB: single-digit ms)"),
    "ddb_query_rtt_ms": (6.0, "consistent tail Query round trip after a conflict"),
    "command_ms": (15.0, "command Lambda duration, warm (bench/cost.py)"),
    "query_ms": (10.0, "query Lambda duration (one GetItem)"),
    "batch_ms_per_100": (150.0, "projection Lambda duration of a 100-record batch (bench/cost.py)"),
    "batch_size": (100, "records per stream batch (cdk_app/constructs/projection.py)"),
    "batching_window_s": (1.0, "MaximumBatchingWindowInSeconds of the stream mappings (cdk_app/constructs/projection.py)"),
    "parallelization_factor": (1, "ParallelizationFactor of the stream mappings (cdk_app/constructs/projection.py)"),
    "stream_readers": (4, "event source mappings on the events table's stream (decision 14)"),
    "partition_headroom": (2.0, "on-demand keeps partitions for 2x the previous peak (the 2x rule): partitions = 2 x peak WCU / 1,000"),
    "shards_per_partition": (1.0, "one DynamoDB stream shard per table partition (AWS describes shards as tied to partitions; not a quota)"),
    "lambda_gb": (1.0, "memory of the command, query and stream Lambdas (stack: 1,024 MB)"),
    "sqs_requests_per_message": (3.0, "send + receive + delete per subscription message (batches of 10 would cut this; not assumed)"),
    "log_kb_per_invocation": (1.0, "CloudWatch Logs per invocation (bench/cost.py)"),
}

# measured figures used (bench/results.json) and their fallbacks when a suite has not run
MEASURED_DEFAULTS = {
    "cost_deposit_event_item_bytes": 343.0,
    "cost_idempotency_marker_bytes": 410.0,
    "projection_wru_per_event_accounts": 0.36,
    "projection_wru_per_event_orders": 2.88,
    "projection_rru_per_event_accounts": 0.2,
    "projection_rru_per_event_orders": 1.5,
    "hot_stream_w8_retries_per_command": 0.5,
    "hot_stream_w8_wcu_per_command": 1.5,
}

BOTTLENECKS = {
    1: "hottest stream: per-stream optimistic concurrency ceiling",
    2: "API Gateway account requests/s quota",
    3: "Lambda account concurrency quota",
    4: "DynamoDB events table WRU/s quota",
    5: "DynamoDB read-model table WRU/s quota",
    6: "EventBridge PutEvents quota",
    7: "EventBridge invocations quota",
    8: "stream shard: projection mapping throughput",
}

# Hourly fraction of the peak (00:00..23:00 UTC): night trough, morning and evening humps.
DIURNAL = (
    0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.45, 0.65, 0.8, 0.85, 0.85, 0.9,
    0.9, 0.85, 0.8, 0.8, 0.85, 0.9, 1.0, 1.0, 0.9, 0.7, 0.5, 0.35,
)


def _v(table: dict[str, tuple[float, str]], name: str) -> float:
    return table[name][0]


def zipf_h(n: int, s: float, exact: int = 100_000) -> float:
    """H(n, s) = sum_{k<=n} k^-s: exact for the first terms, Euler-Maclaurin for the rest."""
    head = math.fsum(k ** -s for k in range(1, min(n, exact) + 1))
    if n <= exact:
        return head
    a, b = exact + 1, n
    integral = math.log(b / a) if s == 1 else (b ** (1 - s) - a ** (1 - s)) / (1 - s)
    return head + integral + (a ** -s + b ** -s) / 2 + s * (a ** (-s - 1) - b ** (-s - 1)) / 12


def measured() -> dict[str, float]:
    figures = dict(MEASURED_DEFAULTS)
    if RESULTS.exists():
        try:
            stored = json.loads(RESULTS.read_text())
        except ValueError:
            stored = {}
        figures.update({k: float(stored[k]) for k in MEASURED_DEFAULTS if k in stored})
    return figures


def per_command(m: dict[str, float]) -> dict[str, float]:
    """Average units, requests and Lambda seconds of one command and its consequences."""
    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    event_wru = math.ceil(m["cost_deposit_event_item_bytes"] / 1024)
    marker_wru = math.ceil(m["cost_idempotency_marker_bytes"] / 1024)
    idem = a["idempotent_fraction"]
    events_wru = (1 - idem) * event_wru + idem * 2 * (event_wru + marker_wru)
    # a cold load reads the average tail (50 events: snapshots every 100) with a consistent Query
    tail_rru = math.ceil(50 * m["cost_deposit_event_item_bytes"] / 4096)
    events_rru = a["cold_fraction"] * tail_rru
    orders = a["orders_fraction"]
    rm_wru = orders * m["projection_wru_per_event_orders"] + (1 - orders) * m["projection_wru_per_event_accounts"]
    rm_rru = orders * m["projection_rru_per_event_orders"] + (1 - orders) * m["projection_rru_per_event_accounts"]
    integration = orders * a["integration_per_order_event"]
    return {
        "events_wru": events_wru,
        "events_rru": events_rru,
        "read_model_wru": rm_wru,
        "read_model_rru": rm_rru + a["queries_per_command"] * 0.5,  # a query: one eventually consistent GetItem
        "http_requests": 1 + a["queries_per_command"],
        "integration_events": integration,
        "putevents_calls": integration / _v(LIMITS, "eventbridge_entries_per_put"),
        "eventbridge_invocations": integration * a["rules_per_integration_event"],
        "s3_get": a["cold_fraction"],
        "snapshot_put": 1 / 75,  # SNAPSHOT_EVERY order=50, account=100 (stack)
        "lambda_s": a["command_ms"] / 1000 + a["queries_per_command"] * a["query_ms"] / 1000,
    }


def stream_ceiling(m: dict[str, float]) -> float:
    """Acknowledged commands/s one stream can take: one conditional write wins per version, so
    the rate is bounded by a write round trip plus the losers' catch-up Query (per version), and
    by the partition key's 1,000 WCU/s shared by every attempt (a failed conditional write still
    consumes write units): the WCU per acknowledged command measured with 8 writers (bench hot_stream)."""
    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    by_latency = 1000 / (a["ddb_put_rtt_ms"] + a["ddb_query_rtt_ms"])
    by_units = _v(LIMITS, "ddb_partition_wcu") / m["hot_stream_w8_wcu_per_command"]
    return min(by_latency, by_units)


def binding_rates(m: dict[str, float], c: dict[str, float], s: float, peak: float) -> dict[int, float]:
    """For each limit: the peak command rate at which it binds (commands/s)."""
    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    h = zipf_h(int(a["streams"]), s)
    concurrency_per_command = c["lambda_s"]
    # stream mapping capacity per shard (records/s) vs the records a shard gets
    per_batch_s = a["batch_ms_per_100"] / 1000 * a["batch_size"] / 100
    shard_capacity = a["parallelization_factor"] * a["batch_size"] / per_batch_s
    # a shard's records: its partition's share of the table (partitions sized by the 2x rule)
    partitions = max(1.0, a["partition_headroom"] * peak * c["events_wru"] / _v(LIMITS, "ddb_partition_wcu"))
    shard_rate_at_peak = peak / partitions + stream_ceiling(m)  # the hottest key sits on one of them
    return {
        1: stream_ceiling(m) * h,  # the hottest stream (k=1) reaches its ceiling
        2: _v(LIMITS, "apigw_account_rps") / c["http_requests"],
        3: _v(LIMITS, "lambda_account_concurrency") / (concurrency_per_command + _stream_lambda_s(c)),
        4: _v(LIMITS, "ddb_table_wcu_quota") / c["events_wru"],
        5: _v(LIMITS, "ddb_table_wcu_quota") / max(c["read_model_wru"], 1e-9),
        6: _v(LIMITS, "eventbridge_putevents_tps") / max(c["putevents_calls"], 1e-9),
        7: _v(LIMITS, "eventbridge_invocations_tps") / max(c["eventbridge_invocations"], 1e-9),
        8: math.inf if shard_rate_at_peak <= shard_capacity else peak * shard_capacity / shard_rate_at_peak,
    }


def _stream_lambda_s(c: dict[str, float]) -> float:
    """Lambda seconds per command spent by the stream consumers and subscriptions."""
    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    per_event = a["batch_ms_per_100"] / 1000 / a["batch_size"]
    return a["stream_readers"] * per_event + c["integration_events"] * a["rules_per_integration_event"] * 0.03


def simulate_day(peak: float, m: dict[str, float], c: dict[str, float], s: float, rng: random.Random) -> dict[str, float]:
    """Hour by hour: refused commands on hot streams, partition load, projection backlog per shard."""
    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    n = int(a["streams"])
    h = zipf_h(n, s)
    ceiling = stream_ceiling(m)
    partitions = max(1, math.ceil(a["partition_headroom"] * peak * c["events_wru"] / _v(LIMITS, "ddb_partition_wcu")))
    placement = [rng.randrange(partitions) for _ in range(min(HOT_KEYS, n))]
    head_share = [k ** -s / h for k in range(1, len(placement) + 1)]
    tail_share = max(0.0, 1 - math.fsum(head_share))
    per_batch_s = a["batch_ms_per_100"] / 1000
    shard_capacity = a["parallelization_factor"] * a["batch_size"] / per_batch_s
    backlog = [0.0] * partitions
    refused = accepted = 0.0
    worst_lag = peak_lag = hot_streams_over = 0.0
    max_partition_wcu = 0.0
    for factor in DIURNAL:
        rate = peak * factor
        load = [rate * tail_share / partitions] * partitions
        over = 0
        for share, partition in zip(head_share, placement, strict=True):
            offered = rate * share
            taken = min(offered, ceiling)
            if offered > ceiling:
                over += 1
                refused += (offered - taken) * 3600
            load[partition] += taken
        hot_streams_over = max(hot_streams_over, over)
        accepted += math.fsum(load) * 3600
        max_partition_wcu = max(max_partition_wcu, max(load) * c["events_wru"])
        for p in range(partitions):
            backlog[p] = max(0.0, backlog[p] + (load[p] - shard_capacity) * 3600)
        busiest = max(range(partitions), key=lambda p: (backlog[p], load[p]))
        wait = _latency(load[busiest], a) + backlog[busiest] / shard_capacity
        worst_lag = max(worst_lag, wait)
        if factor == max(DIURNAL):
            peak_lag = max(peak_lag, wait)
    return {
        "partitions": float(partitions),
        "refused_fraction": refused / (refused + accepted) if refused + accepted else 0.0,
        "streams_over_ceiling_at_peak": float(hot_streams_over),
        "max_partition_wcu": max_partition_wcu,
        "projection_lag_s": peak_lag,
        "projection_lag_s_worst_hour": worst_lag,
        "commands_per_day": accepted,
    }


def _latency(records_per_s: float, a: dict[str, float]) -> float:
    """Seconds from commit to projection on a shard that keeps up: the stream record's
    propagation to the poller (4 polls/s, + the readers' contention past two, by analogy with
    Kinesis shared throughput: ~200 ms per reader), the batching window (a batch goes when full or
    after the window), and the batch's own processing."""
    poll = 1 / _v(LIMITS, "esm_polls_per_s") / 2
    contention = max(0.0, a["stream_readers"] - _v(LIMITS, "ddb_stream_readers")) * _v(
        LIMITS, "kinesis_shared_propagation_ms_per_reader"
    ) / 1000
    fill = min(a["batching_window_s"], a["batch_size"] / max(records_per_s, 1e-9))
    return poll + contention + fill + a["batch_ms_per_100"] / 1000


def monthly_bill(peak: float, day: dict[str, float], c: dict[str, float]) -> dict[str, float]:
    """USD per 30-day month by service, at us-east-1 list prices (bench/cost.py PRICES + PRICES)."""
    from bench.cost import PRICES as P

    a = {k: v[0] for k, v in ASSUMPTIONS.items()}
    commands = day["commands_per_day"] * 30
    gb_s = a["lambda_gb"]
    logs = a["log_kb_per_invocation"] / 1024 / 1024 * P["logs_ingest_per_gb"]
    stream_invocations = commands * a["stream_readers"] / a["batch_size"]
    subscription_invocations = commands * c["eventbridge_invocations"]  # SQS batches of 1 at worst
    lambda_invocations = commands * (1 + a["queries_per_command"]) + stream_invocations + subscription_invocations
    lambda_seconds = commands * (c["lambda_s"] + _stream_lambda_s(c))
    events_gb = commands * MEASURED_DEFAULTS["cost_deposit_event_item_bytes"] / 1e9
    bill = {
        "API Gateway": commands * c["http_requests"] * P["apigw_http_per_million"] / 1e6,
        "Lambda": lambda_invocations * P["lambda_request_per_million"] / 1e6 + lambda_seconds * gb_s * P["lambda_gb_s_arm64"],
        "DynamoDB requests": commands
        * (
            (c["events_wru"] + c["read_model_wru"]) * P["ddb_wru_per_million"]
            + (c["events_rru"] + c["read_model_rru"]) * P["ddb_rru_per_million"]
        )
        / 1e6,
        # the month's average stored volume: half of what it wrote (plus whatever earlier months left)
        "DynamoDB storage (month 1)": events_gb / 2 * _v(PRICES, "ddb_storage_gb_month"),
        "S3 snapshots": commands * (c["s3_get"] * P["s3_get_per_thousand"] + c["snapshot_put"] * P["s3_put_per_thousand"]) / 1000,
        "EventBridge": commands * c["integration_events"] * P["eventbridge_per_million"] / 1e6,
        "SQS": commands * c["eventbridge_invocations"] * a["sqs_requests_per_message"] * _v(PRICES, "sqs_standard_per_million") / 1e6,
        "CloudWatch Logs": lambda_invocations * logs,
    }
    bill["total"] = math.fsum(bill.values())
    bill["DynamoDB storage growth per month"] = events_gb * _v(PRICES, "ddb_storage_gb_month")
    return bill


def fan_out_costs(event_bytes: float, readers: int = 4) -> dict[str, float]:
    """USD per million events to give ``readers`` consumers the events, by design (decision in
    docs/decisions.md). Sustained 1,000 events/s (one Kinesis shard) for the shard-hour terms."""
    from bench.cost import PRICES as P

    million = 1e6
    hours = million / 1_000 / 3600  # a million events at one shard's 1,000 records/s
    record_kb = math.ceil((event_bytes + 300) / 1024)  # the Kinesis record: item image + envelope
    kinesis = (
        million * record_kb * _v(PRICES, "kinesis_cdc_per_million") / million
        + million * _v(PRICES, "kinesis_put_unit_per_million") / million
        + hours * _v(PRICES, "kinesis_shard_hour")
    )
    efo = kinesis + readers * (
        hours * _v(PRICES, "kinesis_efo_consumer_shard_hour") + million * record_kb / 1024 / 1024 * _v(PRICES, "kinesis_efo_gb")
    )
    # a router Lambda on the DynamoDB stream sending to one SQS FIFO queue per reader (batches of 10)
    router_lambda = million / 100 * (P["lambda_request_per_million"] / million + 0.05 * 1.0 * P["lambda_gb_s_arm64"])
    fifo = router_lambda + readers * 3 * million / 10 * _v(PRICES, "sqs_fifo_per_million") / million
    return {
        "ddb_streams_4_readers": 0.0,  # GetRecords by Lambda: no charge
        "kinesis_shared": kinesis,
        "kinesis_efo": efo,
        "router_sqs_fifo": fifo,
    }


def run(peaks: tuple[int, ...] = PEAKS) -> dict[str, float]:
    m = measured()
    c = per_command(m)
    s = _v(ASSUMPTIONS, "zipf_s")
    results: dict[str, float] = {
        "scale_stream_ceiling_commands_per_s": stream_ceiling(m),
        "scale_new_table_commands_per_s": _v(LIMITS, "ddb_new_table_wcu") / c["events_wru"],
        "scale_wru_per_command_events_table": c["events_wru"],
    }
    for peak in peaks:
        tag = f"{peak // 1000}k"
        rates = binding_rates(m, c, s, peak)
        first = min(rates, key=lambda k: rates[k])
        day = simulate_day(peak, m, c, s, random.Random(SEED))
        bill = monthly_bill(peak, day, c)
        results[f"scale_{tag}_first_bottleneck_code"] = float(first)
        results[f"scale_{tag}_first_bottleneck_at_commands_per_s"] = rates[first]
        # with the hot streams split (docs/scale.md), what binds next
        second = min((k for k in rates if k != 1), key=lambda k: rates[k])
        results[f"scale_{tag}_next_bottleneck_code"] = float(second)
        results[f"scale_{tag}_next_bottleneck_at_commands_per_s"] = rates[second]
        results[f"scale_{tag}_streams_over_ceiling_at_peak"] = day["streams_over_ceiling_at_peak"]
        results[f"scale_{tag}_refused_fraction_unsplit"] = day["refused_fraction"]
        results[f"scale_{tag}_partitions"] = day["partitions"]
        results[f"scale_{tag}_projection_lag_s_at_peak"] = day["projection_lag_s"]
        results[f"scale_{tag}_projection_lag_s_worst_hour"] = day["projection_lag_s_worst_hour"]
        # on-demand ramp: a new table takes 4,000 WRU at once, then 2x the previous peak per 30 minutes
        doublings = max(0, math.ceil(math.log2(peak * c["events_wru"] / _v(LIMITS, "ddb_new_table_wcu"))))
        results[f"scale_{tag}_new_table_minutes_to_peak"] = 30.0 * doublings
        results[f"scale_{tag}_monthly_usd"] = bill["total"]
        results[f"scale_{tag}_commands_per_month"] = day["commands_per_day"] * 30
        results[f"scale_{tag}_usd_per_million_commands"] = bill["total"] / (day["commands_per_day"] * 30) * 1e6
        for service, usd in bill.items():
            if service != "total":
                key = service.lower().replace(" ", "_").replace("(", "").replace(")", "")
                results[f"scale_{tag}_monthly_usd_{key}"] = usd
        for code, rate in rates.items():
            results[f"scale_{tag}_binds_at_{code}"] = rate if math.isfinite(rate) else -1.0
    for zipf in (0.8, 1.2):
        results[f"scale_first_bottleneck_at_commands_per_s_zipf_{zipf}"] = min(binding_rates(m, c, zipf, peaks[0]).values())
    for design, usd in fan_out_costs(m["cost_deposit_event_item_bytes"]).items():
        results[f"fan_out_usd_per_million_events_{design}"] = usd
    return {k: round(v, 4) for k, v in results.items()}


def report(results: dict[str, Any]) -> str:
    """The figures with their legend (for docs/scale.md)."""
    lines = [f"bottleneck codes: {BOTTLENECKS}"]
    lines += [f"{k}: {v}" for k, v in results.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from bench.__main__ import main

    sys.exit(main(["scale_model"]))
