"""Personal data that can be forgotten (issue 12, docs/privacy.md): ``email``/``shipping_address``
on POST /orders sealed to the customer's public key; the owner and staff read them; erasure
destroys the key — after it a scan of every table, bucket and queue of the (moto) cloud finds the
plaintext nowhere, while the orders keep their status, totals, history and verification."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, Projector

STAFF = {"user": "sam", "groups": ["staff"]}


def personal(tag: str) -> dict[str, Any]:
    """Unique personal data: every value carries ``tag``, so a scan can look for it."""
    return {
        "email": f"{tag}@example.com",
        "shipping_address": {
            "name": f"Name {tag}",
            "line1": f"{tag} Street 1",
            "line2": f"Floor {tag}",
            "city": f"City{tag}",
            "postal_code": "10115",
            "country": "DE",
        },
    }


def create(api: Api, user: str = "alice", **extra: Any) -> str:
    reply = api.post("/orders", {**ORDER_BODY, **extra}, user=user)
    assert reply.status == 201, reply.text
    return reply.json["order_id"]


def everything_stored() -> str:
    """Every item of every table, every object of every bucket, every message of every queue of
    the in-process cloud, as one text (what an operator, a backup or a leak would see)."""
    from cairn.aws import client

    ddb, s3, sqs = client("dynamodb"), client("s3"), client("sqs")
    parts: list[str] = []
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            parts.extend(json.dumps(item, default=repr) for item in page["Items"])
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                parts.append(body.decode("utf-8", "replace"))
    for url in sqs.list_queues().get("QueueUrls", []):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        parts.extend(m["Body"] for m in messages.get("Messages", []))
    return "\n".join(parts)


def tables_holding(tag: str) -> list[str]:
    from cairn.aws import client

    ddb = client("dynamodb")
    return [
        table
        for table in ddb.list_tables()["TableNames"]
        if any(tag in json.dumps(item, default=repr) for item in ddb.scan(TableName=table)["Items"])
    ]


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:12]


# -- POST /orders with personal data ---------------------------------------------------------------
def test_owner_and_staff_read_it_while_nothing_stored_holds_the_plaintext(
    orders_api: Api, orders_queries: Api, order_projector: Projector, tag: str
):
    import io
    import logging

    from orders.api import service as commands
    from orders.queries import service as queries

    logged = io.StringIO()  # what the functions' log handlers write (same formatter and filters)
    captures = []
    for svc in (commands, queries):
        capture = logging.StreamHandler(logged)
        capture.setFormatter(svc.logger.registered_formatter)
        for f in svc.logger.registered_handler.filters:
            capture.addFilter(f)
        svc.logger.addHandler(capture)
        captures.append((svc, capture))
    try:
        _read_and_scan(orders_api, orders_queries, order_projector, tag)
    finally:
        for svc, capture in captures:
            svc.logger.removeHandler(capture)
    assert "order-" in logged.getvalue() and tag not in logged.getvalue()  # nor do the log lines


def _read_and_scan(orders_api: Api, orders_queries: Api, order_projector: Projector, tag: str) -> None:
    data = personal(tag)
    order_id = create(orders_api, **data, payment_token=f"tok_{tag}")
    assert order_projector.run() == 1
    for who in ({"user": "alice"}, STAFF):
        view = orders_queries.get(f"/orders/{order_id}", **who).json
        assert (view["email"], view["shipping_address"], view["personal_data"]) == (
            data["email"], data["shipping_address"], "present"
        )
    assert orders_queries.get(f"/orders/{order_id}", user="bob").is_problem(404)
    history = orders_queries.get(f"/orders/{order_id}/history", query={"version": 1}).json
    assert (history["email"], history["personal_data"]) == (data["email"], "present")
    created = orders_queries.get(f"/orders/{order_id}/events").json["events"][0]
    assert created["data"]["shipping_address"] == data["shipping_address"]
    assert created["data"]["personal_data"] == "present"
    # stored: events, the Order View, user orders, idempotency, keys, payment intents — sealed or absent
    assert tables_holding(tag) == []
    # what the publisher would put on the bus (and its archive): the e-mail sealed, never plaintext
    from integration.order_translation import to_integration_events
    from orders.app import runtime

    envelope = next(iter(runtime().store.read(order_id)))
    _, state = runtime().state_at(order_id, up_to_version=1)[:2]
    (published,) = to_integration_events(envelope, state)
    on_the_bus = published.model_dump_json()
    assert tag not in on_the_bus and '"email":{"pii":1' in on_the_bus.replace(" ", "")
    stored = everything_stored()
    assert order_id in stored and tag not in stored  # the scan sees the order, not the person


def test_an_order_without_personal_data_says_none(orders_api: Api, orders_queries: Api):
    order_id = create(orders_api)
    view = orders_queries.get(f"/orders/{order_id}", query={"min_version": 1}).json
    assert (view["email"], view["shipping_address"], view["personal_data"]) == (None, None, "none")
    assert orders_queries.get(f"/orders/{order_id}/events").json["events"][0]["data"]["personal_data"] == "none"


MALFORMED = [
    ("email", "not-an-email"),
    ("email", "a@b"),
    ("email", "x" * 65 + "@example.com"),
    ("email", "a b@example.com"),
    ("shipping_address", {"name": "A", "line1": "L", "city": "C", "postal_code": "1", "country": "de"}),
    ("shipping_address", {"name": "A", "line1": "L", "city": "C", "postal_code": "1", "country": "DEU"}),
    ("shipping_address", {"name": "", "line1": "L", "city": "C", "postal_code": "1", "country": "DE"}),
    ("shipping_address", {"name": "A" * 101, "line1": "L", "city": "C", "postal_code": "1", "country": "DE"}),
    ("shipping_address", {"name": "A", "line1": "L", "city": "C", "postal_code": "1", "country": "DE", "x": 1}),
    ("shipping_address", {"name": "A", "line1": "L", "city": "C", "country": "DE"}),
    ("shipping_address", {"name": "A", "line1": "L\x00", "city": "C", "postal_code": "1", "country": "DE"}),
    ("shipping_address", {"name": "A", "line1": "L", "city": "C", "postal_code": "<script>", "country": "DE"}),
    ("shipping_address", "Main Street 1"),
]


def test_malformed_personal_data_is_422_naming_the_field(orders_api: Api):
    from cairn.aws import client

    for field, value in MALFORMED:  # one cloud for all cases (each is one request)
        reply = orders_api.post("/orders", {**ORDER_BODY, field: value})
        assert reply.is_problem(422, "validation-failed"), (field, value, reply.text)
        assert field in reply.text, (field, value)
    assert client("dynamodb").scan(TableName="cairn-events")["Count"] == 0
    assert client("dynamodb").scan(TableName="cairn-personal-data-keys")["Count"] == 0  # no key made


# -- erasure ---------------------------------------------------------------------------------------
def test_erasure_forgets_the_person_and_keeps_the_orders(
    orders_api: Api, orders_queries: Api, order_projector: Projector, tag: str
):
    from orders.app import runtime

    mine, other = personal(tag), personal(tag[::-1])
    first = create(orders_api, **mine)
    second = create(orders_api, **mine)
    bobs = create(orders_api, user="bob", **other)
    assert orders_api.post(f"/orders/{first}/payment", {"payment_id": "p1", "amount": ORDER_TOTAL}, **STAFF).status == 200
    assert runtime().take_snapshot(first) is not None  # a snapshot holding the order's state
    order_projector.run()
    before = {oid: orders_queries.get(f"/orders/{oid}", **STAFF).json for oid in (first, second)}
    assert before[first]["email"] == mine["email"]

    reply = orders_api("DELETE", "/users/me/personal-data")
    assert reply.status == 200, reply.text
    body = reply.json
    assert body["subject"] == "alice" and body["erased"] is True and body["erased_at"].endswith("Z")
    assert orders_api("DELETE", "/users/me/personal-data").json == body  # idempotent: same answer

    for order_id in (first, second):
        view = orders_queries.get(f"/orders/{order_id}").json
        assert (view["email"], view["shipping_address"], view["personal_data"]) == (None, None, "erased")
        # the order itself stays: status, totals, history, verification
        assert {k: view[k] for k in ("status", "total", "currency", "items", "version")} == {
            k: before[order_id][k] for k in ("status", "total", "currency", "items", "version")
        }
        history = orders_queries.get(f"/orders/{order_id}/history", query={"version": 1}).json
        assert (history["email"], history["personal_data"], history["total"]) == (None, "erased", ORDER_TOTAL)
        event = orders_queries.get(f"/orders/{order_id}/events", **STAFF).json["events"][0]
        assert (event["data"]["email"], event["data"]["personal_data"]) == (None, "erased")
        verified = orders_queries.get(f"/orders/{order_id}/verification").json
        assert verified["intact"] is True, verified
    assert orders_queries.get(f"/orders/{first}/history", query={"version": 2}).json["status"] == "PAID"
    # a fresh instance (no warm key) reads the same
    orders_app_reset()
    assert orders_queries.get(f"/orders/{first}", **STAFF).json["personal_data"] == "erased"
    # someone else's data is untouched
    assert orders_queries.get(f"/orders/{bobs}", user="bob").json["email"] == other["email"]

    # folds keep working after erasure: commands, projections, rebuild from the events
    assert orders_api.post(f"/orders/{first}/shipment", {"tracking": "T1"}, **STAFF).status == 200
    order_projector.run()
    assert orders_queries.get(f"/orders/{first}").json["status"] == "SHIPPED"

    # the audit record: a tombstone (no key material) and an event in erasure-alice
    from cairn.aws import client

    item = client("dynamodb").get_item(TableName="cairn-personal-data-keys", Key={"subject": {"S": "alice"}})["Item"]
    assert "wrapped_key" not in item and item["erased_by"]["S"] == "alice" and item["erased_at"]["S"] == body["erased_at"]
    records = list(runtime().store.read("erasure-alice"))
    assert [(e.type, e.data.erased_at, e.data.erased_key_id) for e in records] == [
        ("PersonalDataErased", body["erased_at"], item["erased_key_id"]["S"])
    ]
    assert tag not in everything_stored()


def orders_app_reset() -> None:
    import orders.app

    orders.app.personal_data.cache_clear()


def test_staff_erase_anyone_others_may_not(orders_api: Api, orders_queries: Api, tag: str):
    order_id = create(orders_api, user="bob", **personal(tag))
    assert orders_api("DELETE", "/users/bob/personal-data", user="alice").is_problem(403)
    assert orders_queries.get(f"/orders/{order_id}", user="bob", query={"min_version": 1}).json["personal_data"] == "present"
    reply = orders_api("DELETE", "/users/bob/personal-data", **STAFF)
    assert reply.status == 200 and reply.json["subject"] == "bob"
    assert orders_api("DELETE", "/users/bob/personal-data", **STAFF).json == reply.json
    assert orders_queries.get(f"/orders/{order_id}", user="bob", query={"min_version": 1}).json["personal_data"] == "erased"
    from orders.app import runtime

    assert [e.data.erased_by for e in runtime().store.read("erasure-bob")] == ["sam"]


def test_erasing_someone_without_data_answers_the_same_twice(orders_api: Api):
    first = orders_api("DELETE", "/users/me/personal-data", user="carol")
    assert first.status == 200 and first.json["subject"] == "carol"
    assert orders_api("DELETE", "/users/me/personal-data", user="carol").json == first.json


def test_new_data_after_erasure_gets_a_new_key(orders_api: Api, orders_queries: Api, tag: str):
    old = create(orders_api, **personal(tag))
    assert orders_api("DELETE", "/users/me/personal-data").status == 200
    new = create(orders_api, **personal(tag + "n"))
    assert orders_queries.get(f"/orders/{old}", query={"min_version": 1}).json["personal_data"] == "erased"
    assert orders_queries.get(f"/orders/{new}", query={"min_version": 1}).json["email"] == f"{tag}n@example.com"


class Outage:
    """A client whose listed operations fail like a throttled service (everything else is real)."""

    def __init__(self, real: Any, operations: set[str], code: str = "ThrottlingException"):
        self.real, self.operations, self.code = real, operations, code

    def __getattr__(self, name: str) -> Any:
        if name in self.operations:
            def fail(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": self.code, "Message": "down"}}, name)

            return fail
        return getattr(self.real, name)


def test_key_service_outage_is_503_and_erases_nothing(orders_api: Api, orders_queries: Api, tag: str):
    from cairn.aws import client
    from orders.app import personal_data, runtime

    order_id = create(orders_api, **personal(tag))
    codec = personal_data()
    real = codec.keys.client
    codec.keys.client = Outage(real, {"put_item"})
    try:
        reply = orders_api("DELETE", "/users/me/personal-data")
    finally:
        codec.keys.client = real
    assert reply.is_problem(503) and int(reply.headers["retry-after"]) >= 1, reply.text
    item = client("dynamodb").get_item(TableName="cairn-personal-data-keys", Key={"subject": {"S": "alice"}})["Item"]
    assert "wrapped_key" in item and "erased_at" not in item  # nothing erased...
    assert list(runtime().store.read("erasure-alice")) == []  # ...and nothing recorded
    assert orders_queries.get(f"/orders/{order_id}", query={"min_version": 1}).json["personal_data"] == "present"
    assert orders_api("DELETE", "/users/me/personal-data").status == 200  # the retry completes it


def test_a_crash_after_the_key_is_destroyed_is_completed_by_the_retry(orders_api: Api, tag: str):
    from orders.app import personal_data, runtime

    create(orders_api, **personal(tag))
    store = runtime().store
    real_append = store.append

    def crash(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "TransactWriteItems")

    store.append = crash
    try:
        assert orders_api("DELETE", "/users/me/personal-data").is_problem(503)
    finally:
        store.append = real_append
    assert personal_data().keys.get("alice").erased_at  # the key is gone already
    reply = orders_api("DELETE", "/users/me/personal-data")
    assert reply.status == 200
    assert [e.data.erased_at for e in store.read("erasure-alice")] == [reply.json["erased_at"]]


def test_kms_outage_on_create_is_503_and_writes_nothing(orders_api: Api, tag: str):
    from cairn.aws import client
    from orders.app import personal_data

    codec = personal_data()
    real = codec.kms.client
    codec.kms.client = Outage(real, {"generate_data_key", "decrypt"}, code="KMSInternalException")
    try:
        reply = orders_api.post("/orders", {**ORDER_BODY, **personal(tag)})
    finally:
        codec.kms.client = real
    assert reply.is_problem(503) and "retry-after" in reply.headers
    assert client("dynamodb").scan(TableName="cairn-events")["Count"] == 0


def test_a_cold_create_for_a_known_customer_reads_one_key_item_and_never_calls_kms(
    orders_api: Api, orders_queries: Api, call_log: Any, tag: str
):
    """OrdersCommands seals with the customer's public key: a cold instance makes one keys-table
    GetItem and no KMS call, and works without kms:Decrypt (CDK grants it none)."""
    from orders.app import personal_data

    create(orders_api, **personal(f"{tag}a"))  # alice's first data made her key pair
    personal_data.cache_clear()  # another OrdersCommands instance, cold, ...
    codec = personal_data()
    real = codec.kms.client
    call_log.attach(real, codec.keys.client)
    codec.kms.client = Outage(real, {"decrypt"}, code="AccessDeniedException")  # ... without kms:Decrypt
    try:
        order_id = create(orders_api, **personal(tag))
        assert call_log.calls == ["GetItem"]
        call_log.clear()
        create(orders_api, **personal(f"{tag}c"))  # warm: none
        assert call_log.calls == []
    finally:
        codec.kms.client = real
    history = orders_queries.get(f"/orders/{order_id}/history", query={"version": 1}).json
    assert (history["email"], history["personal_data"]) == (personal(tag)["email"], "present")


def test_a_customer_sees_staff_acted_not_which_staff_member(orders_api: Api, orders_queries: Api):
    order_id = create(orders_api)
    assert orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "p1", "amount": ORDER_TOTAL}, **STAFF).status == 200
    mine = [e["metadata"]["actor"] for e in orders_queries.get(f"/orders/{order_id}/events").json["events"]]
    staff = [e["metadata"]["actor"] for e in orders_queries.get(f"/orders/{order_id}/events", **STAFF).json["events"]]
    assert mine == ["alice", "staff"] and staff == ["alice", "sam"]
