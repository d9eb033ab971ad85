"""The projection engine's edge cases on moto: a checkpoint moving under a commit, transactions
too big for DynamoDB, bisecting to the failing event, what counts as an attempt."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from cairn.events import EventRegistry, NewEvent
from cairn.projections import Parking, Projection, ProjectionEngine, StreamBatch, Writes
from cairn.projections.layout import checkpoint_key
from cairn.projections.status import generation_stats
from cairn.store import InMemoryEventStore

TABLE = "rm"


class Added(BaseModel):
    n: int


class Counter(Projection):
    """State: the running sum. Writes: ADD to one total item, and ``fan_out`` items per event."""

    name = "counter"
    stream_prefix = "c-"

    def __init__(self, fan_out: int = 0, fail_on: int | None = None):
        self.fan_out = fan_out
        self.fail_on = fail_on
        self.calls: list[list[int]] = []

    def apply(self, stream_id: str, state: Any, events: Any, writes: Writes) -> Any:
        self.calls.append([e.version for e in events])
        total = state or 0
        for event in events:
            if event.data.n == self.fail_on:
                raise ValueError(f"cannot count {event.data.n}")
            total += event.data.n
            writes.add("total", "all", {"sum": event.data.n, "events": 1})
            for i in range(self.fan_out):
                writes.put(f"fan#{stream_id}", f"{event.version}-{i}", {"v": event.version})
        return total


@pytest.fixture
def world(dynamodb_client) -> Any:
    dynamodb_client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    registry = EventRegistry()
    registry.register(Added)
    store = InMemoryEventStore(registry)
    return dynamodb_client, store


def engine_for(world: Any, projection: Projection, client: Any = None, **kwargs: Any) -> ProjectionEngine:
    dynamodb, store = world
    client = client or dynamodb
    kwargs.setdefault("sleep", lambda s: None)
    return ProjectionEngine(projection, client, TABLE, store, parking=Parking(client, TABLE, projection.name), **kwargs)


def seed(store: InMemoryEventStore, stream_id: str, values: list[int]) -> list[Any]:
    store.append(stream_id, [NewEvent(Added(n=v)) for v in values], store.current_version(stream_id))
    return list(store.read(stream_id))


def total(dynamodb: Any) -> tuple[int, int]:
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "g1#total"}, "sk": {"S": "all"}}).get("Item", {})
    return int(item.get("sum", {"N": "0"})["N"]), int(item.get("events", {"N": "0"})["N"])


class Interloper:
    """A client whose first commit is preceded by another writer applying the same events
    (a concurrent redelivery): the engine must notice the moved checkpoint and not count twice."""

    def __init__(self, real: Any, before_first_commit: Any):
        self._real = real
        self._hook = before_first_commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return self._real.transact_write_items(**kwargs)


def test_checkpoint_moved_by_a_concurrent_writer_is_not_applied_twice(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1, 2, 3, 4])
    other = engine_for(world, Counter())

    def concurrent():
        other.process({"c-1": StreamBatch.of("c-1", events[:3])}, (1,))

    engine = engine_for(world, Counter(), client=Interloper(dynamodb, concurrent))
    outcome = engine.process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
    assert outcome.ok and outcome.applied == 1  # only version 4 was left for it
    assert total(dynamodb) == (10, 4)
    assert engine.read_checkpoint(1, "c-1").version == 4
    assert generation_stats(dynamodb, TABLE, 1) == {"streams": 1, "events_applied": 4}


def test_a_batch_too_big_for_one_transaction_is_split(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1] * 6)
    projection = Counter(fan_out=40)  # 6 events x 40 items: several transactions of <= 100 items
    outcome = engine_for(world, projection).process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
    assert outcome.ok and outcome.applied == 6
    assert total(dynamodb) == (6, 6)
    fan = dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "g1#fan#c-1"}})
    assert fan["Count"] == 240
    # halves until a part fits: 6 -> 3 (123 items) -> 1 + 2 (82 items fit), twice
    assert [len(call) for call in projection.calls] == [6, 3, 1, 2, 3, 1, 2]


def test_one_event_too_big_for_any_transaction_is_poison(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1, 2])
    engine = engine_for(world, Counter(fan_out=99), max_attempts=2)
    batch = {"c-1": StreamBatch.of("c-1", events)}
    first = engine.process(batch, (1,))["c-1"]
    assert (first.ok, first.failed_version, first.transient) == (False, 1, False)
    second = engine.process(batch, (1,))["c-1"]
    assert second.parked_now is not None and second.parked_now.version == 1
    assert total(dynamodb) == (0, 0)


def test_bisection_commits_everything_before_the_failing_event(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1, 2, 3, 99, 5, 6])
    engine = engine_for(world, Counter(fail_on=99))
    outcome = engine.process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
    assert (outcome.failed_version, outcome.applied, outcome.transient) == (4, 3, False)
    assert engine.read_checkpoint(1, "c-1").version == 3 and total(dynamodb) == (6, 3)
    attempts = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "_attempts#c-1"}, "sk": {"S": "000000000004"}})["Item"]
    assert attempts["attempts"]["N"] == "1" and "cannot count 99" in attempts["last_error"]["S"]


class Throttled:
    def __init__(self, real: Any, code: str, reason: str | None = None, times: int = 10**9):
        self._real, self.code, self.reason, self.times = real, code, reason, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        if self.times > 0:
            self.times -= 1
            response: dict[str, Any] = {"Error": {"Code": self.code, "Message": "no"}}
            if self.reason:
                response["CancellationReasons"] = [{"Code": "None"}, {"Code": self.reason}]
            raise ClientError(response, "TransactWriteItems")
        return self._real.transact_write_items(**kwargs)


def test_throttling_is_retried_by_lambda_and_never_counted_as_an_attempt(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1, 2])
    engine = engine_for(world, Counter(), client=Throttled(dynamodb, "ProvisionedThroughputExceededException"), max_attempts=1)
    for _ in range(3):
        outcome = engine.process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
        assert (outcome.ok, outcome.transient, outcome.failed_version, outcome.parked_now) == (False, True, 1, None)
    assert engine.parking.list() == []
    assert dynamodb.scan(TableName=TABLE)["Count"] == 0  # no attempt counters either


def test_transaction_conflicts_on_shared_counters_are_retried_in_place(world):
    dynamodb, store = world
    events = seed(store, "c-1", [5])
    engine = engine_for(world, Counter(), client=Throttled(dynamodb, "TransactionCanceledException", "TransactionConflict", times=3))
    outcome = engine.process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
    assert outcome.ok and total(dynamodb) == (5, 1)


def test_gap_is_repaired_from_the_store_and_versions_at_or_below_the_checkpoint_skipped(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1, 2, 3, 4, 5])
    engine = engine_for(world, Counter())
    first = engine.process({"c-1": StreamBatch.of("c-1", [events[1], events[4]])}, (1,))["c-1"]  # 2 and 5
    assert (first.applied, first.gaps_repaired) == (5, 3)
    again = engine.process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
    assert (again.applied, again.duplicates) == (0, 5)
    assert total(dynamodb) == (15, 5)


def test_two_generations_have_their_own_checkpoints(world):
    dynamodb, store = world
    events = seed(store, "c-1", [1, 2, 3])
    engine = engine_for(world, Counter())
    engine.process({"c-1": StreamBatch.of("c-1", events[:2])}, (1,))
    outcome = engine.process({"c-1": StreamBatch.of("c-1", events[2:])}, (1, 2))["c-1"]
    assert outcome.ok and outcome.gaps_repaired == 2  # generation 2 read 1..2 from the store
    for generation in (1, 2):
        item = dynamodb.get_item(TableName=TABLE, Key=checkpoint_key(generation, "c-1"))["Item"]
        assert item["version"]["N"] == "3" and item["state"]["N"] == "6"


def test_the_same_stream_never_touches_an_item_twice_in_a_transaction(world):
    """moto enforces DynamoDB's rule: a coalesced batch with many ADDs to one item must pass."""
    dynamodb, store = world
    events = seed(store, "c-1", list(range(1, 51)))
    outcome = engine_for(world, Counter()).process({"c-1": StreamBatch.of("c-1", events)}, (1,))["c-1"]
    assert outcome.ok and total(dynamodb) == (1275, 50)
