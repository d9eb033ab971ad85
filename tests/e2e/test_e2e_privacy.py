"""Issue 12 through `make dev` (the local runtime on the moto server, real HTTP): personal data on
an order, shown to the owner, sealed everywhere at rest; erasure; afterwards a scan of every
table, bucket and queue of the local cloud finds it nowhere, and the order still answers."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.conftest import E2E_KEY_CACHE_SECONDS, wait_for

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SKU-E2E-PII", "quantity": 1, "unit_price": "9.99"}]


def _everything(cairn) -> dict[str, str]:
    """Where -> what is stored there: every table item, bucket object and waiting queue message."""
    ddb, s3, sqs = cairn.aws("dynamodb"), cairn.aws("s3"), cairn.aws("sqs")
    parts: dict[str, str] = {}
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for n, item in enumerate(page["Items"]):
                parts[f"{table}#{n}"] = json.dumps(item, default=repr)
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                parts[f"s3://{bucket['Name']}/{obj['Key']}"] = body.decode("utf-8", "replace")
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        if int(attributes["Attributes"].get("ApproximateNumberOfMessages", "0")):
            peek = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            for m in peek.get("Messages", []):
                parts[f"{url}#{m['MessageId']}"] = m["Body"]
    return parts


def _holding(parts: dict[str, str], needle: str) -> dict[str, str]:
    return {where: text[max(0, text.find(needle) - 200):text.find(needle) + 100]
            for where, text in parts.items() if needle in text}


def test_personal_data_is_sealed_at_rest_and_erased_by_crypto_shredding(cairn):
    tag = uuid.uuid4().hex[:12]
    user = f"pii-{uuid.uuid4().hex[:8]}"  # the pseudonymous sub stays by design: not the tag
    token = cairn.token(user)
    personal = {
        "email": f"{tag}@example.com",
        "shipping_address": {"name": f"N {tag}", "line1": f"{tag} Road 1", "city": f"C{tag}",
                             "postal_code": "10115", "country": "DE"},
    }
    body = {"items": ITEMS, "currency": "USD", **personal}
    for attempt in range(3):  # a fresh runtime's catalog projection may take longer than one wait
        try:
            cairn.list_products(body)
            break
        except AssertionError:
            if attempt == 2:
                raise
    status, _, created = cairn.request("POST", "/orders", body, token)
    assert status == 201, created
    order_id = created["order_id"]
    status, _, view = cairn.request("GET", f"/orders/{order_id}?min_version=1", token=token)
    assert status == 200 and view["email"] == personal["email"] and view["personal_data"] == "present"
    wait_for("the Order View projected", lambda: cairn.request("GET", f"/orders/{order_id}", token=token)[0] == 200)
    cairn.wait_idle()
    stored = _everything(cairn)
    assert _holding(stored, order_id)
    assert sorted(_holding(stored, tag).items()) == []  # sealed everywhere, read models included

    status, _, erased = cairn.request("DELETE", "/users/me/personal-data", token=token)
    assert status == 200 and erased["subject"] == user and erased["erased"] is True, erased
    assert cairn.request("DELETE", "/users/me/personal-data", token=token)[2] == erased
    assert cairn.request("DELETE", f"/users/{user}/personal-data", token=cairn.token(f"other-{tag}"))[0] == 403

    # OrdersQueries runs in its own warm instance: it forgets the key within the cache TTL
    # (PERSONAL_DATA_KEY_CACHE_SECONDS: 60 s deployed, 5 s here; docs/privacy.md) — the stated
    # propagation bound of an erasure
    def erased_view() -> dict | None:
        code, _, got = cairn.request("GET", f"/orders/{order_id}", token=token)
        return got if code == 200 and got["personal_data"] == "erased" else None

    started = time.monotonic()
    view = wait_for("the erasure to reach the queries' warm instance", erased_view, timeout=75)
    assert time.monotonic() - started < E2E_KEY_CACHE_SECONDS + 10  # the bound, not luck
    assert (view["email"], view["shipping_address"]) == (None, None)
    assert (view["status"], view["total"]) == ("CREATED", "9.99")
    status, _, history = cairn.request("GET", f"/orders/{order_id}/history?version=1", token=token)
    assert status == 200 and history["personal_data"] == "erased" and history["total"] == "9.99"
    status, _, verified = cairn.request("GET", f"/orders/{order_id}/verification", token=token)
    assert status == 200 and verified["intact"] is True
    cairn.wait_idle()
    assert sorted(_holding(_everything(cairn), tag).items()) == []
