"""The dashboard and the alarms show only custom metrics that the code really emits (issue 5).

A metric that no code emits, or that is emitted under another name, namespace or ``service``
dimension value than the dashboard queries, shows nothing on AWS and nobody notices. So this
test does not read source code: it runs functional scenarios through the real Lambda handlers,
each in its own in-process "execution environment" built from the synthesized template (the
function's handler string and exactly its environment variables, its modules imported fresh,
like a cold start), against the template's own tables, queues, bus and rules provisioned on a
moto server by the local runtime's code. It collects the EMF blobs Powertools prints to stdout
during each invocation and then checks:

- every custom metric (namespace ``Cairn``) the dashboard shows or an alarm watches was emitted
  with a non-zero value and exactly that dimension set (name and value);
- every metric of docs/architecture.md's Metrics table was emitted, in the documented namespace,
  with the documented dimension and unit, by the kind of function the table names.

The scenarios provoke each metric for real: commands (CommandLatency), a stale warm state
re-decided after a concurrent append (ConflictsRetried), idempotent repeats (IdempotentReplays),
business-rule 409s (CommandRejected), projection batches with a gap, duplicates and a poison
record (EventsApplied, GapsRepaired, DuplicatesSkipped, StreamsParked), an account crossing the
snapshot threshold (SnapshotsTaken), the publisher (IntegrationEventsPublished) and the EDA
consumers, payments included (a duplicate delivery racing the first one).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, LambdaContext, Reply
from tests.infrastructure.cdk_helpers import ARCHITECTURE, REPO_ROOT, architecture_metrics, flatten_join

STACK = "Cairn"
NAMESPACE = "Cairn"  # the dashboard's custom namespace (cdk_app.constructs.function.METRICS_NAMESPACE)
DIMENSION = "service"
STAFF = ("staff",)

# docs/architecture.md's "emitted by" column -> the template functions of that kind
EMITTERS = {
    "command handlers": frozenset({"OrdersCommands", "AccountsCommands", "Payments"}),
    "projections": frozenset({"OrdersProjections", "AccountsProjections"}),
    "snapshotter": frozenset({"Snapshotter"}),
    "publisher": frozenset({"Publisher"}),
    "pusher": frozenset({"WsPusher"}),
    "tamper detector": frozenset({"TamperDetector"}),
    "digest job": frozenset({"DigestJob"}),
    "archiver": frozenset({"Archiver"}),
}
CORRUPT_DATA = '{"payment_id": 42'  # no event model decodes this: a poison record


# -- what was emitted ------------------------------------------------------------------------------
Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Emission:
    """One metric of one EMF blob, as CloudWatch will index it (one per dimension set)."""

    function: str  # logical id of the template function that printed it
    namespace: str
    name: str
    unit: str | None
    dimensions: Dimensions
    value: float  # sum of the blob's values


def parse_emf(output: str, function: str) -> list[Emission]:
    """The EMF blobs among ``output``'s lines, validated like CloudWatch Logs would need them."""
    found = []
    for line in output.splitlines():
        line = line.strip()
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        blob = json.loads(line)
        meta = blob["_aws"]
        assert isinstance(meta["Timestamp"], int), blob
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = tuple(sorted((name, blob[name]) for name in dimension_set))
                assert all(isinstance(v, str) and v for _, v in dims), f"bad dimension values in {blob}"
                for metric in directive["Metrics"]:
                    raw = blob[metric["Name"]]
                    values = raw if isinstance(raw, list) else [raw]
                    assert all(isinstance(v, int | float) for v in values), blob
                    found.append(
                        Emission(function, directive["Namespace"], metric["Name"], metric.get("Unit"), dims,
                                 float(sum(values)))
                    )
    return found


def _pending_metrics() -> dict[str, Any]:
    """Unflushed metrics and dimensions: Powertools shares them between every ``Metrics`` instance
    of the process (so leftovers would be flushed under the next invocation's service)."""
    from aws_lambda_powertools import Metrics

    shared = Metrics(namespace=NAMESPACE)
    return {**shared.metric_set, **shared.dimension_set}


# -- the template's functions as in-process execution environments -------------------------------
class Container:
    """One execution environment of a template function, in this process.

    While active, ``os.environ`` is exactly the function's environment (as the local runtime
    resolves it: physical names on the moto server) and ``sys.modules`` holds this environment's
    own copies of the code and layer packages, so module globals (Powertools ``Metrics`` and its
    ``service``, composition roots, warm state caches) are per environment, as on Lambda.
    """

    def __init__(self, world: World, spec: Any, roots: frozenset[str]):
        self.world = world
        self.spec = spec
        self.roots = roots
        self.modules: dict[str, Any] = {}
        self.handler: Callable[[Any, Any], Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def _owned(self, module: str) -> bool:
        return module.split(".", 1)[0] in self.roots

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        outside = {n: sys.modules.pop(n) for n in list(sys.modules) if self._owned(n)}
        saved_env = dict(os.environ)
        sys.modules.update(self.modules)
        os.environ.clear()
        os.environ.update(self.spec.environment)
        try:
            yield
        finally:
            self.modules = {n: sys.modules.pop(n) for n in list(sys.modules) if self._owned(n)}
            sys.modules.update(outside)
            os.environ.clear()
            os.environ.update(saved_env)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` inside the environment (e.g. to reach its composition root)."""
        with self.active():
            return fn()

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """One invocation; the EMF it prints is recorded as this function's."""
        out = io.StringIO()
        with self.active(), contextlib.redirect_stdout(out):
            assert not _pending_metrics(), f"{self.name}: metrics left over before the invocation"
            if self.handler is None:  # cold start: the handler module and all it imports, fresh
                module, _, attr = self.spec.handler.rpartition(".")
                self.handler = getattr(importlib.import_module(module), attr)
            spec = self.spec
            context = LambdaContext(spec.name, memory_limit_in_mb=spec.memory, invoked_function_arn=spec.arn)
            result = self.handler(copy.deepcopy(dict(event)), context)
            assert not _pending_metrics(), f"{self.name}: metrics left unflushed after the invocation"
        self.world.emissions.extend(parse_emf(out.getvalue(), self.name))
        return result

    def api(self) -> Api:
        """The functional suites' API Gateway client, calling this environment."""
        def call(event: dict[str, Any], _context: Any) -> Any:
            if event.get("routeKey") == "POST /orders" and event.get("body"):
                from tests.functional.conftest import seed_catalog_for

                self.call(lambda: seed_catalog_for(json.loads(event["body"])))  # the function's CATALOG_TABLE
            return self.invoke(event)

        return Api(call, seed_catalog=False)


class World:
    """The synthesized template on a moto server: resources, function specs, event source mappings."""

    def __init__(self, template_path: Path, state_dir: Path):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from local.cloud import LocalCloud, aws_client
        from local.esm import MappingSpec
        from local.runtime import function_specs
        from local.template import Template

        class Quiet(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        # moto's server app, not local.cloud.MotoServer: that one patches moto process-wide (this
        # is a shared pytest process); calls here are sequential and stream reads use fresh iterators
        app = DomainDispatcherApplication(create_backend_app)
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        self.thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)
        self.thread.start()
        endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.template = Template.load(template_path, STACK)
        LocalCloud(self.template, endpoint).provision()
        from local.kinesis import KinesisHub

        KinesisHub(endpoint).provision(self.template)  # the fan-out stream's consumers get their ARNs
        specs = function_specs(self.template, endpoint=endpoint, base_url="http://127.0.0.1:9",
                               state_dir=state_dir, warn=lambda _message: None)
        self.specs = {s.logical_id: s for s in specs}
        by_name = {s.name: s.logical_id for s in specs}
        self.mappings = {}
        for res in self.template.of_type("AWS::Lambda::EventSourceMapping"):
            mapping = MappingSpec.from_resource(res, self.template)
            self.mappings[by_name[mapping.function]] = mapping
        self.client = lambda service: aws_client(service, endpoint)
        self.emissions: list[Emission] = []
        self.containers: dict[tuple[str, int], Container] = {}
        self.delivered: dict[str, set[str]] = {}

    def total(self, function: str, name: str, since: int = 0) -> float:
        """Sum of ``function``'s emissions of ``name`` from ``self.emissions[since:]``."""
        return sum(e.value for e in self.emissions[since:] if (e.function, e.name) == (function, name))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def container(self, function: str, instance: int = 1) -> Container:
        key = (function, instance)
        if key not in self.containers:
            spec = self.specs[function]
            roots = set()
            for directory in (spec.code_dir, *spec.layers):
                resolved = Path(directory).resolve()
                assert str(resolved) in {str(Path(p).resolve()) for p in sys.path if p}, (
                    f"{function}: {resolved} is not on sys.path (pyproject pythonpath)"
                )
                roots.update(p.name for p in resolved.iterdir() if (p / "__init__.py").exists())
            self.containers[key] = Container(self, spec, frozenset(roots))
        return self.containers[key]

    # -- the events table's stream, filtered and shaped like the function's event source mapping
    def stream_records(self, function: str) -> list[dict[str, Any]]:
        """Every record of the mapping's stream that passes its filters, in stream order."""
        from local.esm import stream_record_for_lambda
        from local.filters import matches_any
        from local.kinesis import change_record

        mapping = self.mappings[function]
        source_arn, table_name = mapping.source_arn, None
        if mapping.kind == "kinesis":
            # A fan-out reader: the events table's changes, filtered as Lambda filters the Kinesis
            # record (on its decoded ``data``). Delivered in the DynamoDB Streams shape, which every
            # stream consumer also accepts (cairn.projections.kinesis): the metrics are the point here.
            (table,) = [t for t in self.template.of_type("AWS::DynamoDB::Table")
                        if "KinesisStreamSpecification" in t.properties]
            source_arn, table_name = table.attributes["StreamArn"], table.ref
        streams = self.client("dynamodbstreams")
        records = []
        for shard in streams.describe_stream(StreamArn=source_arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=source_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator, Limit=1000)
                records.extend(stream_record_for_lambda(r, source_arn) for r in page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        records.sort(key=lambda r: int(r["dynamodb"]["SequenceNumber"]))
        if table_name is not None:
            return [r for r in records if matches_any(mapping.filters, {"data": change_record(r, table_name)})]
        return [r for r in records if matches_any(mapping.filters, r)]

    def new_stream_records(self, function: str) -> list[dict[str, Any]]:
        seen = self.delivered.setdefault(function, set())
        fresh = [r for r in self.stream_records(function) if r["dynamodb"]["SequenceNumber"] not in seen]
        seen.update(r["dynamodb"]["SequenceNumber"] for r in fresh)
        return fresh

    def deliver(self, function: str, records: list[dict[str, Any]], instance: int = 1) -> list[str]:
        """Invoke a stream consumer in batches of its mapping's size; the reported failures."""
        size = self.mappings[function].batch_size
        failures: list[str] = []
        for start in range(0, len(records), size):
            result = self.container(function, instance).invoke({"Records": records[start : start + size]})
            failures.extend(f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", []))
        return failures

    # -- the function's SQS queue, as its event source mapping delivers it
    def receive(self, function: str) -> dict[str, Any]:
        """Every message now in the function's queue (deleted from it) as one Lambda SQS event."""
        mapping = self.mappings[function]
        sqs = self.client("sqs")
        url = sqs.get_queue_url(QueueName=mapping.source_arn.rsplit(":", 1)[-1])["QueueUrl"]
        records = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return {"Records": records}
            for m in messages:
                records.append(
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "md5OfBody": m["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": mapping.source_arn,
                        "awsRegion": "us-east-1",
                    }
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def corrupt(self, record: dict[str, Any]) -> dict[str, Any]:
        """Make a stored event undecodable, in the table and in the stream record that carries it."""
        table = self.specs["OrdersCommands"].environment["EVENTS_TABLE"]  # the physical name
        dynamodb = self.client("dynamodb")
        keys = record["dynamodb"]["Keys"]
        item = dynamodb.get_item(TableName=table, Key=keys, ConsistentRead=True)["Item"]
        item["data"] = {"S": CORRUPT_DATA}
        dynamodb.put_item(TableName=table, Item=item)
        poisoned = copy.deepcopy(record)
        poisoned["dynamodb"]["NewImage"]["data"] = {"S": CORRUPT_DATA}
        return poisoned


def stream_of(record: Mapping[str, Any]) -> str:
    return record["dynamodb"]["Keys"]["stream_id"]["S"]


def version_of(record: Mapping[str, Any]) -> int:
    return int(record["dynamodb"]["Keys"]["version"]["N"])


# -- the scenarios ---------------------------------------------------------------------------------
def ok(reply: Reply, status: int = 200) -> dict[str, Any]:
    assert reply.status == status, reply.text
    return reply.json


def command_scenarios(world: World) -> dict[str, str]:
    """Orders and accounts through their command Lambdas (two warm instances of each)."""
    orders, other_orders = world.container("OrdersCommands").api(), world.container("OrdersCommands", 2).api()
    accounts = world.container("AccountsCommands").api()
    other_accounts = world.container("AccountsCommands", 2).api()
    ids: dict[str, str] = {}

    # a stale warm state: instance 1 cached the order at v1, instance 2 records its payment, the
    # cancellation on instance 1 meets the conflict and is re-decided on the fresh state
    ids["raced_order"] = order_id = ok(orders.post("/orders", ORDER_BODY), 201)["order_id"]
    payment = {"payment_id": "pay-1", "amount": ORDER_TOTAL}
    ok(other_orders.post(f"/orders/{order_id}/payment", payment, groups=STAFF))
    cancelled = ok(orders.post(f"/orders/{order_id}/cancellation", {"reason": "changed my mind"}))
    assert (cancelled["status"], cancelled["version"]) == ("CANCELLED", 3)

    # an idempotent repeat, with a payment token (the payments service takes it from here)
    body = {**ORDER_BODY, "payment_token": "tok_visa"}
    first = orders.post("/orders", body, headers={"Idempotency-Key": "order-once"})
    again = orders.post("/orders", body, headers={"Idempotency-Key": "order-once"})
    assert ok(again, 201) == ok(first, 201) and again.headers.get("idempotent-replayed") == "true"
    ids["paid_order"] = first.json["order_id"]

    # a business rule: only a PAID order ships
    rejected = orders.post(f"/orders/{ids['paid_order']}/shipment", {"tracking": "ABC123"}, groups=STAFF)
    assert rejected.is_problem(409, "invalid-transition"), rejected.text
    ids["poison_order"] = ok(orders.post("/orders", ORDER_BODY), 201)["order_id"]

    # the catalog: a product listed then re-priced, and one whose stream will be poisoned
    catalog = world.container("Catalog").api()
    for sku, price in (("CAT-1", "3.00"), ("CAT-1", "3.50"), ("CAT-POISON", "1.00")):
        ok(catalog("PUT", f"/catalog/{sku}", body={"name": sku, "unit_price": price, "currency": "USD"},
                   groups=STAFF))

    ids["raced_account"] = account_id = ok(accounts.post("/accounts", {"currency": "USD"}), 201)["account_id"]
    ok(other_accounts.post(f"/accounts/{account_id}/deposits", {"amount": "10.00"}))
    moved = ok(accounts.post(f"/accounts/{account_id}/deposits", {"amount": "5.00"}))
    assert (moved["balance"], moved["version"]) == ("15.00", 3)
    key = {"Idempotency-Key": "deposit-once"}
    first = accounts.post(f"/accounts/{account_id}/deposits", {"amount": "1.00"}, headers=key)
    again = accounts.post(f"/accounts/{account_id}/deposits", {"amount": "1.00"}, headers=key)
    assert ok(again) == ok(first) and again.headers.get("idempotent-replayed") == "true"
    refused = accounts.post(f"/accounts/{account_id}/withdrawals", {"amount": "1000.00"})
    assert refused.is_problem(409, "insufficient-funds"), refused.text

    # an account whose stream crosses the snapshotter's threshold (SNAPSHOT_EVERY of the template)
    every = dict(p.split("=") for p in world.specs["Snapshotter"].environment["SNAPSHOT_EVERY"].split(","))
    ids["long_account"] = account_id = ok(accounts.post("/accounts", {"currency": "USD"}), 201)["account_id"]
    for _ in range(int(every["account"]) - 1):
        version = ok(accounts.post(f"/accounts/{account_id}/deposits", {"amount": "1.00"}))["version"]
    assert version == int(every["account"])
    ids["poison_account"] = ok(accounts.post("/accounts", {"currency": "USD"}), 201)["account_id"]
    return ids


def integration_scenarios(world: World, ids: dict[str, str]) -> None:
    """Publisher -> bus -> the template's rules -> queues -> payments, inventory, notifications."""
    assert world.deliver("Publisher", world.new_stream_records("Publisher")) == []

    # payments: the paid order's OrderCreated is delivered twice at once (at-least-once delivery);
    # the second instance runs while the first is about to append its PaymentRequested
    delivered = world.receive("Payments")
    created = {"Records": [r for r in delivered["Records"]
                           if '"OrderCreated"' in r["body"] and ids["paid_order"] in r["body"]]}
    assert len(created["Records"]) == 1, delivered
    first, second = world.container("Payments"), world.container("Payments", 2)
    store_client = first.call(lambda: importlib.import_module("payments.app").runtime().store.client)
    raced: list[Any] = []

    def duplicate_delivery(**_: Any) -> None:
        if not raced:
            raced.append(second.invoke(created))

    mark = len(world.emissions)
    store_client.meta.events.register("before-call.dynamodb.TransactWriteItems", duplicate_delivery)
    try:
        assert first.invoke(created) == {"batchItemFailures": []}
    finally:
        store_client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", duplicate_delivery)
    assert raced == [{"batchItemFailures": []}]
    # the first instance lost the race on the payment stream: its request found the winner's marker
    assert world.total("Payments", "IdempotentReplays", mark) >= 1
    # the staff-paid, then cancelled order: its PaymentProcessed and OrderCancelled each close its
    # payment; delivered to two instances at once, one appends, the other conflicts and re-decides
    def of_raced(kind: str) -> dict[str, Any]:
        return {"Records": [r for r in delivered["Records"] if f'"{kind}"' in r["body"] and ids["raced_order"] in r["body"]]}

    closing, other_closing = of_raced("OrderCancelled"), of_raced("PaymentProcessed")
    assert len(closing["Records"]) == len(other_closing["Records"]) == 1
    raced.clear()

    def concurrent_close(**_: Any) -> None:
        if not raced:
            raced.append(second.invoke(other_closing))

    mark = len(world.emissions)
    store_client.meta.events.register("before-call.dynamodb.TransactWriteItems", concurrent_close)
    try:
        assert first.invoke(closing) == {"batchItemFailures": []}
    finally:
        store_client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", concurrent_close)
    assert raced == [{"batchItemFailures": []}]
    assert world.total("Payments", "ConflictsRetried", mark) == 1
    handled = created["Records"] + closing["Records"] + other_closing["Records"]
    rest = {"Records": [r for r in delivered["Records"] if r not in handled]}
    assert first.invoke(rest) == {"batchItemFailures": []}
    # the payment service's outcome reaches the order through its own events
    assert world.deliver("Publisher", world.new_stream_records("Publisher")) == []
    outcomes = world.receive("OrderPayments")
    assert outcomes["Records"], "no payment outcome for the order service"
    assert world.container("OrderPayments").invoke(outcomes) == {"batchItemFailures": []}
    paid = [r for r in world.stream_records("Publisher") if stream_of(r) == ids["paid_order"]]
    assert [r["dynamodb"]["NewImage"]["type"]["S"] for r in paid] == ["OrderCreated", "PaymentProcessed"]
    assert world.deliver("Publisher", world.new_stream_records("Publisher")) == []

    for consumer in ("Inventory", "Notifications"):
        event = world.receive(consumer)
        assert event["Records"], consumer
        for _ in range(2):  # the second delivery is a redelivery of the same messages
            assert world.container(consumer).invoke(event) == {"batchItemFailures": []}


def snapshot_scenario(world: World) -> None:
    assert world.deliver("Snapshotter", world.new_stream_records("Snapshotter")) == []


def projection_scenario(world: World, function: str, poison_stream: str) -> None:
    """A gap (a stream's first record arrives late), a redelivered batch, then a poison record
    that fails until the stream parks (Lambda retries the reported record meanwhile)."""
    records = world.new_stream_records(function)
    healthy = [r for r in records if stream_of(r) != poison_stream]
    counts = Counter(map(stream_of, healthy))
    gapped = next(stream for stream, n in counts.items() if n > 1)
    late = next(r for r in healthy if stream_of(r) == gapped and version_of(r) == 1)
    mark = len(world.emissions)
    assert world.deliver(function, [r for r in healthy if r is not late]) == []
    assert world.total(function, "GapsRepaired", mark) >= 1
    assert world.total(function, "EventsApplied", mark) >= len(healthy)
    mark = len(world.emissions)
    assert world.deliver(function, healthy) == []
    assert world.total(function, "DuplicatesSkipped", mark) >= len(healthy)
    assert world.total(function, "EventsApplied", mark) == 0

    poison = [world.corrupt(r) for r in records if stream_of(r) == poison_stream]
    assert poison, poison_stream
    mark = len(world.emissions)
    for _ in range(10):
        if not world.deliver(function, poison):
            break
    else:
        raise AssertionError(f"{function} never parked {poison_stream}")
    assert world.total(function, "StreamsParked", mark) >= 1


def pusher_scenario(world: World) -> None:
    """The order views committed above, pushed to their owners: one open connection, one gone
    (410), one whose push fails (500), through the management API over HTTP."""
    from tests.functional.realtime.management_stub import ManagementStub

    spec = world.specs["WsPusher"]
    table = spec.environment["CONNECTIONS_TABLE"]
    records = world.new_stream_records("WsPusher")
    owners = {
        r["dynamodb"]["NewImage"]["state"]["M"][field]["S"]
        for r in records
        for field in ("customer_id", "owner_id")
        if field in r["dynamodb"]["NewImage"].get("state", {}).get("M", {})
    }
    assert owners, "no view commits reached the pusher's stream"
    dynamodb = world.client("dynamodb")
    with ManagementStub() as stub:
        spec.environment["WS_MANAGEMENT_ENDPOINT"] = stub.endpoint
        for owner in owners:
            for kind in ("open", "gone", "broken"):
                dynamodb.put_item(TableName=table, Item={
                    "connection_id": {"S": f"{kind}-{owner}"}, "sk": {"S": "conn"}, "user": {"S": owner},
                    "staff": {"BOOL": False}, "connected_at": {"N": "1700000000"},
                    "expires_at": {"N": "1700007500"},
                })
            stub.connect(f"open-{owner}", f"broken-{owner}")
            stub.broken.add(f"broken-{owner}")
        mark = len(world.emissions)
        assert world.deliver("WsPusher", records) == []
    for name in ("PushesSent", "PushesFailed", "ConnectionsGone", "PushDelay"):
        assert world.total("WsPusher", name, mark) > 0, name
def integrity_scenario(world: World) -> None:
    """The projection scenarios overwrote events behind the store (poison): the tamper detector
    sees the MODIFY records, and the digest job finds streams that no longer verify."""
    modified = world.new_stream_records("TamperDetector")
    assert modified and {r["eventName"] for r in modified} == {"MODIFY"}
    mark = len(world.emissions)
    assert world.deliver("TamperDetector", modified) == []
    assert world.total("TamperDetector", "TamperDetected", mark) == len(modified)

    # the archiver (issue 13): everything below a verified snapshot, now; its removals reach the
    # tamper detector as REMOVE records the manifests cover (EventsArchived, no TamperDetected)
    archiver = world.specs["Archiver"].environment
    archiver.update({"ARCHIVE_POLICY": "account=0,order=0", "ARCHIVE_SETTLE_SECONDS": "0"})
    mark = len(world.emissions)
    ran = world.container("Archiver").invoke({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert ran["archived"] > 0 and ran["removed"] == ran["archived"], ran
    assert world.total("Archiver", "EventsArchivedByArchiver", mark) == ran["archived"]
    removed = world.new_stream_records("TamperDetector")
    assert {r["eventName"] for r in removed} == {"REMOVE"} and len(removed) == ran["removed"]
    mark = len(world.emissions)
    assert world.deliver("TamperDetector", removed) == []
    assert world.total("TamperDetector", "EventsArchived", mark) == len(removed)
    assert world.total("TamperDetector", "TamperDetected", mark) == 0
    # a manifest that no longer chains: the archiver stops on that stream and says so
    s3, bucket = world.client("s3"), archiver["ARCHIVE_BUCKET"]
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith("manifest.json")][:1]
    stream_id = key.split("/")[1]
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"format": 1, "stream_id": stream_id, "segments": [
        {"key": "x", "first_version": 2, "last_version": 3, "prev_hash": "0" * 64, "last_hash": "f" * 64,
         "sha256": "0", "bytes": 1}]}).encode())
    mark = len(world.emissions)
    world.container("Archiver").invoke({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert world.total("Archiver", "ArchiveFailures", mark) >= 1
    mark = len(world.emissions)
    result = world.container("DigestJob").invoke({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    assert result["written"] is None and result["broken"] >= 1
    assert world.total("DigestJob", "IntegrityViolations", mark) >= 1


@pytest.fixture(scope="module")
def template_path() -> Path:
    """The local runtime's synth (cached in .local/cdk.out while cdk_app is unchanged)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from local.synth import synthesize

    path, _fresh = synthesize(REPO_ROOT, REPO_ROOT / ".local" / "cdk.out", STACK)
    return path


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="module")
def emissions(template_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Emission]:
    from aws_lambda_powertools import Metrics

    Metrics(namespace=NAMESPACE).clear_metrics()  # whatever an earlier test left behind
    world = World(template_path, tmp_path_factory.mktemp("metrics-world"))
    try:
        ids = command_scenarios(world)
        integration_scenarios(world, ids)
        snapshot_scenario(world)
        projection_scenario(world, "OrdersProjections", ids["poison_order"])
        projection_scenario(world, "AccountsProjections", ids["poison_account"])
        projection_scenario(world, "CatalogProjections", "product-CAT-POISON")
        pusher_scenario(world)
        integrity_scenario(world)
    finally:
        world.close()
    return world.emissions


# -- what the dashboard and the alarms show ---------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    where: str  # "dashboard <name>: <widget title>" or "alarm <logical id>"
    namespace: str
    name: str
    dimensions: Dimensions


def dashboard_metrics(template: Mapping[str, Any]) -> list[Shown]:
    shown = []
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        body = json.loads(flatten_join(res["Properties"]["DashboardBody"]))
        for widget in body.get("widgets", []):
            props = widget.get("properties", {})
            for entry in props.get("metrics", []):
                values = [v for v in entry if not isinstance(v, dict)]
                if not values:
                    continue  # a metric-math expression: it refers to metrics listed with it
                assert not {".", "..."} & set(values), f"shorthand in {entry}: extend the parser"
                namespace, name, *dims = values
                shown.append(Shown(f"dashboard {logical_id}: {props.get('title', '?')}", namespace, name,
                                   tuple(sorted(zip(dims[::2], dims[1::2], strict=True)))))
    return shown


def alarm_metrics(template: Mapping[str, Any]) -> list[Shown]:
    shown = []
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = res["Properties"]
        metrics = [props] if "MetricName" in props else [
            m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        for m in metrics:
            dims = tuple(sorted((d["Name"], flatten_join(d["Value"])) for d in m.get("Dimensions", [])))
            shown.append(Shown(f"alarm {logical_id}", m.get("Namespace", ""), m["MetricName"], dims))
    return shown


def custom(shown: list[Shown]) -> list[Shown]:
    return [s for s in shown if s.namespace == NAMESPACE]


def not_emitted(shown: list[Shown], emissions: list[Emission]) -> list[str]:
    """What is shown but was never emitted (non-zero) with exactly that namespace, name and dimensions."""
    emitted = {(e.namespace, e.name, e.dimensions) for e in emissions if e.value > 0}
    problems = []
    for s in shown:
        if (s.namespace, s.name, s.dimensions) in emitted:
            continue
        seen = sorted({e.dimensions for e in emissions if (e.namespace, e.name) == (s.namespace, s.name)})
        problems.append(f"{s.where}: {s.namespace}/{s.name} {dict(s.dimensions)} "
                        f"(emitted with dimensions: {[dict(d) for d in seen] or 'never'})")
    return list(dict.fromkeys(problems))  # a graph shows p50 and p99 of one metric: say it once


# -- docs/architecture.md -------------------------------------------------------------------------
@dataclass(frozen=True)
class Documented:
    name: str
    unit: str
    emitted_by: str
    dimensions: tuple[str, ...] = (DIMENSION,)


def documented_conventions() -> tuple[str, str]:
    """(namespace, dimension) from the heading ``## Metrics (EMF, namespace `X`, dimension `y`)``."""
    heading = re.search(r"^## Metrics .*namespace `(\w+)`, dimension `(\w+)`", ARCHITECTURE.read_text(), re.M)
    assert heading, "docs/architecture.md's Metrics heading no longer names the namespace and dimension"
    return heading.group(1), heading.group(2)


def documented_metrics() -> list[Documented]:
    markdown = ARCHITECTURE.read_text()
    heading = re.search(r"^## Metrics.*$", markdown, re.M)
    assert heading, "docs/architecture.md has no Metrics section"
    section = markdown[heading.end():].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        kind = re.split(r"[,(]", cells[2], maxsplit=1)[0].strip().lower()
        named = re.search(r"dimensions ((?:`\w+`(?:, )?)+)", cells[2])
        dims = tuple(sorted(re.findall(r"`(\w+)`", named.group(1)))) if named else (DIMENSION,)
        rows.extend(Documented(name, cells[1], kind, dims) for name in re.findall(r"`(\w+)`", cells[0]))
    assert {r.name for r in rows} == architecture_metrics(), "the table parser and cdk_helpers disagree"
    return rows


# -- the checks -------------------------------------------------------------------------------------
def test_the_dashboard_shows_only_emitted_custom_metrics(template: dict[str, Any], emissions: list[Emission]):
    shown = custom(dashboard_metrics(template))
    assert shown, "the dashboard shows no custom metric: the parser is broken"
    missing = not_emitted(shown, emissions)
    assert not missing, "the dashboard shows metrics no code emits:\n" + "\n".join(missing)


def test_alarms_watch_only_emitted_custom_metrics(template: dict[str, Any], emissions: list[Emission]):
    missing = not_emitted(custom(alarm_metrics(template)), emissions)
    assert not missing, "alarms watch metrics no code emits (they can never fire):\n" + "\n".join(missing)


def test_every_documented_metric_is_emitted_as_documented(
    template: dict[str, Any], emissions: list[Emission]
) -> None:
    """docs/architecture.md's Metrics table cannot lie: name, namespace, dimension, unit, emitter."""
    functions = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    namespace, dimension = documented_conventions()
    assert (namespace, dimension) == (NAMESPACE, DIMENSION)
    problems = []
    for doc in documented_metrics():
        assert doc.emitted_by in EMITTERS, f"{doc.name}: unknown emitter {doc.emitted_by!r}: extend EMITTERS"
        assert EMITTERS[doc.emitted_by] <= functions, f"EMITTERS names functions the template lacks: {doc}"
        mine = [e for e in emissions if e.name == doc.name and e.value > 0]
        if not mine:
            problems.append(f"{doc.name}: never emitted")
            continue
        for e in mine:
            if (e.namespace, tuple(d for d, _ in e.dimensions), e.unit) != (NAMESPACE, doc.dimensions, doc.unit):
                problems.append(f"{doc.name} from {e.function}: {e.namespace} {dict(e.dimensions)} {e.unit}, "
                                f"documented {NAMESPACE} {list(doc.dimensions)} {doc.unit}")
        if not {e.function for e in mine} & EMITTERS[doc.emitted_by]:
            problems.append(f"{doc.name}: documented as emitted by {doc.emitted_by}, "
                            f"emitted by {sorted({e.function for e in mine})}")
    assert not problems, "docs/architecture.md's Metrics table is wrong:\n" + "\n".join(sorted(set(problems)))


def test_every_emitted_custom_metric_is_documented(emissions: list[Emission]) -> None:
    """The other direction, for what the scenarios reach: a new metric needs a row in the table."""
    emitted = {e.name for e in emissions if e.namespace == NAMESPACE}
    assert emitted <= architecture_metrics(), f"undocumented metrics: {sorted(emitted - architecture_metrics())}"


def test_each_function_emits_under_its_own_service(template: dict[str, Any], emissions: list[Emission]):
    """The ``service`` value of every blob is the function's POWERTOOLS_SERVICE_NAME in the template
    (module-level Metrics objects read it at import: a cold start with the wrong env would lie)."""
    resources = template["Resources"]
    for e in emissions:
        expected = resources[e.function]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        assert dict(e.dimensions).get(DIMENSION) == expected, e
    assert {e.function for e in emissions} >= {
        "OrdersCommands", "AccountsCommands", "OrdersProjections", "AccountsProjections",
        "Snapshotter", "Publisher", "Payments", "Inventory", "Notifications",
    }


def test_the_check_catches_a_renamed_metric_and_a_wrong_service(emissions: list[Emission]):
    """The comparison fails on exactly the mistakes that leave a graph empty on AWS."""
    e = next(e for e in emissions if e.namespace == NAMESPACE and e.value > 0)
    right = Shown("dashboard", e.namespace, e.name, e.dimensions)
    assert not_emitted([right], emissions) == []
    for wrong in (
        Shown("renamed", e.namespace, e.name + "s", e.dimensions),
        Shown("another service", e.namespace, e.name, ((DIMENSION, "nobody"),)),
        Shown("no dimension", e.namespace, e.name, ()),
        Shown("an extra dimension", e.namespace, e.name, tuple(sorted((*e.dimensions, ("reason", "x"))))),
        Shown("another namespace", "Cairn/Other", e.name, e.dimensions),
    ):
        assert len(not_emitted([right, wrong], emissions)) == 1, wrong


def test_emission_parser_reads_dimension_sets_and_values():
    line = json.dumps({
        "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
            "Namespace": "Cairn", "Dimensions": [["service"], []],
            "Metrics": [{"Name": "EventsApplied", "Unit": "Count"}]}]},
        "service": "orders", "EventsApplied": [2, 3],
    })
    assert parse_emf(f"log line\n{line}\n", "F") == [
        Emission("F", "Cairn", "EventsApplied", "Count", (("service", "orders"),), 5.0),
        Emission("F", "Cairn", "EventsApplied", "Count", (), 5.0),
    ]
