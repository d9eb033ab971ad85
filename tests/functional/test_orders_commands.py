"""OrdersCommands (orders.api.handler): every command row of API.md's order table, its errors,
isolation, staff routes, If-Match, idempotency, correlation, problem+json, metrics and logs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, captured_logs, metric_values

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STAFF = {"user": "sam", "groups": ["staff"]}


def create(api: Api, user: str = "alice", body: dict | None = None, **kwargs: Any) -> str:
    reply = api.post("/orders", body or ORDER_BODY, user=user, **kwargs)
    assert reply.status == 201, reply.text
    return reply.json["order_id"]


def stored_events(stream_id: str) -> list[Any]:
    from orders.app import runtime

    return list(runtime().store.read(stream_id))


def pay(api: Api, order_id: str, amount: str = ORDER_TOTAL, **kwargs: Any):
    return api.post(f"/orders/{order_id}/payment", {"payment_id": "pay-1", "amount": amount}, **{**STAFF, **kwargs})


# -- POST /orders ----------------------------------------------------------------------------
def test_create_order(orders_api: Api):
    reply = orders_api.post("/orders", {**ORDER_BODY, "payment_token": "tok_visa"}, headers={"X-Correlation-Id": "corr-123"})
    assert reply.status == 201
    body = reply.json
    assert re.fullmatch(f"order-{UUID}", body["order_id"])
    assert body["version"] == 1 and body["status"] == "CREATED" and body["total"] == ORDER_TOTAL
    assert body["pending"] == ["payment"]  # the payment service works on it: wait for a push
    assert reply.headers["location"] == f"/orders/{body['order_id']}"
    assert reply.headers["etag"] == '"1"'
    assert reply.headers["x-correlation-id"] == "corr-123"
    assert reply.content_type == "application/json"
    (event,) = stored_events(body["order_id"])
    assert event.type == "OrderCreated"
    assert event.data.customer_id == "alice"  # the owner is the token's sub, never the body
    assert event.data.payment_intent and "tok_visa" not in event.data.model_dump_json()  # a reference, never the token
    assert event.metadata.correlation_id == "corr-123"
    assert event.metadata.actor == "alice"


def test_each_create_is_a_new_order(orders_api: Api):
    assert create(orders_api) != create(orders_api)


def test_correlation_id_is_generated_when_absent_and_stored(orders_api: Api):
    reply = orders_api.post("/orders", ORDER_BODY)
    cid = reply.headers["x-correlation-id"]
    assert re.fullmatch(UUID, cid)
    assert stored_events(reply.json["order_id"])[0].metadata.correlation_id == cid


def test_unusable_correlation_id_is_replaced_not_echoed(orders_api: Api):
    reply = orders_api.post("/orders", ORDER_BODY, headers={"X-Correlation-Id": "x" * 300})
    assert reply.status == 201
    assert re.fullmatch(UUID, reply.headers["x-correlation-id"])


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**ORDER_BODY, "items": []}, ["body", "items"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]}, ["body", "items", 0, "quantity"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": 1001, "unit_price": "1.00"}]}, ["body", "items", 0, "quantity"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": "1", "unit_price": "1.00"}]}, ["body", "items", 0, "quantity"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": 1, "unit_price": 9.99}]}, ["body", "items", 0, "unit_price"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": 1, "unit_price": "9.999"}]}, ["body", "items", 0, "unit_price"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": 1, "unit_price": "0.00"}]}, ["body", "items", 0, "unit_price"]),
        ({**ORDER_BODY, "items": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}] * 101}, ["body", "items"]),
        ({**ORDER_BODY, "currency": "usd"}, ["body", "currency"]),
        ({"items": ORDER_BODY["items"]}, ["body", "currency"]),
        ({**ORDER_BODY, "customer_id": "mallory"}, ["body", "customer_id"]),  # no smuggling the owner
        ({**ORDER_BODY, "payment_token": ""}, ["body", "payment_token"]),
    ],
)
def test_create_validation_is_422_with_locations(orders_api: Api, body: dict, loc: list):
    reply = orders_api.post("/orders", body)
    assert reply.is_problem(422, "validation-failed"), reply.text
    assert loc in [e["loc"] for e in reply.json["errors"]]
    assert all(set(e) == {"loc", "msg"} and e["msg"] for e in reply.json["errors"])


def test_limits_are_inclusive(orders_api: Api):
    items = [{"sku": f"S{i}", "quantity": 1000, "unit_price": "0.01"} for i in range(100)]
    reply = orders_api.post("/orders", {"items": items, "currency": "EUR"})
    assert reply.status == 201 and reply.json["total"] == "1000.00"


def test_order_total_beyond_what_money_can_carry_is_422_not_500(orders_api: Api):
    items = [{"sku": f"S{i}", "quantity": 1000, "unit_price": "1000000.00"} for i in range(100)]
    reply = orders_api.post("/orders", {"items": items, "currency": "EUR"})
    assert reply.is_problem(422, "validation-failed"), reply.text


@pytest.mark.parametrize(
    "raw",
    ["{not json", '{"items": [', "", "null", "[]", '"text"', "1" * 5000, "[" * 5000 + "]" * 5000],
)
def test_undecodable_or_non_object_bodies_never_500(orders_api: Api, raw: str):
    reply = orders_api.post("/orders", raw_body=raw)
    if raw in ("{not json", '{"items": [', "1" * 5000, "[" * 5000 + "]" * 5000):
        assert reply.is_problem(400, "malformed-json"), reply.text
    else:
        assert reply.is_problem(422, "validation-failed"), reply.text


def test_body_over_64_kib_is_413(orders_api: Api):
    padding = "x" * (64 * 1024)
    reply = orders_api.post("/orders", raw_body='{"currency":"USD","items":[],"pad":"' + padding + '"}')
    assert reply.is_problem(413, "payload-too-large")


def test_body_of_exactly_64_kib_is_read(orders_api: Api):
    head = '{"currency":"USD","items":[{"sku":"A","quantity":1,"unit_price":"1.00"}],"payment_token":"'
    raw = head + "t" * (64 * 1024 - len(head) - 2) + '"}'
    assert len(raw.encode()) == 64 * 1024
    reply = orders_api.post("/orders", raw_body=raw)
    assert reply.is_problem(422, "validation-failed")  # read and validated (token too long), not 413
    assert reply.json["errors"][0]["loc"] == ["body", "payment_token"]


def test_base64_encoded_body_is_decoded(orders_api: Api):
    reply = orders_api.post("/orders", ORDER_BODY, base64_body=True)
    assert reply.status == 201


def test_non_json_content_type_is_415(orders_api: Api):
    reply = orders_api.post("/orders", ORDER_BODY, headers={"Content-Type": "text/plain"})
    assert reply.is_problem(415, "unsupported-media-type")


def test_missing_token_is_401(orders_api: Api):
    reply = orders_api.post("/orders", ORDER_BODY, user=None)
    assert reply.is_problem(401, "unauthorized")
    assert reply.headers["www-authenticate"] == "Bearer"


def test_unknown_route_is_404_and_wrong_method_405(orders_api: Api):
    assert orders_api.post("/nowhere", {}).is_problem(404, "not-found")
    reply = orders_api("PUT", "/orders", body=ORDER_BODY)
    assert reply.is_problem(405, "method-not-allowed")
    assert reply.headers["allow"] == "POST"


def test_an_order_without_a_token_has_nothing_pending(orders_api: Api):
    reply = orders_api.post("/orders", ORDER_BODY)
    assert (reply.status, reply.json["pending"]) == (201, [])


def test_pending_payment_ends_with_the_payment_outcome(orders_api: Api):
    reply = orders_api.post("/orders", {**ORDER_BODY, "payment_token": "tok_visa"})
    order_id = reply.json["order_id"]
    assert reply.json["pending"] == ["payment"]
    paid = pay(orders_api, order_id)
    assert (paid.json["status"], paid.json["pending"]) == ("PAID", [])


# -- payment / shipment / delivery (staff) -----------------------------------------------------
def test_full_lifecycle_with_versions_and_etags(orders_api: Api):
    order_id = create(orders_api)
    paid = pay(orders_api, order_id)
    assert paid.status == 200
    assert paid.json == {"order_id": order_id, "version": 2, "status": "PAID", "total": ORDER_TOTAL, "currency": "USD",
                         "pending": []}
    assert paid.headers["etag"] == '"2"'
    shipped = orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "ABC123"}, **STAFF)
    assert (shipped.status, shipped.json["status"], shipped.json["version"]) == (200, "SHIPPED", 3)
    delivered = orders_api.post(f"/orders/{order_id}/delivery", {}, **STAFF)
    assert (delivered.status, delivered.json["status"], delivered.headers["etag"]) == (200, "DELIVERED", '"4"')
    events = stored_events(order_id)
    assert [e.type for e in events] == ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"]
    assert {e.metadata.actor for e in events[1:]} == {"sam"}


def test_delivery_accepts_an_empty_body(orders_api: Api):
    order_id = create(orders_api)
    pay(orders_api, order_id)
    orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "T1"}, **STAFF)
    reply = orders_api("POST", f"/orders/{order_id}/delivery", **STAFF)  # no body at all
    assert reply.status == 200 and reply.json["status"] == "DELIVERED"


@pytest.mark.parametrize(
    ("route", "body"),
    [("payment", {"payment_id": "p", "amount": ORDER_TOTAL}), ("shipment", {"tracking": "T"}), ("delivery", {})],
)
def test_staff_routes_are_403_for_customers_even_their_own_orders(orders_api: Api, route: str, body: dict):
    order_id = create(orders_api, user="alice")
    reply = orders_api.post(f"/orders/{order_id}/{route}", body, user="alice", groups=["customers"])
    assert reply.is_problem(403, "forbidden")
    assert len(stored_events(order_id)) == 1


def test_staff_check_comes_before_body_validation(orders_api: Api):
    order_id = create(orders_api)
    assert orders_api.post(f"/orders/{order_id}/payment", {"amount": 1.5}, user="alice").is_problem(403, "forbidden")
    assert orders_api.post(f"/orders/{order_id}/payment", {"amount": 1.5}, **STAFF).is_problem(422)


@pytest.mark.parametrize("groups", ["[staff]", "staff", "[admin staff]", ["staff"]])
def test_staff_group_in_every_shape_api_gateway_may_pass(orders_api: Api, groups: Any):
    order_id = create(orders_api)
    assert pay(orders_api, order_id, groups=groups).status == 200


# '["admin","staff"]' is not how API Gateway renders a list claim: read exactly, it is one group
@pytest.mark.parametrize("groups", ["[staffing]", "[admin]", "", "[]", "notstaff", '["admin","staff"]'])
def test_groups_that_merely_look_like_staff_are_not_staff(orders_api: Api, groups: str):
    order_id = create(orders_api)
    assert pay(orders_api, order_id, groups=groups).is_problem(403)


def test_payment_must_equal_total_409_and_rejection_metric(orders_api: Api, capsys: pytest.CaptureFixture):
    from orders.api import service

    order_id = create(orders_api)
    capsys.readouterr()
    with captured_logs(service) as lines:
        reply = pay(orders_api, order_id, amount="19.99")
    assert reply.is_problem(409, "payment-amount-mismatch")
    assert "20.00" in reply.json["detail"]
    assert metric_values(capsys.readouterr().out, "CommandRejected") == [1.0]
    assert any(line.get("reason") == "payment-amount-mismatch" for line in lines)
    assert len(stored_events(order_id)) == 1


def test_invalid_transitions_are_409(orders_api: Api):
    order_id = create(orders_api)
    reply = orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "T"}, **STAFF)
    assert reply.is_problem(409, "invalid-transition")
    assert orders_api.post(f"/orders/{order_id}/delivery", {}, **STAFF).is_problem(409, "invalid-transition")
    pay(orders_api, order_id)
    assert pay(orders_api, order_id, amount=ORDER_TOTAL).status == 200  # same payment id again: no-op
    assert len(stored_events(order_id)) == 2
    other = orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "pay-2", "amount": ORDER_TOTAL}, **STAFF)
    assert other.is_problem(409, "invalid-transition")


def test_commands_on_missing_or_malformed_orders_are_404(orders_api: Api):
    assert pay(orders_api, "order-00000000-0000-4000-8000-000000000000").is_problem(404, "not-found")
    assert pay(orders_api, "not-an-order").is_problem(404, "not-found")
    assert pay(orders_api, "account-1").is_problem(404)


# -- cancellation (owner or staff) ---------------------------------------------------------------
def test_owner_cancels_before_shipping(orders_api: Api):
    order_id = create(orders_api, user="alice")
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "changed my mind"}, user="alice")
    assert reply.status == 200 and reply.json["status"] == "CANCELLED" and reply.json["version"] == 2


def test_staff_cancels_a_paid_order(orders_api: Api):
    order_id = create(orders_api, user="alice")
    pay(orders_api, order_id)
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "fraud"}, **STAFF)
    assert reply.status == 200 and reply.json["status"] == "CANCELLED"


def test_another_users_order_is_404_and_untouched(orders_api: Api):
    order_id = create(orders_api, user="alice")
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "mine now"}, user="bob")
    missing = orders_api.post(
        "/orders/order-00000000-0000-4000-8000-000000000000/cancellation", {"reason": "x"}, user="bob"
    )
    assert reply.is_problem(404, "not-found") and missing.is_problem(404, "not-found")
    assert reply.json["title"] == missing.json["title"]  # existence is not leaked
    assert len(stored_events(order_id)) == 1


def test_cancel_after_shipping_is_409(orders_api: Api):
    order_id = create(orders_api)
    pay(orders_api, order_id)
    orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "T"}, **STAFF)
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "too late"})
    assert reply.is_problem(409, "invalid-transition")


def test_cancellation_reason_is_required(orders_api: Api):
    order_id = create(orders_api)
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {})
    assert reply.is_problem(422) and reply.json["errors"][0]["loc"] == ["body", "reason"]


# -- If-Match ------------------------------------------------------------------------------------
@pytest.mark.parametrize("if_match", ['"1"', 'W/"1"', "1", " \"1\" ", "*"])
def test_if_match_current_version_applies(orders_api: Api, if_match: str):
    order_id = create(orders_api)
    reply = pay(orders_api, order_id, headers={"If-Match": if_match})
    assert reply.status == 200 and reply.json["version"] == 2


def test_if_match_stale_version_is_412_with_current_version(orders_api: Api):
    order_id = create(orders_api)
    pay(orders_api, order_id)
    reply = orders_api.post(
        f"/orders/{order_id}/cancellation", {"reason": "r"}, user="alice", headers={"If-Match": '"1"'}
    )
    assert reply.is_problem(412, "version-mismatch")
    assert reply.json["current_version"] == 2
    assert reply.headers["etag"] == '"2"'
    assert len(stored_events(order_id)) == 2


def test_if_match_ahead_of_the_stream_is_412(orders_api: Api):
    order_id = create(orders_api)
    reply = pay(orders_api, order_id, headers={"If-Match": '"7"'})
    assert reply.is_problem(412) and reply.json["current_version"] == 1


def test_if_match_is_checked_against_the_store_not_a_stale_cache(orders_api: Api):
    """Another instance moved the stream on: this instance's warm cache must not decide."""
    from orders import domain
    from orders.app import runtime

    order_id = create(orders_api)  # cached at version 1 in this process
    runtime().store.append(
        order_id,
        [__import__("cairn.events", fromlist=["NewEvent"]).NewEvent(data=domain.OrderCancelled(reason="elsewhere"))],
        1,
    )
    reply = pay(orders_api, order_id, headers={"If-Match": '"2"'})
    assert reply.is_problem(409, "invalid-transition")  # decided on version 2 (cancelled), not the stale 1


@pytest.mark.parametrize("if_match", ['"abc"', "v1", '"1", "2"', '"-1"'])
def test_malformed_if_match_is_422(orders_api: Api, if_match: str):
    order_id = create(orders_api)
    reply = pay(orders_api, order_id, headers={"If-Match": if_match})
    assert reply.is_problem(422)
    assert reply.json["errors"][0]["loc"] == ["header", "if-match"]


# -- Idempotency-Key -----------------------------------------------------------------------------
def test_repeat_returns_first_status_and_body_and_appends_nothing(orders_api: Api, capsys: pytest.CaptureFixture):
    first = orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": "k-1"})
    capsys.readouterr()
    again = orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": "k-1"})
    assert first.status == again.status == 201
    assert again.json == first.json
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert metric_values(capsys.readouterr().out, "IdempotentReplays") == [1.0]
    assert _order_streams() == [first.json["order_id"]]


def test_repeat_of_a_command_on_an_existing_order(orders_api: Api):
    order_id = create(orders_api)
    first = pay(orders_api, order_id, headers={"Idempotency-Key": "pay-once"})
    again = pay(orders_api, order_id, headers={"Idempotency-Key": "pay-once"})
    assert (first.status, first.json) == (again.status, again.json)
    assert again.headers["idempotent-replayed"] == "true"
    assert len(stored_events(order_id)) == 2


def test_repeat_after_the_order_moved_on_still_returns_the_first_answer(orders_api: Api):
    order_id = create(orders_api)
    first = pay(orders_api, order_id, headers={"Idempotency-Key": "k", "If-Match": '"1"'})
    orders_api.post(f"/orders/{order_id}/shipment", {"tracking": "T"}, **STAFF)
    again = pay(orders_api, order_id, headers={"Idempotency-Key": "k", "If-Match": '"1"'})
    assert again.status == 200 and again.json == first.json and again.json["status"] == "PAID"


def test_same_key_different_body_is_422(orders_api: Api):
    orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": "k-2"})
    other = {**ORDER_BODY, "currency": "EUR"}
    reply = orders_api.post("/orders", other, headers={"Idempotency-Key": "k-2"})
    assert reply.is_problem(422, "idempotency-key-reused")
    assert len(_order_streams()) == 1


def test_same_key_different_body_is_422_even_when_the_command_would_be_a_no_op(orders_api: Api):
    order_id = create(orders_api)
    pay(orders_api, order_id, headers={"Idempotency-Key": "k"})
    # same payment id (the decider would do nothing), but another amount: not the same request
    reply = pay(orders_api, order_id, amount="20.01", headers={"Idempotency-Key": "k"})
    assert reply.is_problem(422, "idempotency-key-reused")


def test_same_key_on_another_order_is_a_different_request(orders_api: Api):
    a, b = create(orders_api), create(orders_api)
    pay(orders_api, a, headers={"Idempotency-Key": "k"})
    reply = pay(orders_api, b, headers={"Idempotency-Key": "k"})  # same route, other path parameter
    assert reply.is_problem(422, "idempotency-key-reused")


def test_keys_are_scoped_per_user_and_route(orders_api: Api):
    alice = orders_api.post("/orders", ORDER_BODY, user="alice", headers={"Idempotency-Key": "shared"})
    bob = orders_api.post("/orders", ORDER_BODY, user="bob", headers={"Idempotency-Key": "shared"})
    assert bob.status == 201 and bob.json["order_id"] != alice.json["order_id"]
    assert "idempotent-replayed" not in bob.headers
    reply = orders_api.post(
        f"/orders/{alice.json['order_id']}/cancellation", {"reason": "r"}, user="alice",
        headers={"Idempotency-Key": "shared"},
    )
    assert reply.status == 200 and reply.json["status"] == "CANCELLED"


def test_equivalent_bodies_are_the_same_request(orders_api: Api):
    order_id = create(orders_api)
    first = pay(orders_api, order_id, amount="20", headers={"Idempotency-Key": "k"})
    again = pay(orders_api, order_id, amount="20.00", headers={"Idempotency-Key": "k"})
    assert first.status == again.status == 200 and again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("key", ["", "k" * 129])
def test_idempotency_key_must_be_1_to_128_chars(orders_api: Api, key: str):
    reply = orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": key})
    assert reply.is_problem(422)
    assert reply.json["errors"][0]["loc"] == ["header", "idempotency-key"]
    assert _order_streams() == []


def test_128_char_key_is_accepted(orders_api: Api):
    assert orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": "k" * 128}).status == 201


def test_repeat_after_a_crash_after_the_append_returns_the_first_answer(orders_api: Api):
    """The first attempt's TransactWriteItems succeeded, then the Lambda died before answering."""
    from orders.app import runtime

    client = runtime().store.client
    crashed = []

    def crash_after_commit(**kwargs: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("the Lambda was killed after the commit")

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", crash_after_commit)
    try:
        first = orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": "crash-1"})
        assert first.is_problem(500, "internal-error")
        assert "killed" not in first.text and "Traceback" not in first.text  # no internals
        assert len(_order_streams()) == 1  # the events were committed
        again = orders_api.post("/orders", ORDER_BODY, headers={"Idempotency-Key": "crash-1"})
    finally:
        client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", crash_after_commit)
    assert again.status == 201
    assert again.json["order_id"] == _order_streams()[0]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(_order_streams()) == 1  # and nothing more was appended


def test_repeat_of_a_withdrawal_like_command_after_crash_with_state_moved(orders_api: Api):
    """Crash after the payment commit; the repeat would now be an invalid transition, yet it
    returns the first answer (the marker wins over re-deciding)."""
    from orders.app import runtime

    order_id = create(orders_api)
    client = runtime().store.client
    crashed = []

    def crash(**kwargs: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise ConnectionResetError("connection lost after commit")

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", crash)
    try:
        first = orders_api.post(
            f"/orders/{order_id}/payment", {"payment_id": "p-9", "amount": ORDER_TOTAL},
            headers={"Idempotency-Key": "pay-crash"}, **STAFF,
        )
        again = orders_api.post(
            f"/orders/{order_id}/payment", {"payment_id": "p-9", "amount": ORDER_TOTAL},
            headers={"Idempotency-Key": "pay-crash"}, **STAFF,
        )
    finally:
        client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", crash)
    assert first.status >= 500
    assert again.status == 200 and again.json["status"] == "PAID" and again.json["version"] == 2
    assert [e.type for e in stored_events(order_id)] == ["OrderCreated", "PaymentProcessed"]


# -- AWS trouble ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttling_is_503_with_retry_after(orders_api: Api, code: str):
    from botocore.exceptions import ClientError

    from orders.app import runtime

    client = runtime().store.client

    def throttle(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "slow down"}}, "PutItem")

    client.meta.events.register("before-call.dynamodb.*", throttle)
    try:
        reply = orders_api.post("/orders", ORDER_BODY)
    finally:
        client.meta.events.unregister("before-call.dynamodb.*", throttle)
    assert reply.is_problem(503, "service-unavailable")
    assert reply.headers["retry-after"] == "1"


def test_unexpected_errors_are_500_without_internals(orders_api: Api, monkeypatch: pytest.MonkeyPatch):
    from orders.app import runtime

    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyError("secret-table-name")

    monkeypatch.setattr(runtime(), "handle", boom)
    reply = orders_api.post("/orders", ORDER_BODY)
    assert reply.is_problem(500, "internal-error")
    assert "secret" not in reply.text
    assert reply.json["correlation_id"] == reply.headers["x-correlation-id"]


# -- observability ---------------------------------------------------------------------------------
def test_metrics_are_emf_in_the_cairn_namespace(orders_api: Api, capsys: pytest.CaptureFixture):
    from orders.api import service
    from tests.functional.conftest import emf_records

    capsys.readouterr()
    create(orders_api)
    records = emf_records(capsys.readouterr().out)
    (record,) = [r for r in records if "CommandLatency" in r]
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Cairn"
    assert directive["Dimensions"] == [["service"]]
    assert record["service"] == service.service  # POWERTOOLS_SERVICE_NAME, else "orders"
    assert {"Name": "CommandLatency", "Unit": "Milliseconds"} in directive["Metrics"]
    assert record["CommandLatency"][0] > 0


def test_every_access_and_rejection_line_of_the_http_service_carries_the_correlation_id(orders_api: Api):
    """Scope: the lines of the service's own Powertools logger (access log, rejections). Lines of
    other loggers (the runtime's stdlib ``logging``) are not checked here."""
    from orders.api import service

    with captured_logs(service) as lines:
        order_id = create(orders_api)
        pay(orders_api, order_id, amount="1.00", headers={"X-Correlation-Id": "trace-me"})
    assert len(lines) >= 3  # two access lines and the rejection
    assert all(line.get("correlation_id") for line in lines)
    assert {line["correlation_id"] for line in lines if line.get("reason")} == {"trace-me"}
    assert [line["status"] for line in lines if "status" in line] == [201, 409]


def _order_streams() -> list[str]:
    from cairn.aws import client

    items = client("dynamodb").scan(TableName="cairn-events")["Items"]
    return sorted({i["stream_id"]["S"] for i in items if i["stream_id"]["S"].startswith("order-")})
