"""Poison records: they park (projections) or fail alone (SQS consumers); faults never do.

Projections: a newer producer stored an event type this code does not know yet. Delivered
amid crashes, throttled transactions, redeliveries and reordering over virtual shards, the
stream is parked in each of the three order projections after exactly ``max_attempts`` real
failures, every other stream is exact, the audit finds nothing (a parked stream is reported
as parked, not as a difference), and after the fix is "deployed" (the type registered) the
unpark tool replays it: the read models equal the fold of the store again.

SQS consumers: malformed messages in a batch are the only ones reported; the rest is applied
exactly once, also when the whole batch comes again.
"""

from __future__ import annotations

import io
import json
import random
from contextlib import redirect_stdout
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from tests.functional.conftest import LambdaContext
from tests.reliability.faults import Outage
from tests.reliability.scenarios import ORDER_STEPS, SECOND_ORDER_STEPS, Step, run
from tests.reliability.world import (
    PROJECTION_TABLES,
    World,
    audit_all,
    check_read_models,
    deliver,
    stream_of,
    virtual_shards,
)


class OrderTeleported(BaseModel):
    """An event type a newer release of the orders service writes."""

    destination: str


def third_order() -> tuple[Step, ...]:
    """Create, pay and ship a third order (dan's)."""
    return tuple(
        replace(
            s,
            name=s.name + "-3",
            key=f"{s.key}-3",
            user="dan" if s.user == "alice" else s.user,
            path=s.path.replace("{order}", "{order3}"),
            as_name="order3" if s.creates else None,
        )
        for s in ORDER_STEPS[:3]
    )


def parked(world: World) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, var in PROJECTION_TABLES.items():
        out[name] = [i for i in world.scan(world.env[var]) if i["pk"]["S"] == "_parked"]
    return out


def test_a_poison_event_parks_only_its_stream_amid_faults_and_unpark_repairs_it(world):
    from orders.app import registry

    outcome = run(world, ORDER_STEPS + SECOND_ORDER_STEPS + third_order())
    victim = outcome.ids["order"]  # delivered: 4 events; the newer release appends a 5th
    world.dynamodb.put_item(
        TableName=world.env["EVENTS_TABLE"],
        Item={
            "stream_id": {"S": victim},
            "version": {"N": "5"},
            "event_id": {"S": "evt-teleported-1"},
            "type": {"S": "OrderTeleported"},
            "schema_version": {"N": "1"},
            "occurred_at": {"S": "2031-01-01T00:00:00.000Z"},
            "data": {"S": json.dumps({"destination": "moon"})},
            "metadata": {"S": "{}"},
        },
        ConditionExpression="attribute_not_exists(version)",
    )
    records = world.stream_records("order-")
    assert any(stream_of(r) == victim and r["dynamodb"]["Keys"]["version"]["N"] == "5" for r in records)

    from orders.projections import handler

    rng = random.Random(8)
    outages = (Outage("dynamodb", "throttle", calls=6, operation="TransactWriteItems"),)
    with world.injector.armed(outages=outages):
        stats = deliver(handler, virtual_shards(records, 3, rng), rng=rng, batch_size=4, random_sizes=True, redeliver=0.3)
        assert len(world.injector.fired) == 6 * 3  # six transactions throttled on all 3 attempts
    assert stats.partial_failures >= 1

    found = parked(world)
    for name in ("order_view", "user_orders", "analytics"):
        assert [i["sk"]["S"] for i in found[name]] == [victim], name
        assert int(found[name][0]["version"]["N"]) == 5
        assert int(found[name][0]["attempts"]["N"]) == 3  # real failures only: throttles never count
    assert found["account_view"] == []
    messages = world.sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 3 and all(victim in m["Body"] for m in messages)
    audit_all(world)  # the others are exact; the victim is parked, not a difference

    from cairn_tools.unpark import main as unpark

    registry.register(OrderTeleported, schema_version=1)  # the fix, deployed
    try:
        for name in ("order_view", "user_orders", "analytics"):
            with redirect_stdout(io.StringIO()) as out:
                assert unpark([name, victim, "--outputs", "/nonexistent/outputs.json"]) == 0, out.getvalue()
        assert all(not items for items in parked(world).values())
        check_read_models(world)  # every view equals the fold, the teleported order included
    finally:
        registry._by_name.pop("OrderTeleported", None)
        registry._by_model.pop(OrderTeleported, None)


def test_malformed_messages_fail_alone_and_the_rest_applies_exactly_once(world):
    from inventory.app import store
    from inventory.handler import handler
    from tests.functional.eda.eda_support import SUBSCRIPTIONS, sqs_record
    from tests.reliability.world import deliver as stream_deliver
    from tests.reliability.world import one_shard

    queue = world.sqs.create_queue(QueueName="inventory-queue")["QueueUrl"]
    arn = world.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = world.env["EVENT_BUS_NAME"]
    world.events.put_rule(Name="inventory", EventBusName=bus, EventPattern=json.dumps(SUBSCRIPTIONS["inventory"]))
    world.events.put_targets(Rule="inventory", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    run(world, ORDER_STEPS + SECOND_ORDER_STEPS)  # order 1 stays open (delivered), order 2 cancelled
    from cairn_platform.publisher import handler as publisher

    stream_deliver(publisher, one_shard(world.stream_records("order-")))
    messages = []
    while True:
        got = world.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        messages.extend(got)
    assert len(messages) == 3  # OrderCreated x2, OrderCancelled
    good = [sqs_record(m, arn) for m in messages]
    poison = [
        {**good[0], "messageId": "poison-1", "body": "{not json"},
        {**good[0], "messageId": "poison-2", "body": json.dumps({"detail-type": "OrderCreated", "detail": {}})},
    ]
    batch = good[:1] + poison[:1] + good[1:] + poison[1:]
    for _ in range(2):  # the whole batch, then all of it again (a redelivery)
        response = handler({"Records": batch}, LambdaContext())
        assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["poison-1", "poison-2"]
    inventory = store()
    assert inventory.sku_level("SKU-1", consistent=True).reserved == 2
    assert inventory.sku_level("SKU-2", consistent=True).reserved == 1
    assert inventory.sku_level("SKU-9", consistent=True).reserved == 0  # reserved, then released
