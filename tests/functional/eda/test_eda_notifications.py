"""Notifications consumer: one notification per milestone, never twice, in any delivery order."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from eda_support import http_event, shuffled, sqs_event

import notifications.handler
import notifications.queries
from integration import integration_event_id
from notifications import domain

KINDS = ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"]
FILES = {
    "OrderCreated": "eventbridge_order_created.json",
    "PaymentProcessed": "eventbridge_payment_processed.json",
    "OrderShipped": "eventbridge_order_shipped.json",
    "OrderDelivered": "eventbridge_order_delivered.json",
    "PaymentFailed": "eventbridge_payment_failed.json",
    "OrderCancelled": "eventbridge_order_cancelled.json",
}


@pytest.fixture
def store(cloud):
    from notifications.app import store

    return store()


def milestones(load_event, *, customer: str = "alice", order_id: str | None = None, day: str = "26") -> dict[str, dict]:
    """The EventBridge events of one new order of ``customer`` (a copy of the committed ones)."""
    order_id = order_id or f"order-{uuid.uuid4()}"
    out = {}
    for index, (kind, name) in enumerate(FILES.items()):
        event = copy.deepcopy(load_event(name))
        detail = event["detail"]
        detail["subject"] = order_id
        detail["data"]["order"]["order_id"] = order_id
        detail["data"]["order"]["customer_id"] = customer
        detail["occurred_at"] = f"2026-11-{day}T10:00:0{index}.000Z"
        detail["causation_id"] = f"{order_id}/{kind}"
        detail["id"] = integration_event_id(detail["causation_id"], kind, 1)
        out[kind] = event
    return out


def inbox(store, user="alice"):
    items, _ = store.list_for_user(user, limit=100)
    return items


def test_one_notification_per_milestone_in_any_order_with_duplicates(store, lambda_context, load_event):
    events = milestones(load_event)
    deliveries = [events[k] for k in KINDS] * 3 + [events["PaymentFailed"], events["OrderCancelled"]]
    for seed in range(3):
        batch = shuffled(deliveries, seed)
        for start in range(0, len(batch), 4):
            assert notifications.handler.handler(sqs_event(*batch[start : start + 4]), lambda_context) == {
                "batchItemFailures": []
            }
    items = inbox(store)
    assert [n.kind for n in items] == ["order_delivered", "order_shipped", "payment_processed", "order_created"]
    order_id = events["OrderCreated"]["detail"]["subject"]
    assert {n.notification_id for n in items} == {domain.notification_id(order_id, domain.KINDS[k]) for k in KINDS}
    assert all(n.email_status == "DISABLED" for n in items)


def test_the_committed_reordered_batch(store, lambda_context, load_event):
    assert notifications.handler.handler(load_event("sqs_order_lifecycle_reordered.json"), lambda_context) == {
        "batchItemFailures": []
    }
    assert sorted(n.kind for n in inbox(store)) == ["order_created", "order_delivered", "order_shipped", "payment_processed"]


def test_a_retried_message_after_a_crash_does_not_notify_twice(store, lambda_context, load_event, monkeypatch):
    from notifications import service

    event = milestones(load_event)["OrderCreated"]
    real = service.handle
    calls = []

    def crash_after_storing(*args, **kw):
        calls.append(1)
        outcome = real(*args, **kw)
        if len(calls) == 1:
            raise TimeoutError("timed out after the write")
        return outcome

    monkeypatch.setattr(service, "handle", crash_after_storing)
    message = sqs_event(event)
    assert notifications.handler.handler(message, lambda_context)["batchItemFailures"]
    assert notifications.handler.handler(message, lambda_context) == {"batchItemFailures": []}
    assert len(inbox(store)) == 1


def test_users_see_only_their_own_newest_first_with_pages(store, lambda_context, load_event):
    first = milestones(load_event, day="26")
    second = milestones(load_event, day="27")
    bobs = milestones(load_event, customer="bob")
    notifications.handler.handler(
        sqs_event(first["OrderCreated"], second["OrderCreated"], second["PaymentProcessed"], bobs["OrderCreated"]),
        lambda_context,
    )

    def get(user, **query):
        response = notifications.queries.handler(
            http_event("GET", "/users/me/notifications", sub=user, query={k: str(v) for k, v in query.items()} or None),
            lambda_context,
        )
        return response["statusCode"], json.loads(response["body"])

    status, body = get("alice")
    assert status == 200
    assert [(n["order_id"], n["kind"]) for n in body["notifications"]] == [
        (second["OrderCreated"]["detail"]["subject"], "payment_processed"),
        (second["OrderCreated"]["detail"]["subject"], "order_created"),
        (first["OrderCreated"]["detail"]["subject"], "order_created"),
    ]
    assert set(body["notifications"][0]) >= {"notification_id", "order_id", "kind", "created_at"}
    assert body["next_cursor"] is None

    status, page1 = get("alice", limit=2)
    assert len(page1["notifications"]) == 2 and page1["next_cursor"]
    status, page2 = get("alice", limit=2, cursor=page1["next_cursor"])
    assert [n["kind"] for n in page2["notifications"]] == ["order_created"]
    assert page2["notifications"][0]["order_id"] == first["OrderCreated"]["detail"]["subject"]

    status, body = get("bob")
    assert [n["order_id"] for n in body["notifications"]] == [bobs["OrderCreated"]["detail"]["subject"]]
    status, body = get("carol")
    assert body == {"notifications": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("sub", "query", "status"),
    [
        (None, None, 401),
        ("alice", {"limit": "0"}, 422),
        ("alice", {"limit": "101"}, 422),
        ("alice", {"cursor": "not-a-cursor"}, 422),
        ("alice", {"cursor": "eyJzayI6Im90aGVyIn0"}, 422),  # {"sk":"other"}: not ours
    ],
)
def test_notification_route_errors(store, lambda_context, sub, query, status):
    response = notifications.queries.handler(http_event("GET", "/users/me/notifications", sub=sub, query=query), lambda_context)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["status"] == status


# -- email through SES (off by default) --------------------------------------------------------
@pytest.fixture
def email_on(cloud, monkeypatch):
    """SES switched on, a verified sender, and a user pool where alice has an email address."""
    import notifications.app
    from cairn.aws import client

    ses, idp = client("ses"), client("cognito-idp")
    ses.verify_email_identity(EmailAddress="orders@cairn.example")
    pool = idp.create_user_pool(PoolName="cairn")["UserPool"]["Id"]
    user = idp.admin_create_user(
        UserPoolId=pool, Username="alice", UserAttributes=[{"Name": "email", "Value": "alice@example.com"}]
    )["User"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    monkeypatch.setenv("NOTIFICATIONS_SEND_EMAIL", "true")
    monkeypatch.setenv("NOTIFICATIONS_FROM_ADDRESS", "orders@cairn.example")
    monkeypatch.setenv("USER_POOL_ID", pool)
    notifications.app.sender.cache_clear()
    yield sub
    notifications.app.sender.cache_clear()


def sent_emails():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages


def test_email_is_off_by_default(store, lambda_context, load_event):
    import notifications.app

    assert notifications.app.sender() is None
    notifications.handler.handler(sqs_event(milestones(load_event)["OrderCreated"]), lambda_context)
    assert sent_emails() == []


def test_email_switched_on_sends_once_per_notification(store, lambda_context, load_event, email_on):
    events = milestones(load_event, customer=email_on)
    created = events["OrderCreated"]
    notifications.handler.handler(sqs_event(created, created, events["OrderShipped"]), lambda_context)
    notifications.handler.handler(sqs_event(created), lambda_context)
    emails = sent_emails()
    assert len(emails) == 2
    assert {tuple(m.destinations["ToAddresses"]) for m in emails} == {("alice@example.com",)}
    assert any("has shipped" in m.subject for m in emails)
    assert {n.email_status for n in inbox(store, email_on)} == {"SENT"}


def test_an_interrupted_send_is_finished_by_the_redelivery(store, lambda_context, load_event, email_on, monkeypatch):
    import notifications.app

    sender = notifications.app.sender()
    real_send = sender.send
    attempts = []

    def flaky(n):
        attempts.append(n)
        if len(attempts) == 1:
            raise ConnectionError("SES unreachable")
        return real_send(n)

    monkeypatch.setattr(sender, "send", flaky)
    message = sqs_event(milestones(load_event, customer=email_on)["PaymentProcessed"])
    assert notifications.handler.handler(message, lambda_context)["batchItemFailures"]
    assert [n.email_status for n in inbox(store, email_on)] == ["PENDING"]
    assert notifications.handler.handler(message, lambda_context) == {"batchItemFailures": []}
    assert [n.email_status for n in inbox(store, email_on)] == ["SENT"]
    assert len(sent_emails()) == 1
    assert len(inbox(store, email_on)) == 1


def test_a_user_without_an_address_is_stored_not_retried(store, lambda_context, load_event, email_on):
    notifications.handler.handler(sqs_event(milestones(load_event, customer="ghost")["OrderCreated"]), lambda_context)
    assert [n.email_status for n in inbox(store, "ghost")] == ["NO_ADDRESS"]
    assert sent_emails() == []


def test_the_orders_sealed_email_is_used_until_the_customer_is_erased(
    store, lambda_context, load_event, email_on, monkeypatch
):
    """Issue 12: the event carries the order's e-mail sealed (never plaintext on the bus); the
    sender opens it; once the customer is erased it reads nothing and the account address is used."""
    import notifications.app
    from cairn.aws import client
    from cairn.privacy import DynamoDBKeyStore, KmsKeyWrapper, PersonalDataCodec
    from cairn.privacy.dynamodb import create_keys_table

    kms = client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    create_keys_table(client("dynamodb"), "cairn-personal-data-keys")
    monkeypatch.setenv("PERSONAL_DATA_KEYS_TABLE", "cairn-personal-data-keys")
    monkeypatch.setenv("PERSONAL_DATA_KEY", key)
    notifications.app.sender.cache_clear()
    codec = PersonalDataCodec(DynamoDBKeyStore(client("dynamodb"), "cairn-personal-data-keys"), KmsKeyWrapper(kms, key))

    events = milestones(load_event, customer=email_on)
    order_id = events["OrderCreated"]["detail"]["subject"]
    sealed = codec.seal({"email": "shipping-to@example.org"}, subject=email_on, stream_id=order_id, fields=("email",))
    for event in events.values():
        event["detail"]["data"]["order"]["email"] = sealed["email"]
    assert "shipping-to@example.org" not in json.dumps(events)  # the bus never sees the address
    notifications.handler.handler(sqs_event(events["OrderCreated"]), lambda_context)
    assert [m.destinations["ToAddresses"] for m in sent_emails()] == [["shipping-to@example.org"]]

    codec.erase(email_on, erased_by="staff")
    notifications.app.sender.cache_clear()  # a fresh instance (a warm one forgets within the TTL)
    notifications.handler.handler(sqs_event(events["OrderShipped"]), lambda_context)
    assert sent_emails()[-1].destinations["ToAddresses"] == ["alice@example.com"]
    stored = json.dumps(client("dynamodb").scan(TableName=store.table)["Items"])
    assert "shipping-to@example.org" not in stored and sealed["email"]["ct"] not in stored
