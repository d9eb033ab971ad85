"""``make redrive``: batches the stream mapping gave up on, read back from the stream by the
sequence range of Lambda's on-failure record, applied exactly once through the normal path."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from projection_support import (
    assert_accounts_match_store,
    assert_orders_match_store,
    seed_accounts,
    seed_orders,
    stream_of,
)


def on_failure(harness: Any, records: list[dict[str, Any]]) -> str:
    """Lambda's on-failure record for ``records`` (the local runtime's ESM builds the same)."""
    from local.esm import on_failure_message

    arn = harness.dynamodb.describe_table(TableName=harness.events_table)["Table"]["LatestStreamArn"]
    [shard] = harness.reader.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    message = on_failure_message(
        records, shard_id=shard["ShardId"], stream_arn=arn, function_arn="arn:aws:lambda:::function:x", invokes=11
    )
    info = message["DDBStreamBatchInfo"]
    assert set(info) == {
        "shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
        "approximateArrivalOfLastRecord", "batchSize", "streamArn",
    }
    assert "Records" not in json.dumps(message) and message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    return json.dumps(message)


@pytest.fixture
def failed_queue(harness) -> str:
    return harness.sqs.create_queue(QueueName="cairn-failed-batches")["QueueUrl"]


def depth(harness: Any, queue: str) -> int:
    attributes = harness.sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def consumer(harness: Any, name: str, queue: str, apply: Any) -> Any:
    from cairn_tools.redrive import CONSUMERS, Consumer

    return Consumer(name, queue, CONSUMERS[name], apply)


def test_orders_projections_batch_is_applied_once(harness, failed_queue):
    from cairn_tools.redrive import projections_applier, redrive

    rng = random.Random(41)
    order_ids = seed_orders(harness, rng, 8)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    delivered, lost = records[: len(records) // 3], records[len(records) // 3 :]
    assert harness.orders(delivered) == {"batchItemFailures": []}
    # part of the lost range got through on a later attempt before the mapping gave up
    assert harness.orders(lost[: len(lost) // 4]) == {"batchItemFailures": []}
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=on_failure(harness, lost))
    engines = [harness.engine(n) for n in ("order_view", "user_orders", "analytics")]
    orders = consumer(harness, "OrdersProjections", failed_queue, projections_applier(engines))

    dry = redrive(orders, harness.sqs, harness.reader.streams, dry_run=True)
    assert (dry.batches, dry.redriven, dry.events) == (1, 0, len(lost))
    assert depth(harness, failed_queue) == 1
    with pytest.raises(AssertionError):
        assert_orders_match_store(harness, order_ids)

    result = redrive(orders, harness.sqs, harness.reader.streams)
    assert (result.batches, result.redriven, result.failed) == (1, 1, 0), result.errors
    assert result.streams == len({stream_of(r) for r in lost}) and result.events > 0
    assert depth(harness, failed_queue) == 0
    assert_orders_match_store(harness, order_ids)

    # the same batch again (a message delivered twice): nothing is applied twice
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=on_failure(harness, lost))
    again = redrive(orders, harness.sqs, harness.reader.streams)
    assert (again.redriven, again.events) == (1, 0)
    assert_orders_match_store(harness, order_ids)


def test_accounts_projections_batch_is_applied(harness, failed_queue):
    from cairn_tools.redrive import projections_applier, redrive

    account_ids = seed_accounts(harness, random.Random(42), 5)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("account-")]
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=on_failure(harness, records))
    accounts = consumer(harness, "AccountsProjections", failed_queue, projections_applier([harness.engine("account_view")]))
    result = redrive(accounts, harness.sqs, harness.reader.streams)
    assert (result.redriven, result.failed, result.events) == (1, 0, len(records))
    assert_accounts_match_store(harness, account_ids)


def test_a_message_that_is_not_a_stream_batch_stays_in_the_queue(harness, failed_queue):
    from cairn_tools.redrive import projections_applier, redrive

    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=json.dumps({"records": []}))
    orders = consumer(harness, "OrdersProjections", failed_queue, projections_applier([harness.engine("order_view")]))
    result = redrive(orders, harness.sqs, harness.reader.streams)
    assert (result.batches, result.failed, result.redriven) == (1, 1, 0)
    assert "DDBStreamBatchInfo" in result.errors[0]
    assert depth(harness, failed_queue) == 1


def test_snapshotter_batch_takes_the_snapshots(harness, failed_queue, snapshot_bucket, monkeypatch):
    from accounts import app as accounts_app
    from cairn_platform import snapshotter
    from cairn_tools.redrive import redrive, snapshotter_applier
    from orders import app as orders_app

    monkeypatch.setenv("SNAPSHOT_BUCKET", snapshot_bucket)
    for cached in (orders_app.runtime, accounts_app.runtime, snapshotter._runtime):
        cached.cache_clear()
    order_ids = seed_orders(harness, random.Random(43), 4)
    records = harness.reader.new()
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=on_failure(harness, records))
    result = redrive(consumer(harness, "Snapshotter", failed_queue, snapshotter_applier()), harness.sqs,
                     harness.reader.streams)
    assert (result.redriven, result.streams, result.events) == (1, len(order_ids), len(order_ids))
    runtime = orders_app.runtime()
    for order_id in order_ids:
        snapshot = runtime.snapshots.get(order_id, orders_app.decider.state_schema_version)
        assert snapshot.version == harness.orders_store.current_version(order_id)
    for cached in (orders_app.runtime, accounts_app.runtime, snapshotter._runtime):
        cached.cache_clear()


def test_cli_redrive_dry_run_and_json(harness, failed_queue, capsys):
    from cairn_tools.__main__ import main

    order_ids = seed_orders(harness, random.Random(44), 3)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=on_failure(harness, records))
    assert main(["redrive", "order_view", "--queue-url", failed_queue, "--dry-run", "--json"]) == 0
    captured = capsys.readouterr()
    [row] = json.loads(captured.out)["redrives"]
    assert row["consumer"] == "OrdersProjections" and row["redriven"] == 0 and row["events"] == len(records)
    assert "redrive OrdersProjections (dry run) [" in captured.err and "batches" in captured.err
    assert main(["redrive", "OrdersProjections", "--queue-url", failed_queue]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["consumer", "batches", "redriven", "failed", "skipped", "streams", "events"]
    assert_orders_match_store(harness, order_ids)


def test_kinesis_batch_is_read_back_from_the_fan_out_stream(harness, failed_queue):
    """With the Kinesis fan-out (issue 18) the on-failure record carries ``KinesisBatchInfo``: the
    range is read back from the Kinesis shard (the changes as DynamoDB writes them there)."""
    from cairn.aws import client
    from cairn_tools.redrive import projections_applier, redrive
    from local.esm import on_failure_message
    from local.kinesis import change_record, partition_key

    order_ids = seed_orders(harness, random.Random(43), 5)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName="cairn-fan-out", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="cairn-fan-out")["StreamDescriptionSummary"]["StreamARN"]
    [shard] = kinesis.list_shards(StreamName="cairn-fan-out")["Shards"]
    put = kinesis.put_records(StreamName="cairn-fan-out", Records=[
        {"Data": json.dumps(change_record(r, harness.events_table)).encode(), "PartitionKey": partition_key(r)}
        for r in records])
    sequences = [entry["SequenceNumber"] for entry in put["Records"]]
    ranged = [{"dynamodb": {"SequenceNumber": seq, "ApproximateCreationDateTime": r["dynamodb"]["ApproximateCreationDateTime"]}}
              for seq, r in zip(sequences, records, strict=True)]
    message = on_failure_message(ranged, shard_id=shard["ShardId"], stream_arn=arn,
                                 function_arn="arn:aws:lambda:::function:x", invokes=11)
    message["KinesisBatchInfo"] = message.pop("DDBStreamBatchInfo")
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=json.dumps(message))
    engines = [harness.engine(n) for n in ("order_view", "user_orders", "analytics")]
    orders = consumer(harness, "OrdersProjections", failed_queue, projections_applier(engines))
    with pytest.raises(AssertionError):
        assert_orders_match_store(harness, order_ids)
    without = redrive(orders, harness.sqs, harness.reader.streams)  # no Kinesis client: kept
    assert (without.redriven, without.failed) == (0, 1) and "Kinesis" in without.errors[0]
    result = redrive(orders, harness.sqs, harness.reader.streams, kinesis=kinesis)
    assert (result.redriven, result.failed) == (1, 0), result.errors
    assert result.streams == len({stream_of(r) for r in records})
    assert_orders_match_store(harness, order_ids)
    # a batch whose records left the stream (retention) stays in the queue, not "applied"
    message["KinesisBatchInfo"]["startSequenceNumber"] = str(int(sequences[0]) - 1)
    message["KinesisBatchInfo"]["endSequenceNumber"] = str(int(sequences[0]) - 1)
    harness.sqs.send_message(QueueUrl=failed_queue, MessageBody=json.dumps(message))
    gone = redrive(orders, harness.sqs, harness.reader.streams, kinesis=kinesis)
    assert (gone.redriven, gone.failed) == (0, 1) and "no longer in the stream" in gone.errors[0]


def test_only_the_batches_holding_the_fixed_stream_are_redriven(harness, failed_queue):
    """The on-failure queue is shared by every stream of a consumer: a batch that still fails must
    not stop (nor be mistaken for) the one whose stream was fixed. ``only`` redrives the batches
    holding the named streams and leaves the others queued, untouched; each batch read lists its
    streams (what ``--dry-run`` shows)."""
    from cairn_tools.redrive import RedriveError, redrive

    seed_orders(harness, random.Random(45), 2)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("order-")]
    fixed, broken = sorted({stream_of(r) for r in records})
    for stream in (broken, fixed):  # the broken stream's batch first, as in a shared queue
        harness.sqs.send_message(QueueUrl=failed_queue,
                                 MessageBody=on_failure(harness, [r for r in records if stream_of(r) == stream]))
    applied: list[str] = []

    def apply(stream_id: str, versions: list[int]) -> int:
        if stream_id == broken:
            raise RedriveError(f"corrupt event in stream {stream_id!r}")
        applied.append(stream_id)
        return len(versions)

    orders = consumer(harness, "OrdersProjections", failed_queue, apply)
    dry = redrive(orders, harness.sqs, harness.reader.streams, dry_run=True)
    assert [b["streams"] for b in dry.held] in ([[broken], [fixed]], [[fixed], [broken]]) and applied == []
    result = redrive(orders, harness.sqs, harness.reader.streams, only=[fixed])
    assert (result.batches, result.redriven, result.failed, result.skipped) == (2, 1, 0, 1), result.errors
    assert applied == [fixed] and depth(harness, failed_queue) == 1
    everything = redrive(orders, harness.sqs, harness.reader.streams)  # the broken one still fails, stays
    assert (everything.redriven, everything.failed) == (0, 1) and broken in everything.errors[0]
    assert applied == [fixed] and depth(harness, failed_queue) == 1
