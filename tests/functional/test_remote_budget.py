"""Issue 17 defect 2: a hanging AWS endpoint never outlives the command.

The endpoints here really hang (tests/hanging.py: a socket that accepts and never answers), so
the clients' own timeouts, retries and the invocation deadline are what is measured. The
elapsed-time bounds are correctness bounds (the command Lambda's timeout is 10 s; with the old
3 attempts x 5 s the snapshot read alone took 15 s), not performance figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from tests.functional.conftest import ORDER_BODY, Api, LambdaContext, reset_runtimes
from tests.hanging import hanging_endpoint

COMMAND_TIMEOUT_S = 10  # OrdersCommands' Lambda timeout (cdk_app/stacks/cairn_stack.py)


@dataclass
class ShortContext(LambdaContext):
    """A Lambda context with little time left."""

    remaining_ms: int = 3_000

    def __post_init__(self) -> None:
        self._until = time.monotonic() + self.remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._until - time.monotonic()) * 1000), 0)


def test_cold_command_with_a_hanging_snapshot_endpoint_replays_within_budget(
    orders_api: Api, monkeypatch: pytest.MonkeyPatch
):
    order_id = orders_api.post("/orders", ORDER_BODY).json["order_id"]
    with hanging_endpoint() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        reset_runtimes()  # a cold container: no cached state, the snapshot is read first
        started = time.monotonic()
        reply = orders_api.post(f"/orders/{order_id}/cancellation", {"reason": "changed my mind"})
        elapsed = time.monotonic() - started
    assert reply.status == 200, reply.text
    assert reply.json["status"] == "CANCELLED" and reply.json["version"] == 2  # folded by replay
    assert elapsed < 5, f"the command took {elapsed:.1f} s against a hanging snapshot endpoint"


def test_a_hanging_snapshot_get_gives_up_after_one_short_attempt():
    from cairn.aws import SNAPSHOT_READ_CONFIG, client
    from cairn.snapshots import SnapshotError
    from cairn.snapshots.s3 import S3SnapshotStore

    with hanging_endpoint() as url:
        fast = client("s3", endpoint_url=url, config=SNAPSHOT_READ_CONFIG, region_name="us-east-1")
        store = S3SnapshotStore(client("s3", endpoint_url=url, region_name="us-east-1"), "b", read_client=fast)
        started = time.monotonic()
        with pytest.raises(SnapshotError):
            store.get("order-1", 1)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed


def test_no_attempt_starts_that_could_end_past_the_deadline():
    from cairn.aws import DeadlineExceededError, client, deadline

    with hanging_endpoint() as url:
        ddb = client("dynamodb", endpoint_url=url, region_name="us-east-1")
        started = time.monotonic()
        with deadline(2.0), pytest.raises(DeadlineExceededError):
            ddb.get_item(TableName="t", Key={"pk": {"S": "x"}})  # one attempt may take 1 + 3 s
        assert time.monotonic() - started < 0.5


def test_a_hanging_event_store_answers_503_before_the_lambda_timeout(
    orders_api: Api, monkeypatch: pytest.MonkeyPatch
):
    with hanging_endpoint() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        reset_runtimes()
        context = ShortContext(remaining_ms=5_000)  # a command already 5 s into its 10
        from tests.functional.conftest import api_event

        started = time.monotonic()
        response = orders_api.handler(api_event("POST", "/orders", body=ORDER_BODY), context)
        elapsed = time.monotonic() - started
    assert response["statusCode"] == 503, response
    assert "Retry-After" in response["headers"] or "retry-after" in response["headers"]
    assert context.get_remaining_time_in_millis() > 0, f"took {elapsed:.1f} s: Lambda would have killed it"


def test_queue_consumers_run_their_records_under_the_invocation_deadline(monkeypatch: pytest.MonkeyPatch):
    """The SQS consumers (payments, inventory, notifications) budget their AWS calls too."""
    from cairn.deadline import remaining_seconds
    from integration.consumer import SqsConsumer

    seen: list[float | None] = []
    consumer = SqsConsumer(frozenset(), lambda event: None)
    monkeypatch.setattr(consumer, "record_handler", lambda record: seen.append(remaining_seconds()))
    record = {"messageId": "m-1", "body": "{}", "receiptHandle": "r", "attributes": {}, "messageAttributes": {},
              "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
              "awsRegion": "us-east-1"}
    consumer.handler({"Records": [record]}, ShortContext(remaining_ms=5_000))
    assert len(seen) == 1 and seen[0] is not None and 3.5 < seen[0] <= 4.5
    assert remaining_seconds() is None  # the deadline ends with the invocation
