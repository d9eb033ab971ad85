"""Shared reads and transactions of the projection engine on moto: the checkpoints of every
projection and stream in few BatchGetItem calls, many streams (and projections) per
TransactWriteItems, and the per-stream fallback when a shared transaction does not commit.

moto enforces DynamoDB's transaction rules (<= 100 items, each item once), so a wrong grouping
fails here as it would on AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from cairn.events import EventRegistry, NewEvent
from cairn.projections import Parking, Projection, ProjectionEngine, StreamBatch, Writes, process_together
from cairn.projections.layout import checkpoint_key
from cairn.projections.status import generation_stats
from cairn.store import InMemoryEventStore

TABLES = ("rm-a", "rm-b")


class Added(BaseModel):
    n: int


class Counter(Projection):
    """State: the running sum. Writes: ADD to one shared total item (every stream), ``fan_out``
    puts per event, and optionally a put of one item shared by every stream (``shared_put``)."""

    stream_prefix = "c-"

    def __init__(self, name: str = "counter", fan_out: int = 0, blob: int = 0, shared_put: bool = False):
        self.name = name
        self.fan_out = fan_out
        self.blob = blob
        self.shared_put = shared_put

    def apply(self, stream_id: str, state: Any, events: Any, writes: Writes) -> Any:
        total = state or 0
        for event in events:
            total += event.data.n
            writes.add("total", "all", {"sum": event.data.n, "events": 1}, {"kind": "total"})
            for i in range(self.fan_out):
                writes.put(f"fan#{stream_id}", f"{event.version}-{i}", {"v": event.version})
            if self.blob:
                writes.put(f"blob#{stream_id}", "x", {"data": "x" * self.blob})
            if self.shared_put:
                writes.put("latest", "one", {"stream": stream_id, "version": event.version})
        return total


class Recorder:
    """The real client, recording every call; ``before_transaction(items)`` runs first when set."""

    def __init__(self, real: Any):
        self._real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.before_transaction: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        self.calls.append(("BatchGetItem", kwargs))
        return self._real.batch_get_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.calls.append(("TransactWriteItems", kwargs))
        hook, self.before_transaction = self.before_transaction, None
        if hook is not None:
            hook(kwargs["TransactItems"])
        return self._real.transact_write_items(**kwargs)

    def transactions(self) -> list[list[dict[str, Any]]]:
        return [kwargs["TransactItems"] for op, kwargs in self.calls if op == "TransactWriteItems"]

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)


def checkpoints_in(items: list[dict[str, Any]]) -> list[str]:
    return [op["Put"]["Item"]["stream_id"]["S"] for op in items if op.get("Put", {}).get("Item", {}).get("sk") == {"S": "cp"}]


@pytest.fixture
def world(dynamodb_client) -> Any:
    for table in TABLES:
        dynamodb_client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    registry = EventRegistry()
    registry.register(Added)
    return dynamodb_client, InMemoryEventStore(registry)


def engine_for(world: Any, projection: Projection, client: Any, table: str = TABLES[0]) -> ProjectionEngine:
    _, store = world
    return ProjectionEngine(
        projection, client, table, store, parking=Parking(client, table, projection.name), sleep=lambda s: None
    )


def seed(world: Any, streams: int, values: list[int]) -> dict[str, StreamBatch]:
    _, store = world
    batches = {}
    for i in range(streams):
        stream_id = f"c-{i:03d}"
        store.append(stream_id, [NewEvent(Added(n=v)) for v in values], 0)
        batches[stream_id] = StreamBatch.of(stream_id, store.read(stream_id))
    return batches


def total(dynamodb: Any, table: str = TABLES[0], generation: int = 1) -> tuple[int, int]:
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"g{generation}#total"}, "sk": {"S": "all"}}).get("Item", {})
    return int(item.get("sum", {"N": "0"})["N"]), int(item.get("events", {"N": "0"})["N"])


def versions(dynamodb: Any, stream_ids: list[str], table: str = TABLES[0], generation: int = 1) -> list[int]:
    found = []
    for stream_id in stream_ids:
        item = dynamodb.get_item(TableName=table, Key=checkpoint_key(generation, stream_id)).get("Item")
        found.append(int(item["version"]["N"]) if item else 0)
    return found


def test_many_streams_share_one_read_and_one_transaction_with_counters_merged(world):
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 10, [1, 2, 3])
    outcomes = engine_for(world, Counter(), client).process(batches, (1,))
    assert all(o.ok and o.applied == 3 for o in outcomes.values())
    assert (client.count("BatchGetItem"), client.count("TransactWriteItems")) == (1, 1)
    (items,) = client.transactions()
    assert sorted(checkpoints_in(items)) == sorted(batches)
    # the shared total item is one merged ADD of all ten streams (DynamoDB: each item once)
    totals = [op for op in items if op.get("Update", {}).get("Key", {}).get("pk") == {"S": "g1#total"}]
    assert len(totals) == 1
    assert total(dynamodb) == (60, 30)
    assert generation_stats(dynamodb, TABLES[0], 1) == {"streams": 10, "events_applied": 30}
    # a redelivery of the same batch is all duplicates: one read, no write
    again = engine_for(world, Counter(), client).process(batches, (1,))
    assert all(o.ok and o.applied == 0 and o.duplicates == 3 for o in again.values())
    assert (client.count("BatchGetItem"), client.count("TransactWriteItems")) == (2, 1)
    assert total(dynamodb) == (60, 30)


def test_projections_on_different_tables_share_reads_and_transactions(world):
    """A Lambda's projections: one BatchGetItem across their tables, one TransactWriteItems."""
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 8, [5, 5])
    jobs = [
        (engine_for(world, Counter("a"), client, TABLES[0]), (1,)),
        (engine_for(world, Counter("b"), client, TABLES[1]), (1,)),
    ]
    results = process_together(jobs, batches)
    assert all(o.ok and o.applied == 2 for outcomes in results for o in outcomes.values())
    (read,) = [kwargs for op, kwargs in client.calls if op == "BatchGetItem"]
    assert set(read["RequestItems"]) == set(TABLES)
    assert all(spec["ConsistentRead"] for spec in read["RequestItems"].values())
    (items,) = client.transactions()
    assert {op[next(iter(op))]["TableName"] for op in items} == set(TABLES)
    assert total(dynamodb, TABLES[0]) == total(dynamodb, TABLES[1]) == (80, 16)


def test_a_stale_checkpoint_in_a_shared_transaction_costs_nothing_to_the_other_streams(world):
    """A duplicate delivery racing this one advances one stream between our read and our shared
    commit: the shared transaction is cancelled as a whole, every stream takes the per-stream
    path, and each event is still counted exactly once (the raced stream only applies the rest)."""
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 6, [1, 2, 3, 4])
    raced = "c-003"

    def concurrent(items: list[dict[str, Any]]) -> None:
        assert len(checkpoints_in(items)) == 6  # it really is the shared transaction
        racer = engine_for(world, Counter(), dynamodb)
        head = StreamBatch.of(raced, [batches[raced].events[v] for v in (1, 2)])
        assert racer.process({raced: head}, (1,))[raced].applied == 2

    client.before_transaction = concurrent
    outcomes = engine_for(world, Counter(), client).process(batches, (1,))
    assert all(o.ok for o in outcomes.values())
    assert {s: o.applied for s, o in outcomes.items()} == {s: (2 if s == raced else 4) for s in batches}
    shared, *singles = client.transactions()
    assert len(checkpoints_in(shared)) == 6 and all(len(checkpoints_in(t)) == 1 for t in singles)
    assert total(dynamodb) == (60, 24)  # 6 streams x (1+2+3+4), each event once
    assert versions(dynamodb, sorted(batches)) == [4] * 6
    assert generation_stats(dynamodb, TABLES[0], 1) == {"streams": 6, "events_applied": 24}


def test_a_shared_transaction_whose_response_was_lost_is_not_applied_twice(world):
    """Committed, but the caller saw an error: the per-stream retries find the checkpoints moved."""
    from botocore.exceptions import ReadTimeoutError

    dynamodb, _ = world

    class LosesFirstResponse(Recorder):
        def transact_write_items(self, **kwargs: Any) -> Any:
            response = super().transact_write_items(**kwargs)
            if self.count("TransactWriteItems") == 1:
                raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
            return response

    client = LosesFirstResponse(dynamodb)
    batches = seed(world, 5, [2, 3])
    outcomes = engine_for(world, Counter(), client).process(batches, (1,))
    assert all(o.ok for o in outcomes.values())
    assert total(dynamodb) == (25, 10)
    assert generation_stats(dynamodb, TABLES[0], 1) == {"streams": 5, "events_applied": 10}


def test_a_group_over_100_items_is_split_into_transactions_that_fit(world):
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 12, [1])  # each stream: checkpoint + 10 puts (+ shared total and stats)
    outcomes = engine_for(world, Counter(fan_out=10), client).process(batches, (1,))
    assert all(o.ok and o.applied == 1 for o in outcomes.values())
    transactions = client.transactions()
    assert len(transactions) == 2 and all(len(t) <= 100 for t in transactions)
    assert sorted(s for t in transactions for s in checkpoints_in(t)) == sorted(batches)  # each stream once
    assert sum(len(checkpoints_in(t)) >= 2 for t in transactions) == 2
    assert total(dynamodb) == (12, 12)
    for stream_id in batches:
        fan = dynamodb.query(
            TableName=TABLES[0], KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": f"g1#fan#{stream_id}"}}
        )
        assert fan["Count"] == 10


def test_a_group_over_4_mb_is_split(world):
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 14, [1])  # 14 x ~300 KB items: more than one transaction's 4 MB
    outcomes = engine_for(world, Counter(blob=300_000), client).process(batches, (1,))
    assert all(o.ok and o.applied == 1 for o in outcomes.values())
    transactions = client.transactions()
    assert len(transactions) >= 2
    assert all(len(json.dumps(t)) <= 4 * 1024 * 1024 for t in transactions)
    assert sorted(s for t in transactions for s in checkpoints_in(t)) == sorted(batches)
    assert total(dynamodb) == (14, 14)


def test_puts_of_one_item_by_two_streams_never_share_a_transaction(world):
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 3, [1])
    outcomes = engine_for(world, Counter(shared_put=True), client).process(batches, (1,))
    assert all(o.ok and o.applied == 1 for o in outcomes.values())
    assert [len(checkpoints_in(t)) for t in client.transactions()] == [1, 1, 1]
    assert total(dynamodb) == (3, 3)


def test_a_poison_stream_is_left_out_and_the_others_share_a_transaction(world):
    dynamodb, store = world
    client = Recorder(dynamodb)
    batches = seed(world, 4, [1, 2])
    batches["c-002"].events[2] = ValueError("undecodable")
    outcomes = engine_for(world, Counter(), client).process(batches, (1,))
    assert outcomes["c-002"].failed_version == 2 and not outcomes["c-002"].transient
    assert all(outcomes[s].ok for s in batches if s != "c-002")
    shared, single = client.transactions()
    assert sorted(checkpoints_in(shared)) == ["c-000", "c-001", "c-003"]
    assert checkpoints_in(single) == ["c-002"]  # its version 1, committed before the failure
    assert versions(dynamodb, sorted(batches)) == [2, 2, 1, 2]
    assert total(dynamodb) == (10, 7)


def test_the_live_and_the_building_generation_advance_together(world):
    dynamodb, _ = world
    client = Recorder(dynamodb)
    batches = seed(world, 5, [1, 2])
    engine = engine_for(world, Counter(), client)
    engine.process({s: StreamBatch.of(s, [b.events[1]]) for s, b in batches.items()}, (1,))
    outcomes = engine.process(batches, (1, 2))  # a rebuild started: generation 2 has nothing yet
    assert all(o.ok and o.applied == 3 and o.duplicates == 1 for o in outcomes.values())
    assert client.transactions()[-1] and len(checkpoints_in(client.transactions()[-1])) == 10
    assert total(dynamodb, generation=1) == total(dynamodb, generation=2) == (15, 10)
    assert versions(dynamodb, sorted(batches), generation=1) == versions(dynamodb, sorted(batches), generation=2) == [2] * 5


def test_checkpoint_reads_are_chunked_to_100_keys_and_unprocessed_keys_retried(world):
    dynamodb, _ = world

    class Unprocessed(Recorder):
        """Holds back the last 7 keys of the first BatchGetItem (as DynamoDB may under load)."""

        def batch_get_item(self, **kwargs: Any) -> Any:
            self.calls.append(("BatchGetItem", kwargs))
            if self.count("BatchGetItem") > 1:
                return self._real.batch_get_item(**kwargs)
            (table, spec), = kwargs["RequestItems"].items()
            served, held = spec["Keys"][:-7], spec["Keys"][-7:]
            response = self._real.batch_get_item(RequestItems={table: {**spec, "Keys": served}})
            response["UnprocessedKeys"] = {table: {**spec, "Keys": held}}
            return response

    client = Unprocessed(dynamodb)
    batches = seed(world, 60, [1])  # 60 parked keys + 60 checkpoints: 2 calls, then 1 retry
    engine = engine_for(world, Counter(), dynamodb)
    engine.process(batches, (1,))  # every checkpoint at 1
    outcomes = engine_for(world, Counter(), client).process(batches, (1,))
    reads = [kwargs["RequestItems"] for op, kwargs in client.calls if op == "BatchGetItem"]
    assert [sum(len(s["Keys"]) for s in r.values()) for r in reads] == [100, 7, 20]
    # the held-back keys were read on the retry: every stream knew its checkpoint (no rewrite)
    assert all(o.ok and o.applied == 0 and o.duplicates == 1 for o in outcomes.values())
    assert client.count("TransactWriteItems") == 0
