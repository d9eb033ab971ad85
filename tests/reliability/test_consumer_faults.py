"""The EDA consumers (payments, inventory, notifications) under every fault at every AWS call.

A world places three orders (one paid by token, one declined, one cancelled), the publisher puts
their integration events on the bus, rules route them to each consumer's queue (moto), and the
messages are handed to the consumer Lambda as SQS would: a batch, the reported failures (or the
whole batch after a crash) come back, until every message is consumed — none may need more than
the queue's maxReceiveCount (5) receives, or it would end in the DLQ.

The clean run records the consumer's AWS calls; then for every call and fault kind a fresh world
runs the same with that one fault. The end state must be the clean run's: payments taken and
orders driven exactly once (the store's event types per stream, every event inside its
idempotency marker), units reserved exactly once, one notification per event.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from tests.functional.conftest import LambdaContext
from tests.functional.eda.eda_support import SUBSCRIPTIONS, sqs_record
from tests.reliability.faults import Fault, SimulatedCrash
from tests.reliability.scenarios import Step, run, shape
from tests.reliability.world import World, cold_start, deliver, one_shard

MAX_RECEIVES = 5
FAULTS = (("throttle", True), ("lost-response", False), ("crash-after", False))
CONSUMERS = {
    "payments": "payments.handler",
    "inventory": "inventory.handler",
    "notifications": "notifications.handler",
}

ORDER = {"items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"}], "currency": "USD"}
STEPS = (
    Step("paid", "orders", "/orders", {**ORDER, "payment_token": "tok_visa"}, "alice", 201, key="c1",
         creates="order_id", as_name="o1"),
    Step("declined", "orders", "/orders", {**ORDER, "payment_token": "tok_declined"}, "bob", 201, key="c2",
         creates="order_id", as_name="o2"),
    Step("waiting", "orders", "/orders", {**{"items": [{"sku": "SKU-2", "quantity": 1, "unit_price": "5.00"}]},
         "currency": "USD"}, "carol", 201, key="c3", creates="order_id", as_name="o3"),
    Step("cancel", "orders", "/orders/{o3}/cancellation", {"reason": "no"}, "carol", 200, key="c4"),
)


def seed(world: World) -> dict[str, list[dict[str, Any]]]:
    """Orders placed, published, routed: each consumer's SQS records (Lambda's shape)."""
    queues = {}
    bus = world.env["EVENT_BUS_NAME"]
    for consumer, pattern in SUBSCRIPTIONS.items():
        url = world.sqs.create_queue(QueueName=f"{consumer}-queue")["QueueUrl"]
        arn = world.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        world.events.put_rule(Name=consumer, EventBusName=bus, EventPattern=json.dumps(pattern))
        world.events.put_targets(Rule=consumer, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        queues[consumer] = (url, arn)
    outcome = run(world, STEPS)
    assert [r.status for r in outcome.finals.values()] == [s.expect for s in STEPS]
    rank = {outcome.ids[name]: i for i, name in enumerate(("o1", "o2", "o3"))}
    from cairn_platform.publisher import handler as publisher

    deliver(publisher, one_shard(world.stream_records("order-")))
    records = {}
    for consumer, (url, arn) in queues.items():
        messages = []
        while True:
            got = world.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            messages.extend(got)
        records[consumer] = sorted((sqs_record(m, arn) for m in messages), key=lambda r: position(r, rank))
    cold_start()
    return records


def position(record: dict[str, Any], rank: dict[str, int]) -> tuple[int, int]:
    """Messages in the same order in every world: by order (o1, o2, o3), then by version."""
    detail = json.loads(record["body"])["detail"]
    return rank[detail["subject"]], detail["sequence"]


def consume(handler: Any, records: list[dict[str, Any]]) -> dict[str, int]:
    """SQS to Lambda: reported failures (or all, after a crash) come back; receives counted."""
    receives = {r["messageId"]: 0 for r in records}
    pending = list(records)
    while pending:
        for record in pending:
            receives[record["messageId"]] += 1
            assert receives[record["messageId"]] <= MAX_RECEIVES, f"{record['messageId']} would go to the DLQ"
        try:
            response = handler({"Records": pending}, LambdaContext())
        except SimulatedCrash:
            cold_start()
            continue
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        pending = [r for r in pending if r["messageId"] in failed]
    return receives


def state_of(world: World, consumer: str) -> Any:
    """What the consumer changed, ids and clocks aside."""
    if consumer == "payments":
        return shape(world)
    table = world.env["INVENTORY_TABLE" if consumer == "inventory" else "NOTIFICATIONS_TABLE"]
    items = []
    for item in world.scan(table):
        if consumer == "inventory" and item["pk"]["S"].startswith("sku#") and item["reserved"]["N"] != "0":
            items.append(("sku", item["pk"]["S"], int(item["reserved"]["N"])))  # 0 == never touched
        elif consumer == "notifications" and "kind" in item:
            items.append(("notification", item.get("user_id", item["pk"])["S"], item["kind"]["S"]))
    return sorted(items)


@pytest.mark.slow
@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_every_fault_at_every_call_of_a_consumer(new_world, consumer):
    with new_world() as world:
        records = seed(world)[consumer]
        handler = importlib.import_module(CONSUMERS[consumer]).handler
        with world.injector.armed():
            receives = consume(handler, records)
        trace = world.injector.trace()
        want = state_of(world, consumer)
        from tests.reliability.world import check_store

        check_store(world, all_idempotent=False)
    assert set(receives.values()) == {1}, receives
    assert records and trace and want, (records, trace, want)

    failures: list[str] = []
    for call in trace:
        for kind, persistent in FAULTS:
            fault = Fault(kind, call.index, persistent)
            with new_world() as world:
                mine = seed(world)[consumer]
                handler = importlib.import_module(CONSUMERS[consumer]).handler
                try:
                    with world.injector.armed(fault):
                        consume(handler, mine)
                        assert world.injector.fired, "the fault never fired"
                    got = state_of(world, consumer)
                    assert got == want, {"want": want, "got": got}
                    from tests.reliability.world import check_store

                    check_store(world, all_idempotent=False)
                except AssertionError as exc:
                    failures.append(f"{fault} on {call}: {str(exc)[:700]}")
    runs = len(trace) * len(FAULTS)
    assert not failures, f"{len(failures)} of {runs} runs failed:\n" + "\n".join(failures[:12])
