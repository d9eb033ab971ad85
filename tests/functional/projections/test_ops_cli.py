"""``python -m cairn_tools``: one CLI, its subcommands' help, table and --json output, optional
commands discovered when their module exists."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from projection_support import seed_orders, stream_of

ROOT = Path(__file__).resolve().parents[3]


def test_help_lists_every_command_and_each_has_help():
    from cairn_tools.__main__ import available

    names = available()
    for name in ("status", "rebuild", "audit", "unpark"):
        assert name in names
    out = subprocess.run(
        [sys.executable, "-m", "cairn_tools", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for name in names:
        assert f"\n  {name} " in out
    for name in names:
        sub = subprocess.run(
            [sys.executable, "-m", "cairn_tools", name, "--help"], cwd=ROOT, capture_output=True, text=True
        )
        assert sub.returncode == 0, sub.stderr
        assert f"python -m cairn_tools {name}" in sub.stdout


def test_unknown_command_fails_with_usage(capsys):
    from cairn_tools.__main__ import main

    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_status_table_and_json(harness, capsys):
    from cairn_tools.__main__ import main

    rng = random.Random(4)
    seed_orders(harness, rng, 3)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    assert harness.orders(records) == {"batchItemFailures": []}
    capsys.readouterr()  # the handler's EMF line
    assert main(["status", "order_view"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "name", "generation", "streams", "events_applied", "lag_events", "lag_seconds", "parked_streams",
        "failed_batches",
    ]
    assert lines[2].split()[:3] == ["order_view", "1", "3"]
    assert main(["status", "all", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["projections"]
    assert [p["name"] for p in status] == ["order_view", "user_orders", "analytics", "account_view"]
    view = status[0]
    assert view["streams"] == 3 and view["lag_seconds"] == 0 and view["failed_batches"] == 0


def test_audit_json(harness, capsys):
    from cairn_tools.__main__ import main

    seed_orders(harness, random.Random(6), 2)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    harness.orders(records)
    capsys.readouterr()
    assert main(["audit", "order_view", "--json"]) == 0
    [audit] = json.loads(capsys.readouterr().out)["audits"]
    assert audit["projection"] == "order_view" and audit["streams"] == 2 and audit["differences"] == 0


def test_status_lag_seconds_and_failed_batches_from_parked_events_and_failed_queue(harness, capsys):
    """A parked event and a batch in the on-failure queue are stored-but-not-applied: both show."""
    from projection_support import version_of

    from cairn_tools.__main__ import main
    from local.esm import on_failure_message

    rng = random.Random(8)
    [victim, other] = seed_orders(harness, rng, 2)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    for record in records:
        if stream_of(record) == victim and version_of(record) == 1:
            record["dynamodb"]["NewImage"]["data"] = {"S": "{not json"}
    for _ in range(3):
        harness.orders(records)
    capsys.readouterr()
    failed = harness.sqs.create_queue(QueueName="orders-failed")["QueueUrl"]
    assert main(["status", "order_view", "--json", "--failed-queue-url", failed]) == 0
    [view] = json.loads(capsys.readouterr().out)["projections"]
    assert view["parked_streams"] == 1 and view["failed_batches"] == 0
    # seeded events occurred in November 2026: the parked one is that old
    assert view["lag_seconds"] > 3600

    arn = harness.dynamodb.describe_table(TableName=harness.events_table)["Table"]["LatestStreamArn"]
    other_records = [r for r in records if stream_of(r) == other]
    message = on_failure_message(other_records, shard_id="shardId-x", stream_arn=arn, function_arn="arn:x")
    harness.sqs.send_message(QueueUrl=failed, MessageBody=json.dumps(message))
    assert main(["status", "order_view", "--json", "--failed-queue-url", failed]) == 0
    [view] = json.loads(capsys.readouterr().out)["projections"]
    assert view["failed_batches"] == 1 and view["lag_seconds"] > 0


def test_a_poison_batch_reports_events_behind(harness, capsys):
    from projection_support import version_of

    [victim] = seed_orders(harness, random.Random(9), 1)
    records = [r for r in harness.reader.new() if stream_of(r) == victim]
    for record in records:
        if version_of(record) == 1:
            record["dynamodb"]["NewImage"]["data"] = {"S": "{not json"}
    capsys.readouterr()
    harness.orders(records)
    lag = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if line.startswith('{"_aws"') and '"EventsBehind"' in line]
    assert [doc["EventsBehind"] for doc in lag] == [[float(len(records))]]
    assert lag[0]["consumer"] == "OrdersProjections" and lag[0]["LagSeconds"][0] > 0
