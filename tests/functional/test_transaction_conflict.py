"""DynamoDB's TransactionConflict is not a version mismatch (issue 17, defect 5).

An append with an idempotency marker is a TransactWriteItems; another transaction holding one of its items cancels it with ``TransactionConflict``
although the stream is at the version the client named in ``If-Match``. It used to be answered
412 "at version 1, expected 1"; now the runtime retries it (bounded, jittered), and if it keeps
happening the answer is 503 + Retry-After — never a 412 for a precondition that holds.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tests.functional.conftest import ORDER_BODY, Api


class Colliding:
    """The store's DynamoDB client, with the next ``times`` TransactWriteItems cancelled by
    TransactionConflict (as DynamoDB does while another transaction holds an item)."""

    def __init__(self, real: Any, times: int):
        self._real, self.times, self.injected = real, times, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            self.injected += 1
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            reasons += [{"Code": "None"}] * (len(kwargs["TransactItems"]) - 1)
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}, "CancellationReasons": reasons}
            raise ClientError(error, "TransactWriteItems")
        return self._real.transact_write_items(**kwargs)


def _collide(times: int) -> Colliding:
    from orders.app import runtime

    store = runtime().store
    colliding = Colliding(store.client, times)
    store.client = colliding
    return colliding


def test_if_match_command_is_retried_through_a_transaction_conflict(orders_api: Api):
    order_id = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    colliding = _collide(times=2)
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "changed"}, headers={"If-Match": '"1"', "Idempotency-Key": "k-1"})
    assert colliding.injected == 2
    assert reply.status == 200 and reply.json["version"] == 2, reply.text


def test_a_lasting_transaction_conflict_is_503_never_412(orders_api: Api):
    from orders.app import runtime

    order_id = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    colliding = _collide(times=10**6)
    runtime()._sleep = lambda seconds: None  # the backoff's waits, not its decisions, are skipped
    reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "changed"}, headers={"If-Match": '"1"', "Idempotency-Key": "k-1"})
    assert reply.is_problem(503), reply.text
    assert "retry-after" in reply.headers
    assert colliding.injected == runtime().max_retries + 1
