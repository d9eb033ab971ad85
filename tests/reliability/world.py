"""A whole Cairn world on in-process moto, rebuilt as often as a test needs one.

``World`` creates what the template deploys (events + idempotency tables with the stream, the
read-model and EDA tables, the snapshot bucket, the parked queue, the bus), sets the environment
of docs/architecture.md and makes every boto3 client the code under test builds (through
``cairn.aws.client``) carry a :class:`~tests.reliability.faults.FaultInjector`. The test's own
clients (setup, inspection, audit) are unhooked: faults hit only the code under test.

Also here: Lambda's event source mapping for DynamoDB streams (batches, bisect on a crashed
invocation, resume from the lowest reported failure, redelivery), and the invariants every
suite checks (store shape, idempotency markers, read models == fold of the store).
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.functional.conftest import ENV, READ_MODEL_TABLES, LambdaContext
from tests.reliability.faults import FaultInjector, SimulatedCrash

EXTRA_ENV = {
    "EVENT_BUS_NAME": "cairn-integration",
    "GENERATION_CACHE_SECONDS": "0",
    "PROJECTION_MAX_ATTEMPTS": "3",
    "POWERTOOLS_SERVICE_NAME": "reliability",
    # No log level of its own: a service logger built under WARNING here kept that level for the
    # functional modules a worker ran next (their log-line checks saw nothing).
}
PARKED_QUEUE = "cairn-projections-parked"
PROJECTION_TABLES = {
    "order_view": "ORDER_VIEW_TABLE",
    "user_orders": "USER_ORDERS_TABLE",
    "analytics": "ANALYTICS_TABLE",
    "account_view": "ACCOUNT_VIEW_TABLE",
}


# -- the process: composition roots are per container ---------------------------------------------
def cold_start() -> None:
    """Forget every warm thing a Lambda container keeps (a crash kills the container): the
    composition roots' cached runtimes, clients and engines, the publisher, generation caches."""
    import importlib

    from cairn.projections.generations import clear_generation_cache

    for module_name in COMPOSITION_MODULES:
        module = importlib.import_module(module_name)
        for name in dir(module):
            target = getattr(module, name)
            if callable(target) and hasattr(target, "cache_clear"):
                target.cache_clear()
    import cairn_platform.publisher as publisher

    publisher._publisher = None
    clear_generation_cache()


COMPOSITION_MODULES = (
    "orders.app",
    "orders.api",
    "orders.queries",
    "orders.projections",
    "accounts.app",
    "accounts.api",
    "accounts.queries",
    "accounts.projections",
    "cairn_platform.ops",
    "cairn_platform.public",
    "cairn_platform.snapshotter",
    "cairn_platform.publisher",
    "payments.app",
    "inventory.app",
    "notifications.app",
)


# -- the world --------------------------------------------------------------------------------------
_INSPECTION_CLIENTS: dict[str, Any] = {}


def _inspection(service: str, make: Callable[[str], Any]) -> Any:
    """The test's own (unhooked) client of ``service``, made once per process: a fault suite
    builds a World per fault, and making six clients each time was a tenth of its run. moto's
    stub is global, so a client made under one World's mock serves the next one's."""
    if service not in _INSPECTION_CLIENTS:
        _INSPECTION_CLIENTS[service] = make(service)
    return _INSPECTION_CLIENTS[service]


@dataclass
class World:
    injector: FaultInjector = field(default_factory=FaultInjector)
    env: dict[str, str] = field(default_factory=dict)
    dynamodb: Any = None
    s3: Any = None
    sqs: Any = None
    events: Any = None
    streams: Any = None
    queue_url: str = ""
    _mock: Any = None
    _flat: Any = None
    _iterator: str | None = None
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    _saved_client: Any = None

    def __enter__(self) -> World:
        from moto import mock_aws

        import cairn.aws
        from cairn.store.dynamodb import create_tables
        from local.cloud import flat_in_process

        # moto swaps a table for its backup on a cancelled transaction and open stream
        # iterators keep reading the discarded one (phantom records, later ones lost), and its
        # transactions and queries cost O(table): the local runtime's fixes apply here too
        self._flat = flat_in_process()
        self._flat.__enter__()
        self._mock = mock_aws()
        self._mock.start()
        original = self._saved_client = cairn.aws.client
        injector = self.injector

        def hooked_client(*args: Any, **kwargs: Any) -> Any:
            return injector.attach(original(*args, **kwargs))

        cairn.aws.client = hooked_client
        self.dynamodb, self.s3, self.sqs = (_inspection(s, original) for s in ("dynamodb", "s3", "sqs"))
        self.events, self.streams = (_inspection(s, original) for s in ("events", "dynamodbstreams"))
        create_tables(self.dynamodb, ENV["EVENTS_TABLE"], ENV["IDEMPOTENCY_TABLE"])
        for var in READ_MODEL_TABLES:
            self._create_read_model_table(ENV[var])
        self.s3.create_bucket(Bucket=ENV["SNAPSHOT_BUCKET"])
        kms = _inspection("kms", original)  # the payment-intents key under the alias ENV names
        kms.create_alias(AliasName=ENV["PAYMENT_INTENTS_KEY"],
                         TargetKeyId=kms.create_key(Description="payment intents")["KeyMetadata"]["KeyId"])
        self.queue_url = self.sqs.create_queue(QueueName=PARKED_QUEUE)["QueueUrl"]
        self.events.create_event_bus(Name=EXTRA_ENV["EVENT_BUS_NAME"])
        self.env = {**ENV, **EXTRA_ENV, "PARKED_QUEUE_URL": self.queue_url}
        for name, value in self.env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        cold_start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import cairn.aws

        cold_start()
        cairn.aws.client = self._saved_client
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._mock.stop()
        self._flat.__exit__(None, None, None)

    def _create_read_model_table(self, name: str) -> None:
        self.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )

    def reset_read_models(self) -> None:
        """Empty read-model tables and parked queue, cold containers: project the same history again."""
        for var in READ_MODEL_TABLES:
            self.dynamodb.delete_table(TableName=ENV[var])
            self._create_read_model_table(ENV[var])
        while True:  # drained, not purged (PurgeQueue allows one call a minute)
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages")
            if not messages:
                break
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        cold_start()

    # -- the store, read by the test ----------------------------------------------------------------
    def store(self, context: str) -> Any:
        import importlib

        from cairn.store.dynamodb import DynamoDBEventStore

        registry = importlib.import_module(f"{context}.app").registry
        return DynamoDBEventStore(registry, self.dynamodb, ENV["EVENTS_TABLE"], ENV["IDEMPOTENCY_TABLE"])

    def scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self.dynamodb.scan(**request)
            items.extend(page.get("Items", ()))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def event_items(self) -> dict[str, list[dict[str, Any]]]:
        """Every stored event item by stream, in version order."""
        streams: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in self.scan(ENV["EVENTS_TABLE"]):
            streams[item["stream_id"]["S"]].append(item)
        for items in streams.values():
            items.sort(key=lambda i: int(i["version"]["N"]))
        return dict(streams)

    def markers(self) -> list[dict[str, Any]]:
        return [
            {
                "key": m["idempotency_key"]["S"],
                "stream_id": m["stream_id"]["S"],
                "first": int(m["first_version"]["N"]),
                "last": int(m["last_version"]["N"]),
                "answer": json.loads(m["answer"]["S"]) if "answer" in m else None,
            }
            for m in self.scan(ENV["IDEMPOTENCY_TABLE"])
        ]

    # -- the stream, as Lambda's event source mapping delivers it --------------------------------------
    def stream_records(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """Every record of the events table's stream (moto's GetRecords), in Lambda's event shape,
        in sequence order; ``prefix`` is the mapping's filter on ``stream_id``."""
        arn = self.dynamodb.describe_table(TableName=ENV["EVENTS_TABLE"])["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records.extend(lambda_record(r, arn) for r in page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        records.sort(key=sequence_of)
        if prefix is not None:
            records = [r for r in records if stream_of(r).startswith(prefix)]
        return records

    def new_stream_records(self) -> list[dict[str, Any]]:
        """Records since the previous call (one shard iterator kept across calls, like a mapping)."""
        arn = self.dynamodb.describe_table(TableName=ENV["EVENTS_TABLE"])["Table"]["LatestStreamArn"]
        if self._iterator is None:
            shard = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
            self._iterator = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while True:
            page = self.streams.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = page["NextShardIterator"]
            records.extend(lambda_record(r, arn) for r in page["Records"])
            if not page["Records"]:
                return records


def lambda_record(record: dict[str, Any], arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function (epoch seconds, eventSourceARN)."""
    shaped = copy.deepcopy(record)
    body = shaped["dynamodb"]
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    shaped.setdefault("eventVersion", "1.1")
    shaped.setdefault("eventSource", "aws:dynamodb")
    shaped.setdefault("awsRegion", "us-east-1")
    shaped["eventSourceARN"] = arn
    return shaped


def stream_of(record: dict[str, Any]) -> str:
    return record["dynamodb"]["Keys"]["stream_id"]["S"]


def version_of(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["Keys"]["version"]["N"])


def sequence_of(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


# -- Lambda's event source mapping -------------------------------------------------------------------
@dataclass
class MappingStats:
    invocations: int = 0
    crashes: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    bisections: int = 0
    redeliveries: int = 0
    records_delivered: int = 0


class Shard:
    """One shard's records in sequence order and the mapping's position in it.

    Semantics of an event source mapping with ``BisectBatchOnFunctionError`` and
    ``ReportBatchItemFailures``: a crashed invocation is retried with the batch cut in half; a
    partial failure restarts the shard at the lowest reported sequence number; a success moves
    past the batch (and ``redeliver`` sends it again now and then: at-least-once)."""

    def __init__(self, records: list[dict[str, Any]]):
        self.records = sorted(records, key=sequence_of)
        self.position = 0
        self.limit: int | None = None  # bisected batch size, until a batch succeeds

    @property
    def done(self) -> bool:
        return self.position >= len(self.records)


def deliver(
    handler: Callable[[dict[str, Any], Any], Any],
    shards: list[Shard],
    *,
    rng: random.Random | None = None,
    batch_size: int = 100,
    random_sizes: bool = False,
    redeliver: float = 0.0,
    on_crash: Callable[[], None] = cold_start,
    max_invocations: int = 100_000,
    stats: MappingStats | None = None,
) -> MappingStats:
    """Drain ``shards`` through ``handler`` like Lambda would (shards interleaved at random)."""
    rng = rng or random.Random(0)
    stats = stats or MappingStats()
    while True:
        open_shards = [s for s in shards if not s.done]
        if not open_shards:
            return stats
        shard = rng.choice(open_shards)
        size = rng.randint(1, batch_size) if random_sizes else batch_size
        if shard.limit is not None:
            size = min(size, shard.limit)
        batch = shard.records[shard.position : shard.position + size]
        stats.invocations += 1
        if stats.invocations > max_invocations:
            raise AssertionError(f"the shards never drained ({max_invocations} invocations)")
        try:
            response = handler({"Records": copy.deepcopy(batch)}, LambdaContext())
        except (SimulatedCrash, Exception) as exc:
            # a function error: Lambda retries the batch, cut in half (BisectBatchOnFunctionError)
            if isinstance(exc, SimulatedCrash):
                stats.crashes += 1
                on_crash()
            else:
                stats.function_errors += 1
            if len(batch) > 1:
                shard.limit = max(1, len(batch) // 2)
                stats.bisections += 1
            continue
        stats.records_delivered += len(batch)
        failures = (response or {}).get("batchItemFailures") or []
        if failures:
            stats.partial_failures += 1
            lowest = min(int(f["itemIdentifier"]) for f in failures)
            index = next(i for i, r in enumerate(batch) if sequence_of(r) == lowest)
            shard.position += index
            continue
        shard.limit = None
        if redeliver and rng.random() < redeliver:
            stats.redeliveries += 1  # the same batch again (a retried invocation that had succeeded)
            continue
        shard.position += len(batch)


def one_shard(records: list[dict[str, Any]]) -> list[Shard]:
    return [Shard(records)]


def virtual_shards(records: list[dict[str, Any]], count: int, rng: random.Random) -> list[Shard]:
    """Records spread over ``count`` shards at random: every event is its own item, so nothing
    orders two events of one stream (the design's assumption; moto's one shard hides it)."""
    buckets: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for record in records:
        buckets[rng.randrange(count)].append(record)
    return [Shard(b) for b in buckets if b]


# -- invariants ---------------------------------------------------------------------------------------
def check_store(world: World, *, all_idempotent: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Versions contiguous from 1, event ids unique, every event inside exactly one idempotency
    marker's range (nothing written without its marker, no marker without its events)."""
    streams = world.event_items()
    ids: set[str] = set()
    for stream_id, items in streams.items():
        versions = [int(i["version"]["N"]) for i in items]
        assert versions == list(range(1, len(items) + 1)), f"{stream_id}: versions {versions}"
        for item in items:
            event_id = item["event_id"]["S"]
            assert event_id not in ids, f"{stream_id}: event id {event_id} stored twice"
            ids.add(event_id)
    covered: dict[tuple[str, int], str] = {}
    for marker in world.markers():
        items = streams.get(marker["stream_id"], [])
        assert 1 <= marker["first"] <= marker["last"] <= len(items), f"marker without its events: {marker}"
        for version in range(marker["first"], marker["last"] + 1):
            spot = (marker["stream_id"], version)
            assert spot not in covered, f"{spot} covered by two markers"
            covered[spot] = marker["key"]
    if all_idempotent:
        for stream_id, items in streams.items():
            for item in items:
                spot = (stream_id, int(item["version"]["N"]))
                assert spot in covered, f"{spot} written without an idempotency marker (a partial write)"
    return streams


def audit_all(world: World, segments: int = 1) -> str:
    """``make audit PROJECTION=all --strict`` in-process: every projection, 0 differences and no
    stream behind the store; returns what it printed. (One scan segment: in-process moto answers
    each segment by scanning the whole table, and threads do not help under the GIL.)"""
    from cairn_tools.audit import main

    out = io.StringIO()
    argv = ["all", "--strict", "--segments", str(segments), "--outputs", "/nonexistent/outputs.json", "--show", "50"]
    with redirect_stdout(out):
        status = main(argv)
    text = out.getvalue()
    assert status == 0, text
    for name in PROJECTION_TABLES:
        assert f"{name} (generation" in text, text
    assert text.count(" 0 differences, 0 streams behind the store") == len(PROJECTION_TABLES), text
    return text


def check_read_models(world: World) -> None:
    """Read models == the fold of the store, through the query-side readers and an independent
    analytics computation (not the projection's code), plus the strict audit."""
    from accounts import domain as accounts_domain
    from accounts.read_models import AccountViews, account_view_from_events
    from orders import domain as orders_domain
    from orders.read_models import (
        DailyAnalytics,
        OrderViews,
        UserOrders,
        order_view_from_events,
        user_order_entry,
    )

    orders, accounts = world.store("orders"), world.store("accounts")
    streams = world.event_items()
    views = OrderViews(world.dynamodb, ENV["ORDER_VIEW_TABLE"], consistent=True)
    lists = UserOrders(world.dynamodb, ENV["USER_ORDERS_TABLE"], consistent=True)
    account_views = AccountViews(world.dynamodb, ENV["ACCOUNT_VIEW_TABLE"], consistent=True)
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    totals: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for stream_id in streams:
        if stream_id.startswith("order-"):
            events = [orders.envelope_from_item(i) for i in streams[stream_id]]
            view = views.get(stream_id)
            assert view == order_view_from_events(events), stream_id
            state = orders_domain.initial_state()
            for event in events:
                state = orders_domain.evolve(state, event.data)
            assert view["status"] == state.status.value and view["version"] == len(events), stream_id
            by_customer[view["customer_id"]].append(user_order_entry(view))
            currency = None
            for event in events:
                day = event.occurred_at[:10]
                if event.type == "OrderCreated":
                    currency = event.data.currency
                    totals[(day, currency)][0] += 1
                elif event.type == "PaymentProcessed":
                    totals[(day, currency)][1] += 1
                    totals[(day, currency)][3] += event.data.amount
                elif event.type == "OrderCancelled":
                    totals[(day, currency)][2] += 1
        elif stream_id.startswith("account-"):
            events = [accounts.envelope_from_item(i) for i in streams[stream_id]]
            view = account_views.get(stream_id)
            assert view == account_view_from_events(events), stream_id
            state = accounts_domain.initial_state()
            for event in events:
                state = accounts_domain.evolve(state, event.data)
            assert Decimal(view["balance"]) == state.balance >= 0, stream_id
    for customer, entries in by_customer.items():
        listed, cursor = [], None
        while True:
            page, cursor = lists.list(customer, limit=50, cursor=cursor)
            listed.extend(page)
            if cursor is None:
                break
        assert listed == sorted(entries, key=lambda e: (e["created_at"], e["order_id"]), reverse=True), customer
    if totals:
        days = sorted(d for d, _ in totals)
        rows = DailyAnalytics(world.dynamodb, ENV["ANALYTICS_TABLE"], consistent=True).days(days[0], days[-1])
        got = {(r["date"], r["currency"]): r for r in rows}
        cent = Decimal("0.01")
        want = {
            key: {
                "date": key[0],
                "currency": key[1],
                "orders_created": c,
                "orders_paid": p,
                "orders_cancelled": x,
                "revenue": str(r.quantize(cent)),
                "average_order_value": str((r / p).quantize(cent)) if p else "0.00",
                # no refunds here (these flows have no refunded orders: the counters stay zero)
                "orders_refunded": 0,
                "refunds": "0.00",
                "net_revenue": str(r.quantize(cent)),
            }
            for key, (c, p, x, r) in totals.items()
        }
        assert got == want
    audit_all(world)


def problem_503(reply: Any) -> bool:
    """503 problem+json with a Retry-After a client can act on."""
    body = reply.json if reply.text else {}
    return (
        reply.status == 503
        and reply.content_type == "application/problem+json"
        and isinstance(body, dict)
        and body.get("status") == 503
        and {"type", "title", "status", "detail"} <= set(body)
        and reply.headers.get("retry-after", "").isdigit()
    )


def flatten(values: Iterable[Iterable[Any]]) -> Iterator[Any]:
    for value in values:
        yield from value

