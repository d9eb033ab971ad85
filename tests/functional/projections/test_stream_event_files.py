"""The handlers fed with the real-shaped DynamoDB stream events of tests/events/ (the store holds
exactly the events those records carry): order, duplicates and partial delivery do not matter."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"
ORDER_A = "order-0b9c3f4e-8a51-4f7e-9a0c-1d2e3f405162"
ORDER_B = "order-7d1e2c3b-4a59-4e6f-8b7a-9c0d1e2f3a4b"
ACCOUNT = "account-5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((EVENTS / name).read_text())["Records"]


def store_images(harness: Any, records: list[dict[str, Any]]) -> None:
    """Put the records' images in the events table: the store the records came from."""
    for record in records:
        harness.dynamodb.put_item(TableName=harness.events_table, Item=record["dynamodb"]["NewImage"])


def test_event_files_are_real_shaped():
    for name in ("ddb_stream_orders.json", "ddb_stream_accounts.json", "ddb_stream_poison.json"):
        for record in load(name):
            assert record["eventSource"] == "aws:dynamodb"
            assert record["eventName"] == "INSERT"
            assert record["eventSourceARN"].startswith("arn:aws:dynamodb:")
            body = record["dynamodb"]
            assert set(body) >= {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes", "StreamViewType"}
            assert body["StreamViewType"] == "NEW_IMAGE"
            assert body["Keys"]["stream_id"] == body["NewImage"]["stream_id"]


def expected_order_views() -> dict[str, dict[str, Any]]:
    return {
        ORDER_A: {
            "order_id": ORDER_A,
            "customer_id": "alice",
            "status": "DELIVERED",
            "currency": "USD",
            "items": [
                {"sku": "CAIRN-STONE", "quantity": 2, "unit_price": "19.99"},
                {"sku": "MAP", "quantity": 1, "unit_price": "5.00"},
            ],
            "total": "44.98",
            "version": 4,
            "created_at": "2026-11-25T23:59:58.120Z",
            "updated_at": "2026-11-27T14:02:31.007Z",
            "tracking": "1Z999AA10123456784",
            "refund": None,
            "pending": [],
            "timeline": [
                {"type": "OrderCreated", "version": 1, "occurred_at": "2026-11-25T23:59:58.120Z"},
                {"type": "PaymentProcessed", "version": 2, "occurred_at": "2026-11-26T00:00:01.450Z"},
                {"type": "OrderShipped", "version": 3, "occurred_at": "2026-11-26T09:15:00.000Z"},
                {"type": "OrderDelivered", "version": 4, "occurred_at": "2026-11-27T14:02:31.007Z"},
            ],
        },
        ORDER_B: {
            "order_id": ORDER_B,
            "customer_id": "carol",
            "status": "CANCELLED",
            "currency": "EUR",
            "items": [{"sku": "BOOT", "quantity": 1, "unit_price": "120.00"}],
            "total": "120.00",
            "version": 3,
            "created_at": "2026-11-26T10:00:00.000Z",
            "updated_at": "2026-11-26T11:30:00.000Z",
            "tracking": None,
            "refund": None,
            "pending": [],
            "timeline": [
                {"type": "OrderCreated", "version": 1, "occurred_at": "2026-11-26T10:00:00.000Z"},
                {"type": "PaymentProcessed", "version": 2, "occurred_at": "2026-11-26T10:05:00.000Z"},
                {"type": "OrderCancelled", "version": 3, "occurred_at": "2026-11-26T11:30:00.000Z"},
            ],
        },
    }


EXPECTED_DAYS = [
    # created just before midnight, paid just after: creation and revenue land on different days
    {"date": "2026-11-25", "currency": "USD", "orders_created": 1, "orders_paid": 0, "orders_cancelled": 0,
     "revenue": "0.00", "average_order_value": "0.00",
     "orders_refunded": 0, "refunds": "0.00", "net_revenue": "0.00"},
    {"date": "2026-11-26", "currency": "EUR", "orders_created": 1, "orders_paid": 1, "orders_cancelled": 1,
     "revenue": "120.00", "average_order_value": "120.00",
     "orders_refunded": 0, "refunds": "0.00", "net_revenue": "120.00"},
    {"date": "2026-11-26", "currency": "USD", "orders_created": 0, "orders_paid": 1, "orders_cancelled": 0,
     "revenue": "44.98", "average_order_value": "44.98",
     "orders_refunded": 0, "refunds": "0.00", "net_revenue": "44.98"},
]


def read_orders(harness: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    from orders.read_models import DailyAnalytics, OrderViews, UserOrders

    views = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True)
    lists = UserOrders(harness.dynamodb, harness.tables["user_orders"], consistent=True)
    days = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True)
    return (
        {oid: views.get(oid) for oid in (ORDER_A, ORDER_B)},
        lists.list("alice", 10)[0] + lists.list("carol", 10)[0],
        days.days("2026-11-25", "2026-11-27"),
    )


@pytest.mark.parametrize("seed", range(6))
def test_orders_file_in_any_order_with_duplicates_and_holes(harness, seed):
    records = load("ddb_stream_orders.json")
    store_images(harness, records)
    rng = random.Random(seed)
    # hold back a random subset of non-final records: the handler must read them from the store
    last = {ORDER_A: 4, ORDER_B: 3}
    delivered = [r for r in records if int(r["dynamodb"]["Keys"]["version"]["N"]) == last[r["dynamodb"]["Keys"]["stream_id"]["S"]] or rng.random() < 0.5]
    delivered += rng.sample(records, 3)  # duplicates
    rng.shuffle(delivered)
    cut = rng.randint(1, len(delivered))
    for batch in (delivered[:cut], delivered[cut:], copy.deepcopy(records)):  # and one full redelivery
        if batch:
            assert harness.orders(batch) == {"batchItemFailures": []}
    views, listed, days = read_orders(harness)
    assert views == expected_order_views()
    assert listed == [
        {"order_id": ORDER_A, "status": "DELIVERED", "total": "44.98", "currency": "USD",
         "created_at": "2026-11-25T23:59:58.120Z", "version": 4},
        {"order_id": ORDER_B, "status": "CANCELLED", "total": "120.00", "currency": "EUR",
         "created_at": "2026-11-26T10:00:00.000Z", "version": 3},
    ]
    assert days == EXPECTED_DAYS


def test_accounts_file_reversed_and_repeated(harness):
    records = load("ddb_stream_accounts.json")
    store_images(harness, records)
    assert harness.accounts(list(reversed(records)) + records[:2]) == {"batchItemFailures": []}
    from accounts.read_models import AccountViews

    view = AccountViews(harness.dynamodb, harness.tables["account_view"], consistent=True).get(ACCOUNT)
    assert view == {
        "account_id": ACCOUNT,
        "owner_id": "alice",
        "currency": "USD",
        "balance": "175.05",
        "version": 4,
        "updated_at": "2026-11-26T08:03:00.000Z",
    }


def test_poison_file_parks_only_its_stream(harness):
    records = load("ddb_stream_poison.json")
    store_images(harness, records)
    poisoned = next(r for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == ORDER_B and r["dynamodb"]["Keys"]["version"]["N"] == "2")
    responses = [harness.orders(records) for _ in range(3)]
    # attempts 1 and 2: only the poisoned stream's lowest failed record is reported
    assert responses[0] == responses[1] == {"batchItemFailures": [{"itemIdentifier": poisoned["dynamodb"]["SequenceNumber"]}]}
    # attempt 3 parks it: the batch goes through
    assert responses[2] == {"batchItemFailures": []}
    views, _, days = read_orders(harness)
    assert views[ORDER_A] == expected_order_views()[ORDER_A]
    assert views[ORDER_B]["version"] == 1 and views[ORDER_B]["status"] == "CREATED"
    assert [d for d in days if d["currency"] == "USD"] == [d for d in EXPECTED_DAYS if d["currency"] == "USD"]
    assert [d for d in days if d["currency"] == "EUR"] == [
        {"date": "2026-11-26", "currency": "EUR", "orders_created": 1, "orders_paid": 0, "orders_cancelled": 0,
         "revenue": "0.00", "average_order_value": "0.00",
         "orders_refunded": 0, "refunds": "0.00", "net_revenue": "0.00"}
    ]
    messages = harness.parked_messages()
    assert sorted(m["projection"] for m in messages) == ["analytics", "order_view", "user_orders"]
    for message in messages:
        assert (message["stream_id"], message["version"], message["head"]) == (ORDER_B, 2, 3)
        assert "CorruptEventError" in message["error"] and message["attempts"] == 3
    # redelivery after parking: skipped, nothing reported, nothing changes
    assert harness.orders(records) == {"batchItemFailures": []}
    assert read_orders(harness)[0] == views


def emitted_metrics(stdout: str) -> dict[str, float]:
    """Sum of every EMF metric printed by Powertools (one JSON document per flush)."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            lag = {m["Name"] for m in directive["Metrics"]} == {"LagSeconds", "EventsBehind"}
            dimensions = [["consumer", "service"]] if lag else [["service"]]  # lag: per consumer
            assert directive["Namespace"] == "Cairn" and directive["Dimensions"] == dimensions
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values if isinstance(values, list) else [values])
    return totals


def test_metrics_count_applied_duplicates_gaps_and_parks(harness, capsys):
    records = load("ddb_stream_orders.json")
    store_images(harness, records)
    capsys.readouterr()
    # versions 1 of both orders held back (gaps), the last record twice
    delivered = [r for r in records if r["dynamodb"]["Keys"]["version"]["N"] != "1"] + [records[-1]]
    assert harness.orders(delivered) == {"batchItemFailures": []}
    first = emitted_metrics(capsys.readouterr().out)
    # the file's records are old: the batch arrived that late, and left nothing behind
    assert first.pop("LagSeconds") > 3600 and first.pop("EventsBehind") == 0
    # 7 events x 3 projections; 2 repaired per projection; the repeated record is a duplicate in each
    assert first == {"EventsApplied": 21, "DuplicatesSkipped": 3, "GapsRepaired": 2, "StreamsParked": 0}
    assert harness.orders(records) == {"batchItemFailures": []}
    second = emitted_metrics(capsys.readouterr().out)
    assert second.pop("EventsBehind") == 0 and second.pop("LagSeconds") > 0
    assert second == {"EventsApplied": 0, "DuplicatesSkipped": 21, "GapsRepaired": 0, "StreamsParked": 0}
