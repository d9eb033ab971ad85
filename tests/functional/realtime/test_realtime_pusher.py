"""The pusher on moto: checkpoint commits of a view table's stream -> management API posts.

Records come from the table's real DynamoDB stream (moto), shaped as Lambda delivers them; the
management API is served over HTTP (``ManagementStub``) and called by the real boto3 client, so
410s are parsed as deployed. Claims: versions per stream never decrease and the newest is always
delivered, whatever the batching, order or duplication; gone connections are forgotten; a user
never receives another user's stream; a failing push fails nothing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.functional.realtime.management_stub import ManagementStub

VIEWS = "cairn-order-view"
CONNECTIONS = "cairn-connections"
CONNECTED_AT = 1_700_000_000


@dataclass
class Setup:
    dynamodb: Any
    streams: Any
    stub: ManagementStub
    pusher: Any
    connections: Any
    stream_arn: str
    seen: set[str]

    def commit(self, stream_id: str, version: int, owner: str, *, generation: int = 1,
               status: str | None = None) -> None:
        """What a projection's transaction leaves in the table: the checkpoint with the view."""
        from cairn.projections.codec import to_attr

        view = {"order_id": stream_id, "customer_id": owner, "status": status or f"S{version}",
                "version": version, "updated_at": f"2026-12-05T00:00:{version % 60:02d}.000Z"}
        self.dynamodb.put_item(TableName=VIEWS, Item={
            "pk": {"S": f"g{generation}#s#{stream_id}"}, "sk": {"S": "cp"},
            "version": {"N": str(version)}, "state": to_attr(view),
        })

    def records(self) -> list[dict[str, Any]]:
        """New stream records since the last call, as Lambda delivers them."""
        from local.esm import stream_record_for_lambda

        out = []
        for shard in self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
            it = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = self.streams.get_records(ShardIterator=it, Limit=1000)
                out.extend(page["Records"])
                if not page["Records"]:
                    break
                it = page.get("NextShardIterator")
        fresh = [r for r in out if r["dynamodb"]["SequenceNumber"] not in self.seen]
        self.seen.update(r["dynamodb"]["SequenceNumber"] for r in fresh)
        return [stream_record_for_lambda(r, self.stream_arn) for r in fresh]

    def connect(self, connection_id: str, user: str, *, staff: bool = False, open_: bool = True) -> Any:
        from realtime.connections import Connection

        conn = Connection(connection_id, user, staff, CONNECTED_AT)
        self.connections.add(conn)
        if open_:
            self.stub.connect(connection_id)
        return conn

    def received(self, connection_id: str, stream_id: str | None = None) -> list[int]:
        return [m["version"] for m in self.stub.open[connection_id]
                if stream_id is None or m["order_id"] == stream_id]


@pytest.fixture
def setup(dynamodb_client: Any) -> Iterator[Setup]:
    import boto3
    from botocore.config import Config

    from cairn.aws import client
    from cairn.projections.generations import clear_generation_cache, read_generations
    from realtime.dynamodb import DynamoDBConnections, create_connections_table
    from realtime.pusher import Pusher
    from realtime.sockets import ManagementApi

    dynamodb_client.create_table(
        TableName=VIEWS,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    create_connections_table(dynamodb_client, CONNECTIONS)
    arn = dynamodb_client.describe_table(TableName=VIEWS)["Table"]["LatestStreamArn"]
    clear_generation_cache()
    with ManagementStub() as stub:
        management = boto3.client(
            "apigatewaymanagementapi", endpoint_url=stub.endpoint, region_name="us-east-1",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        connections = DynamoDBConnections(dynamodb_client, CONNECTIONS)
        pusher = Pusher(connections, ManagementApi(management),
                        lambda table: read_generations(dynamodb_client, table).active)
        yield Setup(dynamodb_client, client("dynamodbstreams"), stub, pusher, connections, arn, set())


def batches(records: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """The records shuffled, some duplicated, cut into random batches."""
    records = records + rng.sample(records, len(records) // 3)
    rng.shuffle(records)
    out = []
    while records:
        n = rng.randint(1, 5)
        out.append(records[:n])
        records = records[n:]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_versions_never_decrease_and_the_newest_arrives_under_shuffled_batches(setup: Setup, seed: int) -> None:
    rng = random.Random(seed)
    setup.connect("alice-1", "alice")
    setup.connect("alice-2", "alice")
    streams = ["order-a", "order-b"]
    for version in range(1, 9):
        for stream in streams:
            setup.commit(stream, version, "alice")
    for batch in batches(setup.records(), rng):
        setup.pusher.handle(batch)
    for connection in ("alice-1", "alice-2"):
        for stream in streams:
            got = setup.received(connection, stream)
            assert got == sorted(set(got)), f"{connection} {stream}: {got}"  # strictly increasing
            assert got[-1] == 8, f"{connection} {stream}: the newest version never arrived ({got})"
    # and the message says what the view said at that version
    for message in setup.stub.open["alice-1"]:
        assert message == {"type": "order.updated", "order_id": message["order_id"], "version": message["version"],
                           "status": f"S{message['version']}", "occurred_at": message["occurred_at"]}


def test_several_commits_in_one_batch_push_only_the_newest(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    for version in (1, 2, 3):
        setup.commit("order-a", version, "alice")
    report = setup.pusher.handle(setup.records())
    assert setup.received("alice-1") == [3]
    assert (report.commits, report.sent) == (1, 1)


def test_redelivered_records_push_nothing_again(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    setup.commit("order-a", 1, "alice")
    setup.commit("order-a", 2, "alice")
    records = setup.records()
    setup.pusher.handle(records[:1])
    setup.pusher.handle(records)
    again = setup.pusher.handle(records + records)  # a retried batch, twice over
    assert setup.received("alice-1") == [1, 2]
    assert (again.sent, again.stale) == (0, 1)


def test_gone_connections_are_forgotten_and_others_still_receive(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    setup.connect("alice-gone", "alice", open_=False)  # closed without a $disconnect we saw
    setup.commit("order-a", 1, "alice")
    report = setup.pusher.handle(setup.records())
    assert (report.sent, report.gone) == (1, 1)
    assert setup.connections.get("alice-gone") is None
    assert setup.connections.targets("alice", "order-a") == {"alice-1"}
    setup.commit("order-a", 2, "alice")
    setup.pusher.handle(setup.records())
    assert setup.received("alice-1") == [1, 2]
    assert ("POST", "alice-gone") in setup.stub.calls
    assert setup.stub.calls.count(("POST", "alice-gone")) == 1  # not tried again


def test_a_user_never_receives_another_users_stream(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    setup.connect("bob-1", "bob")
    watcher = setup.connect("staff-1", "stella", staff=True)
    setup.connect("staff-2", "sam", staff=True)  # staff that did not subscribe
    setup.connections.subscribe(watcher, "order-a")
    setup.commit("order-a", 1, "alice")
    setup.commit("order-b", 1, "bob")
    setup.pusher.handle(setup.records())
    assert setup.received("alice-1") == [1] and setup.stub.open["alice-1"][0]["order_id"] == "order-a"
    assert setup.received("bob-1") == [1] and setup.stub.open["bob-1"][0]["order_id"] == "order-b"
    assert [m["order_id"] for m in setup.stub.open["staff-1"]] == ["order-a"]
    assert setup.received("staff-2") == []


def test_a_failing_push_fails_nothing_else(setup: Setup) -> None:
    setup.connect("alice-broken", "alice")
    setup.stub.broken.add("alice-broken")
    setup.connect("alice-1", "alice")
    setup.commit("order-a", 1, "alice")
    report = setup.pusher.handle(setup.records())
    assert (report.sent, report.failed) == (1, 1)
    assert setup.connections.get("alice-broken") is not None  # not gone: only failed this time


def test_a_push_stops_when_the_lambda_runs_out_of_time(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    setup.commit("order-a", 1, "alice")
    report = setup.pusher.handle(setup.records(), remaining_ms=lambda: 500)
    assert (report.sent, report.failed) == (0, 1)


def test_a_generation_being_rebuilt_is_not_pushed(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    setup.commit("order-a", 5, "alice", generation=1)
    setup.commit("order-a", 1, "alice", generation=2)  # a rebuild replays from version 1
    setup.pusher.handle(setup.records())
    assert setup.received("alice-1") == [5]


def test_other_items_of_the_table_are_ignored(setup: Setup) -> None:
    setup.connect("alice-1", "alice")
    setup.dynamodb.put_item(TableName=VIEWS, Item={"pk": {"S": "g1#u#alice"}, "sk": {"S": "x"},
                                                   "version": {"N": "1"}})
    report = setup.pusher.handle(setup.records())
    assert (report.commits, report.sent) == (0, 0)


# -- subscribe ($default) ------------------------------------------------------------------------
def _reader(setup: Setup) -> Any:
    from cairn.projections.readers import ReadModelTable

    return lambda stream_id: ReadModelTable(setup.dynamodb, VIEWS).stream_state(stream_id)


def test_staff_subscribe_to_an_existing_stream(setup: Setup) -> None:
    from realtime.handlers import subscribe

    setup.commit("order-a1", 3, "alice")
    staff = setup.connect("staff-1", "stella", staff=True)
    answer = subscribe(staff, "order-a1", setup.connections, _reader(setup))
    assert answer == {"type": "subscribed", "stream_id": "order-a1", "version": 3}
    assert setup.connections.targets(None, "order-a1") == {"staff-1"}


def test_a_stream_one_may_not_see_answers_like_a_missing_one(setup: Setup) -> None:
    from realtime.handlers import subscribe

    setup.commit("order-a1", 1, "alice")
    bob = setup.connect("bob-1", "bob")
    staff = setup.connect("staff-1", "stella", staff=True)
    forbidden = subscribe(bob, "order-a1", setup.connections, _reader(setup))
    missing = subscribe(bob, "order-zz", setup.connections, _reader(setup))
    staff_missing = subscribe(staff, "order-zz", setup.connections, _reader(setup))
    assert forbidden["type"] == "error" and forbidden["code"] == "stream-not-found"
    assert {k: v for k, v in forbidden.items() if k != "stream_id"} == \
        {k: v for k, v in missing.items() if k != "stream_id"} == \
        {k: v for k, v in staff_missing.items() if k != "stream_id"}
    assert setup.connections.targets(None, "order-a1") == set()
    own = subscribe(setup.connect("alice-1", "alice"), "order-a1", setup.connections, _reader(setup))
    assert own["type"] == "subscribed"


@pytest.mark.parametrize(("raw", "code"), [
    ("not json", "bad-message"),
    ("[1, 2]", "bad-message"),
    ('{"action": "dance"}', "unknown-action"),
    ('{"stream_id": "order-a"}', "unknown-action"),
    ('{"action": "subscribe"}', "bad-message"),
    ('{"action": "subscribe", "stream_id": 7}', "bad-message"),
    ("x" * 5000, "bad-message"),
])
def test_bad_messages_get_an_error_answer(raw: str, code: str) -> None:
    from realtime.messages import ProtocolError, parse_client_message

    with pytest.raises(ProtocolError) as caught:
        parse_client_message(raw)
    assert caught.value.code == code


def test_account_updates_carry_the_balance() -> None:
    from realtime.messages import owner_of, update_message

    view = {"account_id": "account-1", "owner_id": "alice", "currency": "USD", "balance": "12.50",
            "version": 4, "updated_at": "2026-12-05T00:00:04.000Z"}
    assert update_message("account-1", 4, view) == {
        "type": "account.updated", "account_id": "account-1", "version": 4, "balance": "12.50",
        "occurred_at": "2026-12-05T00:00:04.000Z"}
    assert owner_of("account-1", view) == "alice"
    assert update_message("payment-1", 1, view) is None  # not a stream clients follow
