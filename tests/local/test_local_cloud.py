"""moto alone loses conditional writes under concurrency; the local cloud's lock prevents it."""

from __future__ import annotations

import sys
import threading
import uuid

import pytest

from local.cloud import MotoServer, aws_client


def _lost_writes(server: MotoServer, rounds: int, threads: int = 8, stop_at_first: bool = False) -> int:
    """Each round, ``threads`` clients race one conditional put of a new key: more than one
    success means an event was silently overwritten (lost)."""
    table = f"race-{uuid.uuid4().hex[:8]}"
    ddb = aws_client("dynamodb", server.endpoint)
    ddb.create_table(
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    clients = [aws_client("dynamodb", server.endpoint) for _ in range(threads)]
    lost = 0
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make the interpreter switch threads as often as it can
    try:
        for r in range(rounds):
            wins: list[int] = []
            barrier = threading.Barrier(threads)

            def put(i: int, key: str = f"k{r}", barrier: threading.Barrier = barrier,
                    wins: list[int] = wins) -> None:
                barrier.wait()
                try:
                    clients[i].put_item(
                        TableName=table, Item={"pk": {"S": key}, "writer": {"N": str(i)}},
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                    wins.append(i)
                except clients[i].exceptions.ConditionalCheckFailedException:
                    pass

            workers = [threading.Thread(target=put, args=(i,)) for i in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            lost += max(0, len(wins) - 1)
            if stop_at_first and lost:
                break
    finally:
        sys.setswitchinterval(previous)
    return lost


@pytest.fixture
def server_factory():
    servers: list[MotoServer] = []

    def make(serialize: bool) -> MotoServer:
        srv = MotoServer(serialize=serialize).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


def test_moto_without_the_lock_loses_conditional_writes(server_factory):
    # The reason the lock exists. If this ever fails, moto became atomic: the lock may go.
    assert _lost_writes(server_factory(False), rounds=400, stop_at_first=True) > 0


def test_the_local_cloud_serializes_dynamodb_writes(server_factory):
    assert _lost_writes(server_factory(True), rounds=150) == 0


def test_throttling_chaos_is_retried_by_the_sdk_and_spares_the_runtime(server_factory):
    srv = server_factory(True)
    srv.chaos.throttle = 0.3
    srv.chaos.rng.seed(7)
    import boto3
    from botocore.config import Config

    app_client = boto3.client(
        "dynamodb", endpoint_url=srv.endpoint, region_name="us-east-1", aws_access_key_id="t",
        aws_secret_access_key="t", config=Config(retries={"mode": "legacy", "max_attempts": 10}),
    )
    table = f"thr-{uuid.uuid4().hex[:8]}"
    aws_client("dynamodb", srv.endpoint).create_table(  # the runtime's own client is never throttled
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    for i in range(20):
        app_client.put_item(TableName=table, Item={"pk": {"S": str(i)}})
    assert srv.chaos.throttled > 0
    assert aws_client("dynamodb", srv.endpoint).scan(TableName=table)["Count"] == 20
    no_retry = boto3.client(
        "dynamodb", endpoint_url=srv.endpoint, region_name="us-east-1", aws_access_key_id="t",
        aws_secret_access_key="t", config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    srv.chaos.throttle = 1.0
    with pytest.raises(no_retry.exceptions.ProvisionedThroughputExceededException):
        no_retry.get_item(TableName=table, Key={"pk": {"S": "1"}})


def test_stream_readers_survive_a_cancelled_transaction(server_factory):
    """moto's rollback swaps the table for a copy; open shard iterators must not see a phantom
    record of the cancelled write, and must see the writes after it."""
    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    streams = aws_client("dynamodbstreams", srv.endpoint)
    table = f"tx-{uuid.uuid4().hex[:8]}"
    arn = ddb.create_table(
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    ddb.put_item(TableName=table, Item={"pk": {"S": "c"}})
    seen = []
    for _ in range(3):
        page = streams.get_records(ShardIterator=iterator)
        seen += [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]]
        iterator = page["NextShardIterator"]
    assert seen == ["a", "c"]
    assert sorted(i["pk"]["S"] for i in ddb.scan(TableName=table)["Items"]) == ["a", "c"]
