"""Publisher: stream records -> integration events on the bus (ids, order, retries, gaps, failures)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from eda_support import create_order, order_command, publish, shuffled, stream_events

from cairn_platform import publisher as publisher_module
from cairn_platform.publisher import MAX_ENTRIES_PER_CALL, Publisher, entry_size, stream_batches
from integration import integration_event_id
from integration.order_translation import to_integration_events
from orders import domain
from orders.app import decider


class RecordingEvents:
    """Wraps the real (moto) events client: records calls, optionally fails chosen entries."""

    def __init__(self, inner, fail=lambda entry, attempt: None):
        self.inner = inner
        self.fail = fail
        self.calls: list[list[dict]] = []
        self.attempts: dict[str, int] = {}

    def put_events(self, Entries):  # noqa: N803 (boto3's parameter name)
        self.calls.append(Entries)
        results, passing = [], []
        for entry in Entries:
            key = json.loads(entry["Detail"])["id"]
            self.attempts[key] = self.attempts.get(key, 0) + 1
            code = self.fail(entry, self.attempts[key])
            results.append({"ErrorCode": code, "ErrorMessage": "injected"} if code else None)
            if not code:
                passing.append(entry)
        accepted = iter(self.inner.put_events(Entries=passing)["Entries"]) if passing else iter(())
        entries = [r if r else next(accepted) for r in results]
        return {"FailedEntryCount": sum(1 for r in results if r), "Entries": entries}


def make_publisher(cloud, orders_runtime, client, **kw) -> Publisher:
    return Publisher(orders_runtime.store, decider, to_integration_events, client, "cairn-integration", sleep=lambda s: None, **kw)


def lifecycle(orders_runtime, **kw) -> str:
    order_id = create_order(orders_runtime, **kw)
    order_command(orders_runtime, order_id, domain.RecordPayment(payment_id="pay-1", amount=Decimal("24.98")))
    order_command(orders_runtime, order_id, domain.ShipOrder(tracking="TRACK-1"))
    order_command(orders_runtime, order_id, domain.DeliverOrder())
    return order_id


def test_a_lifecycle_is_published_with_stable_ids_and_event_carried_state(cloud, orders_runtime, lambda_context):
    order_id = lifecycle(orders_runtime, token="tok_visa")
    assert publish(cloud, lambda_context) == {"batchItemFailures": []}

    stored = stream_events(orders_runtime, order_id)
    bodies = cloud.bodies("notifications")
    by_type = {b["detail-type"]: b for b in bodies}
    assert sorted(by_type) == ["OrderCreated", "OrderDelivered", "OrderShipped", "PaymentProcessed"]
    for envelope in stored:
        body = by_type[envelope.type]
        assert body["source"] == "cairn.orders"
        detail = body["detail"]
        assert detail["id"] == integration_event_id(envelope.event_id, envelope.type, 1)
        assert detail["sequence"] == envelope.version
        assert detail["causation_id"] == envelope.event_id
        assert detail["correlation_id"] == envelope.metadata.correlation_id
    assert by_type["OrderShipped"]["detail"]["data"]["order"]["status"] == "SHIPPED"
    assert by_type["OrderShipped"]["detail"]["data"]["tracking"] == "TRACK-1"
    assert by_type["OrderDelivered"]["detail"]["data"]["order"]["items"][0]["sku"] == "SKU-1"
    # routing: payments gets what tells it whether an order takes its payment, inventory what it reacts to
    assert [b["detail-type"] for b in cloud.bodies("payments")] == ["OrderCreated", "PaymentProcessed"]
    assert [b["detail-type"] for b in cloud.bodies("inventory")] == ["OrderCreated"]


def test_an_order_without_token_carries_no_payment_intent(cloud, orders_runtime, lambda_context):
    create_order(orders_runtime)
    publish(cloud, lambda_context)
    (body,) = cloud.bodies("payments")  # the payment service skips it (see test_eda_payments)
    assert "payment_intent" not in body["detail"]["data"]
    assert [b["detail-type"] for b in cloud.bodies("inventory")] == ["OrderCreated"]


def test_redelivered_and_reordered_records_republish_the_same_ids(cloud, orders_runtime, lambda_context):
    first, second = lifecycle(orders_runtime), lifecycle(orders_runtime, customer="bob")
    records = cloud.stream_records()
    assert len(records) == 8
    publish(cloud, lambda_context, records)
    original = sorted(json.dumps(b["detail"], sort_keys=True) for b in cloud.bodies("notifications"))
    # the same records again, shuffled (another shard order, a retried batch)
    publish(cloud, lambda_context, shuffled(records, seed=7))
    again = sorted(json.dumps(b["detail"], sort_keys=True) for b in cloud.bodies("notifications"))
    assert again == original  # byte-identical details: consumers' dedupe sees true duplicates
    assert {json.loads(d)["subject"] for d in original} == {first, second}


def test_entries_go_out_in_per_stream_version_order_even_from_shuffled_records(cloud, orders_runtime, lambda_context):
    order_id = lifecycle(orders_runtime)
    records = shuffled(cloud.stream_records(), seed=3)
    client = RecordingEvents(cloud.events)
    report = make_publisher(cloud, orders_runtime, client).publish_records(records)
    assert report.published == 4 and report.failed_sequence_numbers == ()
    sent = [json.loads(e["Detail"]) for call in client.calls for e in call]
    assert [d["sequence"] for d in sent if d["subject"] == order_id] == [1, 2, 3, 4]


def test_a_gap_in_the_batch_is_filled_from_the_store(cloud, orders_runtime, lambda_context):
    lifecycle(orders_runtime)
    records = cloud.stream_records()
    batch = [records[0], records[2]]  # versions 1 and 3: version 2 is in "another batch"
    client = RecordingEvents(cloud.events)
    report = make_publisher(cloud, orders_runtime, client).publish_records(batch)
    sent = [json.loads(e["Detail"]) for call in client.calls for e in call]
    assert [d["sequence"] for d in sent] == [1, 2, 3]
    assert report.published == 3
    # version 3's event carries the state folded through version 2
    assert sent[2]["data"]["order"]["status"] == "SHIPPED"


def test_a_later_batch_folds_the_state_before_it(cloud, orders_runtime, lambda_context):
    lifecycle(orders_runtime)
    records = cloud.stream_records()
    client = RecordingEvents(cloud.events)
    make_publisher(cloud, orders_runtime, client).publish_records(records[3:])
    (delivered,) = [json.loads(e["Detail"]) for call in client.calls for e in call]
    assert delivered["type"] == "OrderDelivered" and delivered["data"]["order"]["status"] == "DELIVERED"
    assert delivered["data"]["order"]["total"] == "24.98"


def test_failed_entries_are_retried_until_accepted(cloud, orders_runtime, lambda_context):
    order_id = lifecycle(orders_runtime)
    client = RecordingEvents(cloud.events, fail=lambda entry, attempt: "ThrottlingException" if attempt < 3 else None)
    report = make_publisher(cloud, orders_runtime, client).publish_records(cloud.stream_records())
    assert report.failed_sequence_numbers == ()
    assert report.published == 4
    assert len(client.calls) == 3  # first try, two retries of what failed
    assert {b["detail"]["subject"] for b in cloud.bodies("notifications")} == {order_id}


def test_entries_that_keep_failing_report_only_their_stream(cloud, orders_runtime, lambda_context):
    bad = lifecycle(orders_runtime)
    good = lifecycle(orders_runtime, customer="bob")
    records = cloud.stream_records()
    client = RecordingEvents(
        cloud.events, fail=lambda entry, attempt: "InternalFailure" if json.loads(entry["Detail"])["subject"] == bad else None
    )
    report = make_publisher(cloud, orders_runtime, client, max_attempts=3).publish_records(records)
    bad_seqs = [r["dynamodb"]["SequenceNumber"] for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == bad]
    assert sorted(report.failed_sequence_numbers) == sorted(bad_seqs)
    assert report.failed_streams == (bad,)
    assert {b["detail"]["subject"] for b in cloud.bodies("notifications")} == {good}


def test_a_whole_call_failing_is_retried(cloud, orders_runtime):
    lifecycle(orders_runtime)

    class Flaky(RecordingEvents):
        def put_events(self, Entries):  # noqa: N803
            if len(self.calls) == 0:
                self.calls.append(Entries)
                raise ConnectionError("connection reset")
            return super().put_events(Entries)

    client = Flaky(cloud.events)
    report = make_publisher(cloud, orders_runtime, client).publish_records(cloud.stream_records())
    assert report.published == 4 and report.failed_sequence_numbers == ()


def test_a_stream_that_cannot_be_read_fails_alone(cloud, orders_runtime, lambda_context):
    broken = create_order(orders_runtime)
    fine = create_order(orders_runtime)
    cloud.dynamodb.update_item(
        TableName=cloud.events_table,
        Key={"stream_id": {"S": broken}, "version": {"N": "1"}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":d": {"S": "{not json"}},
    )
    records = [r for r in cloud.stream_records() if r["eventName"] == "INSERT"]
    response = publish(cloud, lambda_context, records)
    broken_seq = [r["dynamodb"]["SequenceNumber"] for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == broken]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in broken_seq]}
    assert [b["detail"]["subject"] for b in cloud.bodies("notifications")] == [fine]


def test_batches_respect_the_putevents_limits(cloud, orders_runtime, lambda_context):
    for _ in range(13):
        create_order(orders_runtime, items=[{"sku": f"SKU-{i}", "quantity": 1, "unit_price": "1.00"} for i in range(100)])
    client = RecordingEvents(cloud.events)
    report = make_publisher(cloud, orders_runtime, client).publish_records(cloud.stream_records())
    assert report.published == 13
    assert all(len(call) <= MAX_ENTRIES_PER_CALL for call in client.calls)
    assert all(sum(entry_size(e) for e in call) <= 256 * 1024 for call in client.calls)
    assert len(client.calls) == 2


def test_only_order_inserts_are_published():
    records = [
        {"eventName": "INSERT", "dynamodb": {"Keys": {"stream_id": {"S": "order-1"}, "version": {"N": "1"}}, "SequenceNumber": "1"}},
        {"eventName": "MODIFY", "dynamodb": {"Keys": {"stream_id": {"S": "order-1"}, "version": {"N": "1"}}, "SequenceNumber": "2"}},
        {"eventName": "REMOVE", "dynamodb": {"Keys": {"stream_id": {"S": "order-2"}, "version": {"N": "1"}}, "SequenceNumber": "3"}},
        {"eventName": "INSERT", "dynamodb": {"Keys": {"stream_id": {"S": "account-1"}, "version": {"N": "1"}}, "SequenceNumber": "4"}},
        {"eventName": "INSERT", "dynamodb": {"Keys": {"stream_id": {"S": "payment-1"}, "version": {"N": "1"}}, "SequenceNumber": "5"}},
        {"eventName": "INSERT", "dynamodb": {"Keys": {"stream_id": {"S": "order-1"}, "version": {"N": "2"}}, "SequenceNumber": "6"}},
    ]
    (batch,) = stream_batches(records)
    assert (batch.stream_id, batch.versions, batch.sequence_numbers) == ("order-1", [1, 2], ["1", "6"])


def test_handler_emits_the_published_metric(cloud, orders_runtime, lambda_context, capsys):
    lifecycle(orders_runtime)
    publish(cloud, lambda_context)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = [m for m in emf if "IntegrationEventsPublished" in m]
    assert metrics, emf
    assert metrics[-1]["IntegrationEventsPublished"] == [4.0]
    assert metrics[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Cairn"


@pytest.fixture(autouse=True)
def _fresh_publisher():
    publisher_module._publisher = None
    yield
    publisher_module._publisher = None


def test_republish_a_stream_the_event_source_gave_up_on(cloud, orders_runtime, lambda_context, capsys):
    order_id = lifecycle(orders_runtime)
    cloud.stream_records()  # the batch "went to the on-failure queue": never published
    assert publisher_module.main([order_id, "--from-version", "2"]) == 0
    assert f"{order_id}: 3 integration events published" in capsys.readouterr().out
    details = [b["detail"] for b in cloud.bodies("notifications")]
    assert sorted(d["sequence"] for d in details) == [2, 3, 4]
    assert publisher_module.publisher().republish(order_id, from_version=5) == 0
