"""Integration event contracts: the committed catalogue, the outbound mapping, parsing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cairn.events import EventEnvelope, EventMetadata
from integration import (
    CATALOGUE,
    MalformedIntegrationEventError,
    OrderCreatedV1,
    UnknownIntegrationEventError,
    integration_event_id,
    parse_integration_event,
)
from integration.catalogue import SCHEMA_PATH, render
from integration.consumer import accepted_event, event_from_eventbridge
from integration.order_translation import to_integration_events
from orders import domain

LINE = domain.OrderLine(sku="SKU-1", quantity=2, unit_price=Decimal("9.99"))


def envelope(data, version: int, event_id: str = "e-1") -> EventEnvelope:
    return EventEnvelope(
        event_id=event_id,
        stream_id="order-1",
        version=version,
        type=type(data).__name__,
        schema_version=1,
        occurred_at="2026-11-26T08:30:00.000Z",
        data=data,
        metadata=EventMetadata(correlation_id="corr-1", causation_id=None, actor="alice", command_id="cmd-1"),
    )


def lifecycle() -> list[tuple[EventEnvelope, domain.OrderState]]:
    events = [
        domain.OrderCreated(
            order_id="order-1", customer_id="alice", items=[LINE], currency="USD", total=Decimal("19.98"), payment_intent="intent-1"
        ),
        domain.PaymentProcessed(payment_id="p-1", amount=Decimal("19.98")),
        domain.OrderShipped(tracking="TRACK1"),
        domain.OrderDelivered(),
    ]
    state, out = domain.initial_state(), []
    for version, event in enumerate(events, start=1):
        state = domain.evolve(state, event)
        out.append((envelope(event, version, f"e-{version}"), state))
    return out


def test_committed_schema_catalogue_is_current():
    assert SCHEMA_PATH.read_text() == render(), "regenerate: PYTHONPATH=functions:layers/cairn/python python -m integration --write"


def test_catalogue_covers_every_published_order_event_once():
    assert sorted(CATALOGUE) == [
        ("OrderCancelled", 1),
        ("OrderCreated", 1),
        ("OrderDelivered", 1),
        ("OrderShipped", 1),
        ("PaymentCaptured", 1),
        ("PaymentDeclined", 1),
        ("PaymentFailed", 1),
        ("PaymentProcessed", 1),
        ("PaymentRefunded", 1),
    ]
    document = json.loads(SCHEMA_PATH.read_text())
    assert {(e["type"], e["version"]) for e in document["events"]} == set(CATALOGUE)
    for entry in document["events"]:
        assert {"id", "type", "version", "source", "subject", "sequence", "occurred_at", "data"} <= set(
            entry["schema"]["required"]
        )


def test_every_event_carries_the_order_after_it_and_a_stable_id():
    published = [to_integration_events(env, state)[0] for env, state in lifecycle()]
    assert [p.type for p in published] == ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"]
    assert [p.data.order.status for p in published] == ["CREATED", "PAID", "SHIPPED", "DELIVERED"]
    assert [p.sequence for p in published] == [1, 2, 3, 4]
    for (env, _), event in zip(lifecycle(), published, strict=True):
        assert event.id == integration_event_id(env.event_id, event.type, 1)
        assert event.causation_id == env.event_id
        assert event.correlation_id == "corr-1"
        assert event.subject == "order-1" and event.source == "cairn.orders"
        assert event.data.order.total == Decimal("19.98")
        assert event.data.order.items[0].sku == "SKU-1"
    # same input, same id and same bytes: a re-publication is a true duplicate
    again = [to_integration_events(env, state)[0] for env, state in lifecycle()]
    assert [a.to_detail() for a in again] == [p.to_detail() for p in published]
    assert len({p.id for p in published}) == 4


def test_only_what_consumers_need_leaves_the_service():
    (created_env, created_state), (paid_env, paid_state), *_ = lifecycle()
    created = to_integration_events(created_env, created_state)[0].to_detail()
    paid = to_integration_events(paid_env, paid_state)[0].to_detail()
    assert created["data"]["payment_intent"] == "intent-1"  # a reference, never the token
    assert "payment_token" not in json.dumps(created)
    assert "payment_intent" not in paid["data"] and "payment_intent" not in paid["data"]["order"]
    text = json.dumps([created, paid])
    for internal in ("actor", "command_id", "cmd-1", "schema_version", "stream_id"):
        assert internal not in text
    cancelled_state = domain.evolve(created_state, domain.OrderCancelled(reason="my secret reason"))
    cancelled = to_integration_events(envelope(domain.OrderCancelled(reason="my secret reason"), 2), cancelled_state)[0]
    assert "my secret reason" not in json.dumps(cancelled.to_detail())
    assert cancelled.data.order.status == "CANCELLED"


def test_order_created_without_a_token_carries_no_token_field():
    event = domain.OrderCreated(order_id="order-1", customer_id="alice", items=[LINE], currency="USD", total=Decimal("19.98"))
    state = domain.evolve(domain.initial_state(), event)
    detail = to_integration_events(envelope(event, 1), state)[0].to_detail()
    assert "payment_intent" not in detail["data"]  # absent, not null


def test_parse_round_trip_and_errors():
    env, state = lifecycle()[0]
    detail = to_integration_events(env, state)[0].to_detail()
    parsed = parse_integration_event(detail)
    assert isinstance(parsed, OrderCreatedV1) and parsed.data.payment_intent == "intent-1"
    assert parse_integration_event(json.dumps(detail)) == parsed
    with pytest.raises(UnknownIntegrationEventError):
        parse_integration_event({**detail, "version": 2})
    with pytest.raises(UnknownIntegrationEventError):
        parse_integration_event({**detail, "type": "OrderTeleported"})
    with pytest.raises(MalformedIntegrationEventError):
        parse_integration_event({**detail, "data": {"order": {"order_id": "x"}}})
    with pytest.raises(MalformedIntegrationEventError):
        parse_integration_event({**detail, "version": "1"})
    with pytest.raises(MalformedIntegrationEventError):
        parse_integration_event([detail])
    # tolerant reader: fields added by a newer producer are ignored
    assert parse_integration_event({**detail, "data": {**detail["data"], "gift_wrap": True}, "extra": 1}) == parsed


def test_eventbridge_shape_is_checked_against_the_envelope(load_event):
    bridge = load_event("eventbridge_order_created.json")
    event = event_from_eventbridge(bridge)
    assert event.type == "OrderCreated" and event.data.payment_intent == "intent-visa"
    with pytest.raises(MalformedIntegrationEventError):
        event_from_eventbridge({**bridge, "detail-type": "OrderShipped"})
    with pytest.raises(MalformedIntegrationEventError):
        event_from_eventbridge({**bridge, "source": "evil.source"})
    with pytest.raises(MalformedIntegrationEventError):
        event_from_eventbridge({"detail": bridge["detail"]})
    assert accepted_event(json.dumps(bridge), frozenset({("OrderShipped", 1)})) is None
    assert accepted_event(json.dumps({**bridge, "detail": {**bridge["detail"], "version": 9}}), frozenset({("OrderCreated", 1)})) is None
    with pytest.raises(MalformedIntegrationEventError):
        accepted_event("not json", frozenset({("OrderCreated", 1)}))


def test_docs_catalogue_section_is_current():
    from integration.catalogue import CATALOGUE_END, CATALOGUE_START, markdown

    docs = (SCHEMA_PATH.parents[1] / "docs" / "eda.md").read_text()
    section = docs[docs.index(CATALOGUE_START) : docs.index(CATALOGUE_END) + len(CATALOGUE_END)]
    assert section == markdown(), "regenerate: PYTHONPATH=functions:layers/cairn/python python -m integration --docs"
    assert "```mermaid\nsequenceDiagram" in docs


@pytest.mark.parametrize(
    "name", sorted(p.name for p in SCHEMA_PATH.parents[1].joinpath("tests", "events").glob("eventbridge_*.json"))
)
def test_committed_eventbridge_events_are_valid(load_event, name):
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

    raw = load_event(name)
    EventBridgeModel.model_validate(raw)  # the AWS shape, account included
    event = event_from_eventbridge(raw)
    assert event.id == integration_event_id(event.causation_id, event.type, event.version)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in SCHEMA_PATH.parents[1].joinpath("tests", "events").glob("sqs_*.json"))
)
def test_committed_sqs_events_are_valid(load_event, name):
    from aws_lambda_powertools.utilities.parser.models import SqsModel

    raw = load_event(name)
    SqsModel.model_validate(raw)  # the Lambda SQS event shape
    for record in raw["Records"]:
        if name == "sqs_malformed.json":
            with pytest.raises(MalformedIntegrationEventError):
                accepted_event(record["body"], frozenset(CATALOGUE))
        else:
            assert accepted_event(record["body"], frozenset(CATALOGUE)) is not None
