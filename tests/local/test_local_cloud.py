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


# -- flat cost: transactions roll back from an undo log; stream shards are trimmed ----------------

ACCOUNT = "123456789012"


def _backend():
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT]["us-east-1"]


def _table(srv: MotoServer, *, range_key: bool = False, stream: bool = True) -> str:
    name = f"flat-{uuid.uuid4().hex[:8]}"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "N"})
    extra = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}} if stream else {}
    aws_client("dynamodb", srv.endpoint).create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST", **extra)
    return name


def _fill(name: str, n: int) -> None:
    """n items written straight into the backend (the HTTP path would take minutes for 20k)."""
    backend = _backend()
    for i in range(n):
        backend.put_item(name, {"pk": {"S": f"filler-{i}"}, "payload": {"S": "x" * 200}})


def _counting_deepcopy(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    import copy

    calls = {"n": 0}
    real = copy.deepcopy

    def deepcopy(value, memo=None, _nil=[]):  # noqa: B006 - copy.deepcopy's own signature
        calls["n"] += 1
        return real(value, memo, _nil)

    monkeypatch.setattr(copy, "deepcopy", deepcopy)
    return calls


def _mixed_transactions(ddb, name: str) -> None:
    """A committed transaction (two puts and an update of an existing item) and a cancelled one."""
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": name, "Item": {"pk": {"S": "new-1"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": name, "Item": {"pk": {"S": "new-2"}}}},
        {"Update": {"TableName": name, "Key": {"pk": {"S": "filler-3"}}, "UpdateExpression": "SET n = :n",
                    "ExpressionAttributeValues": {":n": {"N": "1"}}}},
    ])
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "new-3"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "new-1"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        ])


def test_a_transaction_copies_what_it_touches_not_the_table(server_factory, monkeypatch):
    """moto deep-copies every touched table (stream shard included) once per item: on a 20,000-item
    table that is ~20,000 copies per transaction. The undo log copies the items it replaces."""
    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    small, big = _table(srv), _table(srv)
    _fill(small, 100)
    _fill(big, 20_000)
    counted = {}
    for name in (small, big):
        calls = _counting_deepcopy(monkeypatch)
        _mixed_transactions(ddb, name)
        counted[name] = calls["n"]
        monkeypatch.undo()
    assert counted[big] == counted[small] < 200, counted


def test_a_cancelled_transaction_restores_exactly_its_items(server_factory):
    """All-or-nothing with the undo log: puts, an update and a delete of a cancelled transaction
    are undone on a hash+range table; no stream record of them stays; other items are untouched."""
    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    streams = aws_client("dynamodbstreams", srv.endpoint)
    name = _table(srv, range_key=True)
    for sk in (1, 2, 3):
        ddb.put_item(TableName=name, Item={"pk": {"S": "s"}, "sk": {"N": str(sk)}, "v": {"S": "old"}})
    table = _backend().tables[name]
    head = table.stream_shard.starting_sequence_number + len(table.stream_shard.items)
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as info:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": name, "Key": {"pk": {"S": "s"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"S": "new"}}}},
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "s"}, "sk": {"N": "2"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "s"}, "sk": {"N": "4"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "other"}, "sk": {"N": "1"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "s"}, "sk": {"N": "3"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    reasons = [r["Code"] for r in info.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    items = {(i["pk"]["S"], i["sk"]["N"]): i.get("v", {}).get("S") for i in ddb.scan(TableName=name)["Items"]}
    assert items == {("s", "1"): "old", ("s", "2"): "old", ("s", "3"): "old"}
    assert table is _backend().tables[name]  # same object: open iterators keep reading it
    assert table.stream_shard.starting_sequence_number + len(table.stream_shard.items) == head
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert len(streams.get_records(ShardIterator=it)["Records"]) == 3
    # A key repeated in one transaction is a validation error: the earlier write is undone too.
    with pytest.raises(ddb.exceptions.ClientError):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "s"}, "sk": {"N": "9"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "s"}, "sk": {"N": "9"}}}},
        ])
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "s"}, "sk": {"N": "9"}})


def _reader(srv: MotoServer, name: str, kind: str = "TRIM_HORIZON"):
    ddb = aws_client("dynamodb", srv.endpoint)
    streams = aws_client("dynamodbstreams", srv.endpoint)
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return streams, streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind)["ShardIterator"]


def _drain(streams, iterator: str, limit: int = 1000) -> tuple[list[str], str]:
    keys: list[str] = []
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=limit)
        iterator = page["NextShardIterator"]
        keys += [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]]
        if not page["Records"] or limit < 1000:
            return keys, iterator


def test_a_shard_keeps_only_what_some_reader_has_not_passed(server_factory):
    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv)
    shard = _backend().tables[name].stream_shard
    streams, fast = _reader(srv, name)
    _, slow = _reader(srv, name)
    for i in range(20):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    seen, fast = _drain(streams, fast)
    assert seen == [f"k{i}" for i in range(20)]
    retention = srv.middleware.retention
    retention.keep_passed = 0  # no passed records kept back for a redrive (below)
    with srv.middleware.lock:  # (trim's count covers every table of the server: count this shard's)
        retention.trim()
    assert len(shard.items) == 20  # the slow reader has read nothing yet
    part, slow = _drain(streams, slow, limit=5)
    assert part == [f"k{i}" for i in range(5)]
    with srv.middleware.lock:
        retention.trim()
    assert len(shard.items) == 15
    rest, slow = _drain(streams, slow)
    assert rest == [f"k{i}" for i in range(5, 20)]  # nothing the slow reader had not read was lost
    with srv.middleware.lock:
        retention.trim()
    assert shard.items == []
    ddb.put_item(TableName=name, Item={"pk": {"S": "after"}})
    for it in (fast, slow):  # sequence numbers go on: both readers get the new record
        assert _drain(streams, it)[0] == ["after"]


def test_a_reader_of_trimmed_records_gets_trimmed_data_access(server_factory):
    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv)
    streams, it = _reader(srv, name)
    for i in range(3):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    _, latest = _drain(streams, it)
    srv.middleware.retention.keep_passed = 0
    with srv.middleware.lock:
        srv.middleware.retention.trim()
    assert _backend().tables[name].stream_shard.items == []
    with pytest.raises(streams.exceptions.ClientError) as info:
        streams.get_records(ShardIterator=it)  # a used iterator, retried after its records went
    assert info.value.response["Error"]["Code"] == "TrimmedDataAccessException"
    assert streams.get_records(ShardIterator=latest)["Records"] == []


def test_a_passed_discarded_batch_stays_readable_for_a_redrive(server_factory):
    """An on-failure destination names a range the reader has already passed; ``make redrive``
    reads it back (AT_SEQUENCE_NUMBER). Trimming every passed record at once made that read a
    TrimmedDataAccessException (a flaky local-runtime test): the newest ``keep_passed`` stay."""
    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv)
    streams, it = _reader(srv, name)
    for i in range(8):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    page = streams.get_records(ShardIterator=it)
    discarded = page["Records"][2]["dynamodb"]["SequenceNumber"]
    _drain(streams, page["NextShardIterator"])  # the reader is past every record
    retention = srv.middleware.retention
    retention.keep_passed = 6
    with srv.middleware.lock:
        retention.trim()
    kept = [r.record["dynamodb"]["Keys"]["pk"]["S"] for r in _backend().tables[name].stream_shard.items]
    assert kept == [f"k{i}" for i in range(2, 8)]  # k0, k1 went: older than the six passed ones kept
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard_id = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    at = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                    SequenceNumber=discarded)["ShardIterator"]
    assert streams.get_records(ShardIterator=at, Limit=1)["Records"][0]["dynamodb"]["Keys"]["pk"]["S"] == "k2"


def test_unread_records_go_after_24_hours_and_idle_iterators_after_15_minutes(server_factory):
    import datetime as dt
    import time

    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    unread = _table(srv)  # nobody ever reads its stream: it keeps 24 h
    for i in range(4):
        ddb.put_item(TableName=unread, Item={"pk": {"S": f"k{i}"}})
    shard = _backend().tables[unread].stream_shard
    retention = srv.middleware.retention
    with srv.middleware.lock:
        retention.trim()
    assert len(shard.items) == 4
    for rec in shard.items[:3]:
        rec.record["dynamodb"]["ApproximateCreationDateTime"] -= dt.timedelta(hours=25)
    with srv.middleware.lock:
        retention.trim()
    assert [r.record["dynamodb"]["Keys"]["pk"]["S"] for r in shard.items] == ["k3"]

    held = _table(srv)
    streams, it = _reader(srv, held)  # handed out, never used: holds the shard back ...
    for i in range(5):
        ddb.put_item(TableName=held, Item={"pk": {"S": f"k{i}"}})
    retention.keep_passed = 0
    held_shard = _backend().tables[held].stream_shard
    with srv.middleware.lock:
        retention.trim()
        assert len(held_shard.items) == 5
        # ... until it expires, 15 minutes later (as on AWS)
        retention.trim(now=time.monotonic() + 16 * 60)
        assert held_shard.items == []
    iterators = next(iter(next(iter(_streams_backends().values())).values())).shard_iterators
    assert len(iterators) == 0


def _streams_backends():
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    return {a: dict(r.items()) for a, r in dynamodbstreams_backends.items()}


def test_a_long_session_keeps_the_shard_and_iterators_bounded(server_factory):
    """2,000 writes read as they come (a stream poller): the shard and the iterator table stay
    small; without trimming the shard holds all 2,000 records."""
    srv = server_factory(True)
    srv.middleware.retention.interval_s = 0.0  # trim on every request (normally once a second)
    srv.middleware.retention.keep_passed = 5
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv)
    shard = _backend().tables[name].stream_shard
    streams, it = _reader(srv, name)
    longest, read = 0, 0
    for i in range(2000):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
        if i % 10 == 9:
            page = streams.get_records(ShardIterator=it)
            it, read = page["NextShardIterator"], read + len(page["Records"])
            longest = max(longest, len(shard.items))
    assert read == 2000
    assert longest <= 5 + 20, longest


def test_a_query_reads_its_partition_not_the_table(server_factory, monkeypatch):
    """moto sorts every item of the table for each Query; the local cloud hands it the queried
    partition only: same answers (range conditions, order, limit, paging), cost independent of
    the other partitions (counted as items compared, not timed)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv, range_key=True, stream=False)
    backend = _backend()
    for sk in range(1, 31):
        ddb.put_item(TableName=name, Item={"pk": {"S": "stream-a"}, "sk": {"N": str(sk)}})
    compared = {"n": 0}
    real_eq = DynamoType.__eq__

    def eq(self, other):
        compared["n"] += 1
        return real_eq(self, other)

    def query_all(**extra):
        pages, start = [], None
        while True:
            kw = {"ExclusiveStartKey": start} if start else {}
            page = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk > :v",
                             ExpressionAttributeValues={":p": {"S": "stream-a"}, ":v": {"N": "10"}},
                             Limit=7, **extra, **kw)
            pages += [int(i["sk"]["N"]) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return pages

    monkeypatch.setattr(DynamoType, "__eq__", eq)
    monkeypatch.setattr(DynamoType, "__hash__", DynamoType.__hash__)
    assert query_all() == list(range(11, 31))
    small = compared["n"]
    monkeypatch.undo()
    for i in range(5000):  # other partitions
        backend.put_item(name, {"pk": {"S": f"other-{i}"}, "sk": {"N": "1"}})
    monkeypatch.setattr(DynamoType, "__eq__", eq)
    monkeypatch.setattr(DynamoType, "__hash__", DynamoType.__hash__)
    compared["n"] = 0
    assert query_all() == list(range(11, 31))
    assert query_all(ScanIndexForward=False) == list(range(30, 10, -1))
    monkeypatch.undo()
    assert compared["n"] <= 2 * small + 50, (small, compared["n"])


def test_a_query_costs_the_answer_not_the_stream(server_factory, monkeypatch):
    """The read of a stream's tail (``version >= n``) and of its head (newest first, Limit 1) on a
    stream of 3,000 events compares about as many keys as on one of 30: the partition's sort keys
    are kept in order and searched (counted, not timed). Answers match a plain filter, through
    writes, deletes and a cancelled transaction."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    srv = server_factory(True)
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv, range_key=True, stream=False)
    backend = _backend()

    def tail(pk, lo, **kw):
        page = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk >= :lo",
                         ExpressionAttributeValues={":p": {"S": pk}, ":lo": {"N": str(lo)}}, **kw)
        return [int(i["sk"]["N"]) for i in page["Items"]], page.get("LastEvaluatedKey")

    def head(pk):
        page = ddb.query(TableName=name, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues={":p": {"S": pk}}, ScanIndexForward=False, Limit=1)
        return [int(i["sk"]["N"]) for i in page["Items"]], page.get("LastEvaluatedKey")

    compared = {"n": 0}
    real_compare = DynamoType.compare

    def compare(self, *args):
        compared["n"] += 1
        return real_compare(self, *args)

    for pk, n in (("short", 30), ("long", 3000)):
        for sk in range(1, n + 1):
            backend.put_item(name, {"pk": {"S": pk}, "sk": {"N": str(sk)}})
    counts = {}
    for pk, n in (("short", 30), ("long", 3000)):
        tail(pk, 1)  # the first query of a partition builds its index
        monkeypatch.setattr(DynamoType, "compare", compare)
        compared["n"] = 0
        assert tail(pk, n - 4) == (list(range(n - 4, n + 1)), None)
        assert head(pk)[0] == [n]
        counts[pk] = compared["n"]
        monkeypatch.undo()
    assert counts["long"] <= counts["short"] + 5, counts
    # paging, limits and writes keep answers exact
    items, last = tail("long", 2990, Limit=4)
    assert items == [2990, 2991, 2992, 2993] and last is not None
    assert tail("long", 2990, Limit=4, ExclusiveStartKey=last)[0] == [2994, 2995, 2996, 2997]
    ddb.put_item(TableName=name, Item={"pk": {"S": "long"}, "sk": {"N": "3001"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "long"}, "sk": {"N": "2999"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "long"}, "sk": {"N": "3002"}}}},
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "long"}, "sk": {"N": "2998"}}}},
            {"Put": {"TableName": name, "Item": {"pk": {"S": "long"}, "sk": {"N": "1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert tail("long", 2997)[0] == [2997, 2998, 3000, 3001]
    assert head("long")[0] == [3001]
    between = ddb.query(TableName=name, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                        ExpressionAttributeValues={":p": {"S": "long"}, ":a": {"N": "10"}, ":b": {"N": "12"}})
    assert [int(i["sk"]["N"]) for i in between["Items"]] == [10, 11, 12]


def test_sqs_remembers_a_bounded_number_of_deleted_receipts(server_factory):
    """moto keeps every deleted receipt handle (so a repeated delete succeeds); the local cloud
    keeps the latest 10,000: a repeated delete still succeeds, the set stops growing."""
    from moto.sqs.models import sqs_backends

    srv = server_factory(True)
    sqs = aws_client("sqs", srv.endpoint)
    name = f"q-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue = sqs_backends[ACCOUNT]["us-east-1"].queues[name]
    for i in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    handles = []
    while len(handles) < 30:
        handles += [m["ReceiptHandle"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                    .get("Messages", [])]
    for h in handles[:15]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=h)
    queue.deleted_messages.cap = 10
    for h in handles[15:]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=h)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[-1])  # a repeated delete still succeeds
    assert len(queue.deleted_messages) == 10


# -- Time to Live: moto stores the setting, the local cloud deletes -------------------------------
def test_expired_items_are_deleted_as_dynamodb_ttl_does(server_factory):
    """Items whose TTL attribute (epoch seconds, a Number) is past are deleted by the sweep, with a
    REMOVE stream record from the TTL service; the others stay: not yet expired, no attribute,
    not a Number, more than five years past (DynamoDB ignores those), tables without TTL. Without
    the sweep nothing ever goes (moto only records the setting)."""
    import time

    from local.cloud import TTL_IDENTITY

    srv = server_factory(True)
    ttl = srv.middleware.ttl
    ttl.interval_s = 3600.0  # swept by hand below
    ddb = aws_client("dynamodb", srv.endpoint)
    name, plain = _table(srv, range_key=True), _table(srv, stream=False)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    now = int(time.time())
    for sk, expires in enumerate([{"N": str(now - 10)}, {"N": str(now + 3600)}, None, {"S": str(now - 10)},
                                  {"N": str(now - 6 * 365 * 24 * 3600)}, {"N": str(now - 1)}]):
        item = {"pk": {"S": "p"}, "sk": {"N": str(sk)}, **({"expires_at": expires} if expires else {})}
        ddb.put_item(TableName=name, Item=item)
    ddb.put_item(TableName=plain, Item={"pk": {"S": "q"}, "expires_at": {"N": str(now - 10)}})
    streams, it = _reader(srv, name, "LATEST")

    with srv.middleware.lock:
        assert ttl.sweep() == 2
    left = ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    assert [int(i["sk"]["N"]) for i in left["Items"]] == [1, 2, 3, 4]
    assert len(ddb.scan(TableName=plain)["Items"]) == 1
    records = streams.get_records(ShardIterator=it)["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["N"]) for r in records] == [("REMOVE", "0"), ("REMOVE", "5")]
    assert all(r["userIdentity"] == TTL_IDENTITY for r in records)
    with srv.middleware.lock:
        assert ttl.sweep() == 0 and ttl.deleted == 2


def test_the_ttl_sweep_is_bounded_and_resumes(server_factory):
    """One sweep looks at ``per_sweep`` items at most (its cost under the lock does not grow with
    the table); the next ones go on from there until every expired item is gone."""
    import time

    srv = server_factory(True)
    ttl = srv.middleware.ttl
    ttl.interval_s, ttl.per_sweep = 3600.0, 50
    name = _table(srv, stream=False)
    aws_client("dynamodb", srv.endpoint).update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    backend = _backend()
    for i in range(300):
        backend.put_item(name, {"pk": {"S": f"k{i}"}, "expires_at": {"N": str(int(time.time()) - 5 + (i % 2) * 3600)}})
    swept = []
    with srv.middleware.lock:
        # Other tests' TTL tables share the backend and the budget: sweep until this table is done.
        while len(backend.tables[name].items) > 150 and len(swept) < 1000:
            swept.append(ttl.sweep())
    assert all(n <= 50 for n in swept) and len([n for n in swept if n]) >= 3
    assert len(backend.tables[name].items) == 150


def test_a_large_ttl_table_does_not_starve_the_next(server_factory):
    """A pass visits every TTL table once before the next starts. The old sweep re-listed a table
    whose list ran out at the start of a sweep; a table of exactly n budgets (a long session's
    idempotency records) ran out as the budget did, every time, and the tables after it were
    never swept."""
    import time

    srv = server_factory(True)
    ttl = srv.middleware.ttl
    ttl.interval_s, ttl.per_sweep = 3600.0, 40
    backend = _backend()
    large, small = _table(srv, stream=False), _table(srv, stream=False)
    ddb = aws_client("dynamodb", srv.endpoint)
    for name in (large, small):
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    later, past = str(int(time.time()) + 3600), str(int(time.time()) - 5)
    for i in range(80):  # none expired: exactly two budgets (the old sweep then never reached the next table)
        backend.put_item(large, {"pk": {"S": f"k{i}"}, "expires_at": {"N": later}})
    for i in range(5):
        backend.put_item(small, {"pk": {"S": f"k{i}"}, "expires_at": {"N": past}})
    others = sum(len(t.items) for t in backend.tables.values() if t.ttl and t.name not in (large, small))
    with srv.middleware.lock:
        for _ in range((others + 85) // 40 + 3):  # two passes at most
            ttl.sweep()
    assert len(backend.tables[small].items) == 0
    assert len(backend.tables[large].items) == 80


def test_what_moto_replaced_or_trimmed_is_freed(server_factory):
    """moto's ``BaseModel`` appends every instance to a class list for ever: an overwritten item,
    a trimmed stream record, a used shard iterator, a deleted SQS message would stay in memory for
    the life of ``make dev``. In the local cloud they are freed (the lists only see the live ones)."""
    import gc
    import time
    import weakref

    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodbstreams.models import ShardIterator

    srv = server_factory(True)
    srv.middleware.retention.interval_s = 0.0
    srv.middleware.retention.keep_passed = 0
    ddb = aws_client("dynamodb", srv.endpoint)
    name = _table(srv)
    table = _backend().tables[name]
    ddb.put_item(TableName=name, Item={"pk": {"S": "k"}, "n": {"N": "0"}})
    first_item = weakref.ref(next(iter(table.items.values())))
    first_record = weakref.ref(table.stream_shard.items[0])
    streams, it = _reader(srv, name)
    for i in range(1, 200):
        ddb.put_item(TableName=name, Item={"pk": {"S": "k"}, "n": {"N": str(i)}})
        page = streams.get_records(ShardIterator=it)
        it = page["NextShardIterator"]
    sqs = aws_client("sqs", srv.endpoint)
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="once")
    [got] = sqs.receive_message(QueueUrl=queue)["Messages"]
    from moto.sqs.models import Message

    message = weakref.ref(next(m for m in Message.instances_tracked if m.body == "once"))
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"])
    with srv.middleware.lock:  # used iterators are kept a minute (a retried GetRecords), then dropped
        srv.middleware.retention.trim(now=time.monotonic() + 120)
    gc.collect()
    assert first_item() is None and first_record() is None and message() is None
    assert len([i for i in Item.instances_tracked if i.hash_key.value == "k"]) == 1
    assert len(list(ShardIterator.instances_tracked)) < 5
