"""Inventory consumer: reserve / release exactly once, whatever the delivery order or count."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from eda_support import http_event, sqs_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inventory.handler
import inventory.queries
from integration import integration_event_id
from inventory import domain
from inventory.store import InventoryStore, ReservationChangedError
from tests.budget import examples


@pytest.fixture
def store(cloud) -> InventoryStore:
    from inventory.app import store

    return store()


def order_events(load_event, *, order_id: str | None = None, items=None) -> dict[str, dict]:
    """OrderCreated / OrderCancelled / PaymentFailed EventBridge events of one (new) order."""
    order_id = order_id or f"order-{uuid.uuid4()}"
    out = {}
    for kind, name in (
        ("created", "eventbridge_order_created_no_token.json"),
        ("cancelled", "eventbridge_order_cancelled.json"),
        ("payment_failed", "eventbridge_payment_failed.json"),
    ):
        event = copy.deepcopy(load_event(name))
        detail = event["detail"]
        detail["subject"] = order_id
        detail["data"]["order"]["order_id"] = order_id
        if items is not None:
            detail["data"]["order"]["items"] = items
        detail["causation_id"] = f"{order_id}/{kind}"
        detail["id"] = integration_event_id(detail["causation_id"], detail["type"], 1)
        out[kind] = event
    return out


def level(store, sku="SKU-1") -> int:
    return store.sku_level(sku, consistent=True).reserved


def test_reserve_on_created_release_on_cancelled(store, lambda_context, load_event):
    events = order_events(load_event)
    assert inventory.handler.handler(sqs_event(events["created"]), lambda_context) == {"batchItemFailures": []}
    assert (level(store, "SKU-1"), level(store, "SKU-2")) == (2, 1)
    assert inventory.handler.handler(sqs_event(events["cancelled"]), lambda_context) == {"batchItemFailures": []}
    assert (level(store, "SKU-1"), level(store, "SKU-2")) == (0, 0)
    assert store.sku_level("SKU-1").version == 2


def test_payment_failed_releases_and_a_second_release_is_a_no_op(store, lambda_context, load_event):
    events = order_events(load_event)
    inventory.handler.handler(sqs_event(events["created"], events["payment_failed"], events["cancelled"]), lambda_context)
    assert level(store) == 0
    assert store.sku_level("SKU-1").version == 2


def test_duplicates_apply_once(store, lambda_context, load_event, capsys):
    events = order_events(load_event)
    created = events["created"]
    assert inventory.handler.handler(sqs_event(created, created, created), lambda_context) == {"batchItemFailures": []}
    inventory.handler.handler(sqs_event(created), lambda_context)
    assert level(store) == 2
    assert store.sku_level("SKU-1").version == 1
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("DuplicatesSkipped", [])) for m in emf) == 3


def test_release_before_reserve_never_reserves(store, lambda_context, load_event):
    """The committed reordered batch: OrderCancelled, then OrderCreated, then OrderCancelled again."""
    event = load_event("sqs_release_before_reserve.json")
    assert inventory.handler.handler(event, lambda_context) == {"batchItemFailures": []}
    assert level(store, "SKU-1") == 0 and level(store, "SKU-2") == 0
    assert store.sku_level("SKU-1").version == 0  # nothing was ever held
    order_id = json.loads(event["Records"][0]["body"])["detail"]["subject"]
    reservation = store.reservation(order_id, 0)
    assert reservation.status is domain.ReservationStatus.RELEASED


def test_orders_add_up_per_sku(store, lambda_context, load_event):
    a, b, c = (order_events(load_event) for _ in range(3))
    inventory.handler.handler(sqs_event(a["created"], b["created"], c["created"]), lambda_context)
    assert level(store) == 6
    inventory.handler.handler(sqs_event(b["cancelled"]), lambda_context)
    assert level(store) == 4


def test_an_order_of_a_hundred_skus_is_reserved_and_released_in_chunks(store, lambda_context, load_event):
    items = [{"sku": f"BULK-{i:03d}", "quantity": i + 1, "unit_price": "1.00"} for i in range(100)]
    events = order_events(load_event, items=items)
    inventory.handler.handler(sqs_event(events["created"]), lambda_context)
    assert [level(store, f"BULK-{i:03d}") for i in (0, 97, 98, 99)] == [1, 98, 99, 100]
    order_id = events["created"]["detail"]["subject"]
    assert store.reservation(order_id, 1).quantities == {"BULK-098": 99, "BULK-099": 100}
    inventory.handler.handler(sqs_event(events["cancelled"], events["cancelled"]), lambda_context)
    assert all(level(store, f"BULK-{i:03d}") == 0 for i in range(100))


def test_a_release_gives_back_what_was_reserved_not_what_it_says(store, lambda_context, load_event):
    events = order_events(load_event)
    tampered = copy.deepcopy(events["cancelled"])
    tampered["detail"]["data"]["order"]["items"][0]["quantity"] = 50
    inventory.handler.handler(sqs_event(events["created"]), lambda_context)
    inventory.handler.handler(sqs_event(tampered), lambda_context)
    assert level(store) == 0


def test_a_concurrent_change_between_read_and_write_is_re_decided(store, load_event, monkeypatch):
    from integration.consumer import event_from_eventbridge
    from inventory import service

    events = order_events(load_event)
    created = event_from_eventbridge(events["created"])
    cancelled = event_from_eventbridge(events["cancelled"])
    service.handle(store, created)
    real = store.reservation
    reads: list[str] = []

    def reservation(order_id, chunk):
        reads.append(order_id)
        if len(reads) == 1:
            return None  # a stale read: misses the reservation another container just wrote
        return real(order_id, chunk)

    monkeypatch.setattr(store, "reservation", reservation)
    outcomes = service.handle(store, cancelled)  # TOMBSTONE is refused by the condition, re-read -> RELEASE
    assert [o.action for o in outcomes] == [domain.Action.RELEASE]
    assert level(store) == 0


def test_a_stale_tombstone_write_is_refused_by_its_condition(store, load_event):
    from integration.consumer import event_from_eventbridge
    from inventory import service

    created = event_from_eventbridge(order_events(load_event)["created"])
    service.handle(store, created)
    with pytest.raises(ReservationChangedError):
        store.apply(
            event_id="another-event",
            event_type="OrderCancelled",
            order_id=created.subject,
            chunk=0,
            action=domain.Action.TOMBSTONE,
            quantities={"SKU-1": 2},
            current=None,
        )


def test_malformed_messages_fail_alone(store, lambda_context, load_event):
    good = order_events(load_event)["created"]
    bad = load_event("sqs_malformed.json")["Records"][0]["body"]
    event = sqs_event(bad, good)
    assert inventory.handler.handler(event, lambda_context) == {
        "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
    }
    assert level(store) == 2


def test_chunks_are_deterministic_and_bounded():
    quantities = {f"S{i:03d}": 1 for i in range(250)}
    parts = domain.chunks(dict(reversed(list(quantities.items()))))
    assert [len(p) for p in parts] == [98, 98, 54]
    assert parts == domain.chunks(quantities)
    assert domain.chunks({}) == [{}]


@pytest.mark.parametrize(
    ("intent", "current", "action"),
    [
        (domain.Intent.RESERVE, None, domain.Action.RESERVE),
        (domain.Intent.RESERVE, domain.ReservationStatus.RESERVED, domain.Action.NOOP),
        (domain.Intent.RESERVE, domain.ReservationStatus.RELEASED, domain.Action.NOOP),
        (domain.Intent.RELEASE, None, domain.Action.TOMBSTONE),
        (domain.Intent.RELEASE, domain.ReservationStatus.RESERVED, domain.Action.RELEASE),
        (domain.Intent.RELEASE, domain.ReservationStatus.RELEASED, domain.Action.NOOP),
    ],
)
def test_reservation_state_machine(intent, current, action):
    reservation = None if current is None else domain.Reservation("o", 0, current, {"A": 1})
    assert domain.decide(intent, reservation) is action


# -- property: any interleaving, any duplicates -> reserved = open orders ---------------------
deliveries = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2), st.sampled_from(["created", "cancelled", "payment_failed"])),
    min_size=1,
    max_size=14,
)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=deliveries, split=st.integers(min_value=1, max_value=5))
def test_any_delivery_order_with_duplicates_ends_with_exactly_the_open_orders_reserved(
    store, lambda_context, load_event, sequence, split
):
    sku = f"PROP-{uuid.uuid4().hex[:8]}"
    quantities = [1, 10, 100]
    orders = [
        order_events(load_event, items=[{"sku": sku, "quantity": q, "unit_price": "1.00"}]) for q in quantities
    ]
    messages = [orders[i][kind] for i, kind in sequence]
    for start in range(0, len(messages), split):  # several SQS batches
        assert inventory.handler.handler(sqs_event(*messages[start : start + split]), lambda_context) == {
            "batchItemFailures": []
        }
    released = {i for i, kind in sequence if kind != "created"}
    created = {i for i, kind in sequence if kind == "created"}
    expected = sum(quantities[i] for i in created - released)
    assert level(store, sku) == expected


# -- GET /inventory/{sku} -----------------------------------------------------------------------
def test_staff_reads_a_sku_level(store, lambda_context, load_event):
    inventory.handler.handler(sqs_event(order_events(load_event)["created"]), lambda_context)
    response = inventory.queries.handler(
        http_event("GET", "/inventory/SKU-1", sub="sam", groups="[staff]", path_parameters={"sku": "SKU-1"}), lambda_context
    )
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"sku": "SKU-1", "reserved": 2, "version": 1}
    assert response["headers"]["ETag"] == '"1"'


def test_an_unknown_sku_is_at_zero(store, lambda_context):
    response = inventory.queries.handler(
        http_event("GET", "/inventory/NEVER", sub="sam", groups="staff", path_parameters={"sku": "NEVER"}), lambda_context
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"sku": "NEVER", "reserved": 0, "version": 0}


@pytest.mark.parametrize(
    ("sub", "groups", "path", "status"),
    [
        ("alice", None, "/inventory/SKU-1", 403),
        ("alice", "[admin]", "/inventory/SKU-1", 403),
        (None, None, "/inventory/SKU-1", 401),
        ("sam", "[staff]", "/inventory/-bad", 422),
        ("sam", "[staff]", "/inventory/" + "A" * 65, 422),
    ],
)
def test_inventory_route_errors(store, lambda_context, sub, groups, path, status):
    sku = path.rsplit("/", 1)[1]
    response = inventory.queries.handler(
        http_event("GET", path, sub=sub, groups=groups, path_parameters={"sku": sku}), lambda_context
    )
    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert json.loads(response["body"])["status"] == status
