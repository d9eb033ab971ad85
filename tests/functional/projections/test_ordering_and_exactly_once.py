"""Out-of-order, duplicated and missing stream records: the read models still equal the fold of
the event store, and the analytics counters are exact."""

from __future__ import annotations

import random

import pytest
from projection_support import (
    assert_accounts_match_store,
    assert_orders_match_store,
    chaotic_batches,
    seed_accounts,
    seed_orders,
    stream_of,
)


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
