"""Out-of-order, duplicated and missing stream records: the read models still equal the fold of
the event store, and the analytics counters are exact."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from projection_support import (
    BASE_TIME,
    account_history,
    append_in_chunks,
    chaotic_batches,
    domain_account_state,
    domain_order_state,
    independent_analytics,
    order_history,
    stream_of,
)


def seed_orders(harness: Any, rng: random.Random, count: int, customers: int = 5) -> list[str]:
    ids = []
    for i in range(count):
        order_id = f"order-{i:04d}-{rng.randrange(16**8):08x}"
        start = BASE_TIME + timedelta(hours=rng.randint(0, 96), minutes=rng.randint(0, 59))
        history = order_history(rng, order_id, f"user-{rng.randrange(customers)}", start)
        append_in_chunks(harness.orders_store, order_id, history, rng)
        ids.append(order_id)
    return ids


def seed_accounts(harness: Any, rng: random.Random, count: int) -> list[str]:
    ids = []
    for i in range(count):
        account_id = f"account-{i:04d}-{rng.randrange(16**8):08x}"
        append_in_chunks(harness.accounts_store, account_id, account_history(rng, account_id, f"user-{i % 3}", BASE_TIME), rng)
        ids.append(account_id)
    return ids


def assert_orders_match_store(harness: Any, order_ids: list[str]) -> None:
    from orders.read_models import (
        DailyAnalytics,
        OrderViews,
        UserOrders,
        order_view_from_events,
        user_order_entry,
    )

    views = OrderViews(harness.dynamodb, harness.tables["order_view"], consistent=True)
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for order_id in order_ids:
        events = list(harness.orders_store.read(order_id))
        expected = order_view_from_events(events)
        actual = views.get(order_id)
        assert actual == expected, order_id
        # and the fold itself agrees with the domain's own state
        state = domain_order_state(harness.orders_store, order_id)
        assert actual["status"] == state.status.value
        assert actual["total"] == str(state.total)
        assert actual["tracking"] == state.tracking
        assert actual["version"] == len(events)
        assert [t["version"] for t in actual["timeline"]] == list(range(1, len(events) + 1))
        by_customer.setdefault(actual["customer_id"], []).append(user_order_entry(actual))

    user_orders = UserOrders(harness.dynamodb, harness.tables["user_orders"], consistent=True)
    for customer, entries in by_customer.items():
        expected_list = sorted(entries, key=lambda e: (e["created_at"], e["order_id"]), reverse=True)
        listed, cursor = [], None
        while True:
            page, cursor = user_orders.list(customer, limit=3, cursor=cursor)
            listed.extend(page)
            if cursor is None:
                break
        assert listed == expected_list, customer

    expected_days = independent_analytics(harness.orders_store, order_ids)
    analytics = DailyAnalytics(harness.dynamodb, harness.tables["analytics"], consistent=True)
    rows = analytics.days("2026-11-01", "2026-12-31")
    assert {(r["date"], r["currency"]): r for r in rows} == expected_days


def assert_accounts_match_store(harness: Any, account_ids: list[str]) -> None:
    from accounts.read_models import AccountViews, account_view_from_events

    views = AccountViews(harness.dynamodb, harness.tables["account_view"], consistent=True)
    for account_id in account_ids:
        events = list(harness.accounts_store.read(account_id))
        actual = views.get(account_id)
        assert actual == account_view_from_events(events)
        assert actual["balance"] == str(domain_account_state(harness.accounts_store, account_id).balance)
        assert actual["version"] == len(events)


@pytest.mark.parametrize("seed", [7, 1234])
def test_shuffled_duplicated_and_dropped_records_fold_to_the_store(harness, seed):
    rng = random.Random(seed)
    order_ids = seed_orders(harness, rng, 40)
    records = harness.reader.new()
    order_records = [r for r in records if stream_of(r).startswith("order-")]
    batches = chaotic_batches(order_records, rng, duplicate=0.3, drop=0.3)
    for batch in batches:
        response = harness.orders(batch)
        assert response == {"batchItemFailures": []}
    assert_orders_match_store(harness, order_ids)

    # a second, different storm over the same records changes nothing (redelivery)
    before = harness.dynamodb.scan(TableName=harness.tables["analytics"])["Items"]
    for batch in chaotic_batches(order_records, random.Random(seed + 1), duplicate=0.5, drop=0.0):
        assert harness.orders(batch) == {"batchItemFailures": []}
    after = harness.dynamodb.scan(TableName=harness.tables["analytics"])["Items"]
    assert sorted(map(str, before)) == sorted(map(str, after))
    assert_orders_match_store(harness, order_ids)


def test_accounts_shuffled_and_duplicated(harness):
    rng = random.Random(99)
    account_ids = seed_accounts(harness, rng, 25)
    records = [r for r in harness.reader.new() if stream_of(r).startswith("account-")]
    for batch in chaotic_batches(records, rng, duplicate=0.4, drop=0.4):
        assert harness.accounts(batch) == {"batchItemFailures": []}
    assert_accounts_match_store(harness, account_ids)
