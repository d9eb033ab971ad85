"""EventRegistry (types, codec, upcasters) and envelope helpers."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cairn.events import (
    EventEnvelope,
    EventMetadata,
    EventRegistry,
    NewEvent,
    SchemaVersionError,
    UnknownEventTypeError,
    UpcasterMissingError,
    new_event_id,
    normalize_timestamp,
    utc_now_iso,
)
from cairn.store import CorruptEventError, InMemoryEventStore
from tests.budget import examples
from tests.contract.ledger import Deposited, DepositedV1, LedgerOpened, build_registry, build_v1_registry


class PriceV3(BaseModel):
    """v1 {"cents": int}; v2 {"amount": "1.23"}; v3 {"amount": "1.23", "currency": "EUR"}."""

    amount: Decimal
    currency: str


def price_registry(*, with_step_2: bool = True) -> EventRegistry:
    registry = EventRegistry()
    registry.register(PriceV3, name="PriceSet", schema_version=3)

    @registry.upcaster("PriceSet", 1)
    def cents_to_amount(raw: dict[str, Any]) -> dict[str, Any]:
        return {"amount": str(Decimal(raw["cents"]) / 100)}

    if with_step_2:

        @registry.upcaster("PriceSet", 2)
        def add_currency(raw: dict[str, Any]) -> dict[str, Any]:
            return {**raw, "currency": "EUR"}

    return registry


# -- registration ----------------------------------------------------------------------------------
def test_register_and_lookup() -> None:
    registry = build_registry()
    assert list(registry.names()) == ["Deposited", "LedgerOpened", "Noted", "Withdrawn"]
    assert "Deposited" in registry and "Nope" not in registry
    entry = registry.get("Deposited")
    assert (entry.name, entry.model, entry.schema_version) == ("Deposited", Deposited, 2)
    assert registry.type_of(LedgerOpened(owner="a")).name == "LedgerOpened"
    assert registry.has_upcaster("Deposited", 1) and not registry.has_upcaster("Deposited", 2)


def test_registration_errors() -> None:
    registry = EventRegistry()
    registry.register(Deposited)
    registry.register(Deposited)  # the same model again is fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register(LedgerOpened, name="Deposited")
    with pytest.raises(ValueError):
        registry.register(LedgerOpened, schema_version=0)
    registry.upcaster("Deposited", 1)(lambda raw: raw)
    with pytest.raises(ValueError, match="already registered"):
        registry.upcaster("Deposited", 1)(lambda raw: raw)
    with pytest.raises(UnknownEventTypeError):
        registry.type_of(LedgerOpened(owner="a"))
    with pytest.raises(UnknownEventTypeError):
        registry.get("LedgerOpened")


def test_decorator_form() -> None:
    registry = EventRegistry()

    @registry.event("Renamed", schema_version=4)
    class Thing(BaseModel):
        x: int

    assert registry.get("Renamed").model is Thing and registry.get("Renamed").schema_version == 4


def test_merge_keeps_types_and_upcasters() -> None:
    merged = build_registry().merge(price_registry())
    assert set(merged.names()) == {"Deposited", "LedgerOpened", "Noted", "Withdrawn", "PriceSet"}
    assert merged.decode("PriceSet", 1, '{"cents": 250}') == PriceV3(amount=Decimal("2.5"), currency="EUR")
    assert merged.decode("Deposited", 1, '{"amount": "1", "ref": "r"}').currency == "USD"


# -- codec ----------------------------------------------------------------------------------------
def test_encode_is_compact_json_with_decimals_as_strings() -> None:
    name, version, payload = build_registry().encode(Deposited(amount=Decimal("10.50"), ref="r", currency="USD"))
    assert (name, version) == ("Deposited", 2)
    assert payload == '{"amount":"10.50","ref":"r","currency":"USD"}'


def test_decode_current_version_from_str_bytes_and_dict() -> None:
    registry = build_registry()
    expected = Deposited(amount=Decimal("1.10"), ref="r", currency="USD")
    text = '{"amount":"1.10","ref":"r","currency":"USD"}'
    assert registry.decode("Deposited", 2, text) == expected
    assert registry.decode("Deposited", 2, text.encode()) == expected
    assert registry.decode("Deposited", 2, json.loads(text)) == expected


def test_upcaster_chain() -> None:
    registry = price_registry()
    assert registry.decode("PriceSet", 1, '{"cents": 199}') == PriceV3(amount=Decimal("1.99"), currency="EUR")
    assert registry.decode("PriceSet", 2, {"amount": "3.00"}) == PriceV3(amount=Decimal("3.00"), currency="EUR")
    assert registry.decode("PriceSet", 3, '{"amount": "4", "currency": "GBP"}').currency == "GBP"


def test_upcast_errors() -> None:
    with pytest.raises(UpcasterMissingError, match="v2 -> v3"):
        price_registry(with_step_2=False).decode("PriceSet", 1, '{"cents": 1}')
    with pytest.raises(SchemaVersionError, match="newer"):
        price_registry().decode("PriceSet", 4, "{}")
    with pytest.raises(UnknownEventTypeError):
        price_registry().decode("Gone", 1, "{}")
    with pytest.raises(ValidationError):
        price_registry().decode("PriceSet", 3, '{"amount": "x", "currency": "EUR"}')


def test_json_schemas_export() -> None:
    exported = price_registry().json_schemas()
    assert exported["PriceSet"]["schema_version"] == 3
    assert exported["PriceSet"]["upcasters_from"] == [1, 2]
    assert set(exported["PriceSet"]["schema"]["properties"]) == {"amount", "currency"}


# -- upcast-then-validate properties -----------------------------------------------------------------
v1_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2)


@settings(max_examples=examples(200), deadline=None)
@given(amount=v1_amounts, ref=st.text(min_size=1, max_size=20))
def test_v1_events_read_as_valid_current_events(amount: Decimal, ref: str) -> None:
    """Whatever old code wrote, new code reads a valid current model with the same meaning,
    and that model survives its own encode/decode unchanged."""
    store = InMemoryEventStore(build_v1_registry())
    store.append("s", [NewEvent(data=DepositedV1(amount=amount, ref=ref))], 0)
    store.registry = build_registry()  # the next deploy reads the same stored bytes
    (event,) = store.read("s")
    assert event.schema_version == 1
    assert isinstance(event.data, Deposited)
    assert (event.data.amount, event.data.ref, event.data.currency) == (amount, ref, "USD")
    registry = build_registry()
    name, version, payload = registry.encode(event.data)
    assert registry.decode(name, version, payload) == event.data


@settings(max_examples=examples(200), deadline=None)
@given(cents=st.integers(min_value=-(10**12), max_value=10**12))
def test_chain_upcast_equals_manual_steps(cents: int) -> None:
    registry = price_registry()
    expected = PriceV3.model_validate({"amount": str(Decimal(cents) / 100), "currency": "EUR"})
    assert registry.decode("PriceSet", 1, json.dumps({"cents": cents})) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=examples(300), deadline=None)
@given(payload=st.one_of(json_values.map(json.dumps), st.text(max_size=30)), version=st.sampled_from([1, 2]))
def test_garbage_payloads_are_corrupt_events_never_other_errors(payload: str, version: int) -> None:
    store = InMemoryEventStore(build_registry())
    store.append("s", [NewEvent(data=Deposited(amount=Decimal(1), ref="r", currency="USD"))], 0)
    stored = store._streams["s"][0]
    stored.data_json, stored.schema_version = payload, version
    try:
        (event,) = store.read("s")
    except CorruptEventError as exc:
        assert (exc.stream_id, exc.version) == ("s", 1)
    else:
        assert isinstance(event.data, Deposited)  # the junk happened to be a valid deposit


# -- envelope helpers ----------------------------------------------------------------------------------
def test_normalize_timestamp() -> None:
    assert normalize_timestamp("2026-03-01T10:00:00Z") == "2026-03-01T10:00:00.000Z"
    assert normalize_timestamp("2026-03-01T12:00:00.123456+02:00") == "2026-03-01T10:00:00.123Z"
    assert normalize_timestamp("2026-03-01T10:00:00") == "2026-03-01T10:00:00.000Z"  # naive = UTC
    assert normalize_timestamp(datetime(2026, 3, 1, 5, tzinfo=timezone(timedelta(hours=-5)))) == "2026-03-01T10:00:00.000Z"
    with pytest.raises(ValueError):
        normalize_timestamp("yesterday")


def test_ids_and_clock() -> None:
    ids = [new_event_id() for _ in range(50)]
    assert len(set(ids)) == 50
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now_iso())
    now = datetime.now(UTC)
    assert abs(datetime.fromisoformat(utc_now_iso().replace("Z", "+00:00")) - now) < timedelta(seconds=5)


def test_envelope_to_dict_and_metadata() -> None:
    meta = EventMetadata(correlation_id="c", actor="a")
    env = EventEnvelope("e", "s", 1, "Deposited", 2, "t", Deposited(amount=Decimal("1.5"), ref="r", currency="USD"), meta)
    assert env.to_dict() == {
        "event_id": "e",
        "stream_id": "s",
        "version": 1,
        "type": "Deposited",
        "schema_version": 2,
        "occurred_at": "t",
        "data": {"amount": "1.5", "ref": "r", "currency": "USD"},
        "metadata": {"correlation_id": "c", "causation_id": None, "actor": "a", "command_id": None},
        "hash": None,  # set on every envelope the store writes or reads (the chain)
        "prev_hash": None,
    }
    assert EventMetadata.from_dict(meta.to_dict()) == meta
    assert EventMetadata.from_dict(None) == EventMetadata()
