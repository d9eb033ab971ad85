"""The business processes over the local runtime (real HTTP, the synthesized template on moto):
catalog prices, autonomous payments, the refund saga and payment timeouts.

The runtime runs with PAYMENT_TIMEOUT_SECONDS=15 and the timeouts schedule every 2 s (conftest).
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import E2E_PAYMENT_TIMEOUT, wait_for

pytestmark = pytest.mark.e2e


def _sku() -> str:
    return f"P-{uuid.uuid4().hex[:8]}"


def place(cairn, customer: str, sku: str, token: str | None, quantity: int = 2) -> str:
    body = {"items": [{"sku": sku, "quantity": quantity, "unit_price": "9.99"}], "currency": "USD"}
    if token:
        body["payment_token"] = token
    status, _, answer = cairn.request("POST", "/orders", body, token=customer)
    assert status == 201, answer
    return answer["order_id"]


def order(cairn, customer: str, order_id: str) -> dict:
    status, _, body = cairn.request("GET", f"/orders/{order_id}", token=customer)
    assert status == 200, body
    return body


def until_status(cairn, customer: str, order_id: str, wanted: str, timeout: float = 60.0) -> dict:
    return wait_for(f"{order_id} {wanted}", lambda: (v := order(cairn, customer, order_id))["status"] == wanted and v,
                    timeout=timeout)


def reserved(cairn, staff: str, sku: str) -> int:
    status, _, body = cairn.request("GET", f"/inventory/{sku}", token=staff)
    assert status == 200, body
    return body["reserved"]


def test_the_readme_story_prices_from_the_seeded_catalog(cairn):
    customer = cairn.token(f"alice-{uuid.uuid4().hex[:6]}")
    def seeded() -> bool:  # make dev seeds it right after start: wait until pricing can see it
        status, headers, body = cairn.request("GET", "/catalog/BOOK-1", token=customer)
        return status == 200 and headers.get("X-Cairn-Source") == "read-model" and body["unit_price"] == "9.99"

    wait_for("the demo catalog", seeded, timeout=90)
    cairn.seed_catalog = False  # this test checks the server's pricing: send exactly what a client would
    try:
        status, _, body = cairn.request("POST", "/orders", {"items": [{"sku": "BOOK-1", "quantity": 2}],
                                                            "currency": "USD"}, token=customer)
        assert status == 201 and body["total"] == "19.98", body
        status, _, problem = cairn.request("POST", "/orders", {"items": [{"sku": "BOOK-1", "quantity": 1,
                                                                          "unit_price": "0.01"}], "currency": "USD"},
                                           token=customer)
        assert status == 409 and problem["type"].endswith("/price-mismatch"), problem
        status, _, problem = cairn.request("POST", "/orders", {"items": [{"sku": "NO-SUCH-SKU", "quantity": 1}],
                                                               "currency": "USD"}, token=customer)
    finally:
        cairn.seed_catalog = True
    assert status == 409 and problem["type"].endswith("/unknown-product"), problem


def test_start_up_closes_the_environments_its_seeding_warmed(cairn):
    """``make dev`` seeds the catalog through the API, then closes the environments that warmed
    (Public, Catalog, the catalog projections): a session does not carry them for the idle timeout
    (issue 19's memory bound)."""
    import re

    if cairn.state_dir is None:
        pytest.skip("CAIRN_E2E_OUTPUTS: a runtime started elsewhere has no log here")

    def closed() -> int | None:
        found = re.search(r"start-up done, its (\d+) idle execution environments closed",
                          (cairn.state_dir / "runtime.log").read_text())
        return int(found.group(1)) if found else None

    assert (closed() or 0) >= 2  # written before outputs.json, which the suite waited for


def test_paid_then_cancelled_is_refunded_by_the_payment_service(cairn, staff):
    customer = cairn.token(f"bob-{uuid.uuid4().hex[:6]}")
    sku = _sku()
    order_id = place(cairn, customer, sku, "tok_visa")
    until_status(cairn, customer, order_id, "PAID")
    status, _, body = cairn.request("POST", f"/orders/{order_id}/cancellation", {"reason": "changed my mind"},
                                    token=customer)
    assert status == 200, body
    view = until_status(cairn, customer, order_id, "REFUNDED")
    assert view["refund"]["amount"] == "19.98"
    wait_for("stock released", lambda: reserved(cairn, staff, sku) == 0)


def test_declined_fails_the_payment_and_releases_stock(cairn, staff):
    customer = cairn.token(f"carol-{uuid.uuid4().hex[:6]}")
    sku = _sku()
    order_id = place(cairn, customer, sku, "tok_declined")
    until_status(cairn, customer, order_id, "PAYMENT_FAILED")
    wait_for("stock released", lambda: reserved(cairn, staff, sku) == 0)


def test_a_payment_that_never_answers_times_out(cairn, staff):
    customer = cairn.token(f"dan-{uuid.uuid4().hex[:6]}")
    sku = _sku()
    order_id = place(cairn, customer, sku, "tok_unavailable")  # the gateway never answers
    wait_for("the reservation", lambda: reserved(cairn, staff, sku) == 2)
    view = until_status(cairn, customer, order_id, "PAYMENT_FAILED", timeout=E2E_PAYMENT_TIMEOUT + 45)
    assert view["timeline"][-1]["type"] == "PaymentFailed"
    wait_for("stock released", lambda: reserved(cairn, staff, sku) == 0)


def test_a_late_success_after_the_timeout_is_refunded(cairn, staff):
    from payments.domain import payment_id_for, stream_id_for

    customer = cairn.token(f"erin-{uuid.uuid4().hex[:6]}")
    order_id = place(cairn, customer, _sku(), "tok_slow")  # captured ~20 s later, after the 15 s timeout
    until_status(cairn, customer, order_id, "PAYMENT_FAILED", timeout=E2E_PAYMENT_TIMEOUT + 45)
    ddb = cairn.aws("dynamodb")
    table = cairn.outputs["EventsTableName"]
    stream = stream_id_for(payment_id_for(order_id))

    def payment_types() -> list[str]:
        items = ddb.query(TableName=table, KeyConditionExpression="stream_id = :s",
                          ExpressionAttributeValues={":s": {"S": stream}}, ConsistentRead=True)["Items"]
        return [i["type"]["S"] for i in items]

    types = wait_for("the late capture refunded", lambda: "PaymentRefunded" in (t := payment_types()) and t,
                     timeout=90)
    assert types.count("PaymentSucceeded") == 1 and types.count("PaymentRefunded") == 1, types
    cairn.wait_idle()
    assert order(cairn, customer, order_id)["status"] == "PAYMENT_FAILED"  # it never took the late payment


def test_staff_refund_of_a_hand_recorded_payment_and_bad_refunds(cairn, staff):
    customer = cairn.token(f"fay-{uuid.uuid4().hex[:6]}")
    order_id = place(cairn, customer, _sku(), None)
    never_paid = place(cairn, customer, _sku(), None)
    assert cairn.request("POST", f"/orders/{order_id}/payment", {"payment_id": "cash-1", "amount": "19.98"},
                         token=staff)[0] == 200
    for oid in (order_id, never_paid):
        assert cairn.request("POST", f"/orders/{oid}/cancellation", {"reason": "no"}, token=customer)[0] == 200
    status, _, problem = cairn.request("POST", f"/orders/{order_id}/refund", {"refund_id": "r1", "amount": "1.00"},
                                       token=staff)
    assert status == 409 and problem["type"].endswith("/refund-amount-mismatch"), problem
    status, _, problem = cairn.request("POST", f"/orders/{never_paid}/refund",
                                       {"refund_id": "r2", "amount": "19.98"}, token=staff)
    assert status == 409 and problem["type"].endswith("/not-paid"), problem
    status, _, body = cairn.request("POST", f"/orders/{order_id}/refund", {"refund_id": "r1", "amount": "19.98"},
                                    token=staff)
    assert status == 200 and body["status"] == "REFUNDED", body
