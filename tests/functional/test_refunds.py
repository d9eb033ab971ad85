"""Staff refunds of hand-recorded payments (POST /orders/{id}/refund), the Order View's ``refund``
and the analytics' refunds — over the real handlers on moto."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, Projector

STAFF = {"user": "clerk", "groups": ["staff"]}


def paid_and_cancelled(orders_api: Api) -> str:
    order_id = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    assert orders_api.post(f"/orders/{order_id}/payment", {"payment_id": "cash-1", "amount": ORDER_TOTAL},
                           **STAFF).status == 200
    assert orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "no"}).status == 200
    return order_id


def test_refund_of_a_cancelled_paid_order(orders_api: Api, orders_queries: Api, order_projector: Projector):
    order_id = paid_and_cancelled(orders_api)
    reply = orders_api.post(f"/orders/{order_id}/refund", {"refund_id": "rf-1", "amount": ORDER_TOTAL}, **STAFF)
    assert reply.status == 200 and reply.json["status"] == "REFUNDED" and reply.json["version"] == 4
    again = orders_api.post(f"/orders/{order_id}/refund", {"refund_id": "rf-1", "amount": ORDER_TOTAL}, **STAFF)
    assert again.status == 200 and again.json["version"] == 4  # the same refund twice: nothing new
    order_projector.run()
    view = orders_queries.get(f"/orders/{order_id}").json
    assert view["status"] == "REFUNDED" and view["refund"]["amount"] == ORDER_TOTAL
    today = datetime.now(UTC).date().isoformat()
    (day,) = orders_queries.get("/analytics/daily", query={"from": today, "to": today}, **STAFF).json["days"]
    assert (day["orders_refunded"], day["refunds"], day["revenue"], day["net_revenue"]) == (
        1, ORDER_TOTAL, ORDER_TOTAL, "0.00")


def test_refund_refusals_are_typed_problems_and_append_nothing(orders_api: Api):
    order_id = paid_and_cancelled(orders_api)
    wrong = orders_api.post(f"/orders/{order_id}/refund", {"refund_id": "rf-1", "amount": "1.00"}, **STAFF)
    assert wrong.is_problem(409, "refund-amount-mismatch"), wrong.text
    unpaid = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    orders_api.post(f"/orders/{unpaid}/cancellation", {"reason": "no"})
    never_paid = orders_api.post(f"/orders/{unpaid}/refund", {"refund_id": "rf-2", "amount": ORDER_TOTAL}, **STAFF)
    assert never_paid.is_problem(409, "not-paid"), never_paid.text
    paid = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    orders_api.post(f"/orders/{paid}/payment", {"payment_id": "cash-2", "amount": ORDER_TOTAL}, **STAFF)
    not_cancelled = orders_api.post(f"/orders/{paid}/refund", {"refund_id": "rf-3", "amount": ORDER_TOTAL}, **STAFF)
    assert not_cancelled.is_problem(409, "invalid-transition"), not_cancelled.text
    assert orders_api.post(f"/orders/{order_id}/refund", {"refund_id": "rf-1", "amount": ORDER_TOTAL}).is_problem(403)
    for body in ({"refund_id": "rf-1", "amount": 24.98}, {"refund_id": "", "amount": ORDER_TOTAL},
                 {"refund_id": "rf-1", "amount": "1.001"}, {"amount": ORDER_TOTAL}):
        assert orders_api.post(f"/orders/{order_id}/refund", body, **STAFF).is_problem(422, "validation-failed")
    from orders.app import runtime

    assert runtime().load(order_id)[0] == 3  # refusals appended nothing
