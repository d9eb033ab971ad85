"""schemas/events.json is the committed JSON Schema of every stored event type.

Fails when a payload model changed without a ``schema_version`` bump and an upcaster (stored
events would be mis-read), when a type or context disappeared, or when the file is stale.
Regenerate with ``python -m cairn_platform.event_schemas`` after a deliberate, upcasted change.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cairn_platform import event_schemas

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "events.json"


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(COMMITTED.read_text())


@pytest.fixture(scope="module")
def current() -> dict:
    return event_schemas.current()


def test_no_stored_event_schema_changed_unsafely(committed: dict, current: dict):
    assert event_schemas.problems(committed, current) == []


def test_committed_file_is_current(committed: dict, current: dict):
    assert committed == current, "schemas/events.json is stale: run python -m cairn_platform.event_schemas"


def test_every_registered_type_is_exported(current: dict):
    from accounts import domain as accounts
    from orders import domain as orders

    assert set(current["orders"]) == {t.__name__ for t in orders.EVENT_TYPES}
    assert set(current["accounts"]) == {t.__name__ for t in accounts.EVENT_TYPES}
    money = current["accounts"]["MoneyDeposited"]["schema"]["properties"]["amount"]
    assert money["type"] == "string"  # money is a decimal string in stored events too


def test_a_field_added_without_a_version_bump_is_caught(committed: dict):
    changed = copy.deepcopy(committed)
    schema = changed["orders"]["OrderShipped"]["schema"]
    schema["properties"]["carrier"] = {"type": "string"}
    schema["required"].append("carrier")
    (problem,) = event_schemas.problems(committed, changed)
    assert problem.startswith("orders.OrderShipped: schema changed without a schema_version bump")


def test_a_bump_without_an_upcaster_is_caught(committed: dict):
    changed = copy.deepcopy(committed)
    changed["accounts"]["MoneyWithdrawn"]["schema_version"] = 2
    assert event_schemas.problems(committed, changed) == ["accounts.MoneyWithdrawn: schema_version 2 has no upcaster from v1"]
    changed["accounts"]["MoneyWithdrawn"]["upcasters_from"] = [1]
    assert event_schemas.problems(committed, changed) == []


def test_removed_types_and_contexts_are_caught(committed: dict):
    changed = copy.deepcopy(committed)
    del changed["orders"]["OrderDelivered"]
    del changed["payments"]
    found = event_schemas.problems(committed, changed)
    assert "payments: context removed, but its stored events still exist" in found
    assert any(p.startswith("orders.OrderDelivered: event type removed") for p in found)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert event_schemas.main(["--check", str(COMMITTED)]) == 0
    stale = tmp_path / "events.json"
    data = json.loads(COMMITTED.read_text())
    data["orders"]["OrderShipped"]["schema"]["properties"]["tracking"]["maxLength"] = 10
    stale.write_text(json.dumps(data))
    assert event_schemas.main(["--check", str(stale)]) == 1
    assert "OrderShipped" in capsys.readouterr().err
    fresh = tmp_path / "fresh.json"
    assert event_schemas.main([str(fresh)]) == 0
    assert json.loads(fresh.read_text()) == event_schemas.current()


# -- issue 17, defect 4: stored payloads carry no input limits, and the guard sees every rule --
def test_events_outside_todays_input_limits_still_decode():
    """An OrderCreated stored with values today's input refuses (a price above the unit-price
    cap, a quantity above 1000, an sku the pattern refuses, a lower-case currency) is read back,
    and so is a snapshot of its state: tightening an input rule never orphans history."""
    import json as _json
    from decimal import Decimal

    from accounts.app import registry as accounts_registry
    from orders import domain
    from orders.app import registry as orders_registry

    payload = {
        "order_id": "order-1",
        "customer_id": "alice",
        "items": [{"sku": "old sku/with spaces", "quantity": 5000, "unit_price": "2000000.00", "discontinued": True}],
        "currency": "usd",
        "total": "10000000000.00",
    }
    event = orders_registry.decode("OrderCreated", 1, _json.dumps(payload))
    assert event.items[0].unit_price == Decimal("2000000.00") and event.items[0].quantity == 5000
    state = domain.evolve(domain.initial_state(), event)
    assert domain.state_from_dict(_json.loads(_json.dumps(domain.state_to_dict(state)))) == state
    deposit = accounts_registry.decode("MoneyDeposited", 1, '{"amount": "5000000000.00"}')
    assert deposit.amount == Decimal("5000000000.00")


def _ecma_validator(schema: dict):
    """jsonschema with ECMA-262 pattern semantics (ASCII ``\\d``, ``$`` only at the very end),
    as JSON Schema specifies; Python's ``re`` would differ on "\\n" and non-ASCII digits."""
    import re as _re

    import jsonschema
    from jsonschema.exceptions import ValidationError as SchemaError

    def pattern(validator, patrn, instance, schema):
        if validator.is_type(instance, "string") and not _re.search(patrn.replace("$", r"\Z"), instance, _re.ASCII):
            yield SchemaError(f"{instance!r} does not match {patrn!r}")

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})
    return cls(schema)


@pytest.mark.parametrize("context,type_name", [("orders", "OrderCreated"), ("orders", "PaymentProcessed"),
                                               ("accounts", "MoneyDeposited"), ("accounts", "AccountOpened")])
def test_the_committed_schema_accepts_exactly_what_the_decoder_accepts(committed: dict, context: str, type_name: str):
    """No rule hides from schemas/events.json (``WithJsonSchema`` over a validator used to):
    for payloads varied field by field, the committed schema and the decoder agree."""
    import json as _json

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from pydantic import ValidationError

    from cairn_platform.event_schemas import registries
    from tests.budget import examples

    registry = registries()[context]
    validator = _ecma_validator(committed[context][type_name]["schema"])
    base = {
        "OrderCreated": {"order_id": "o", "customer_id": "c", "currency": "USD", "total": "1.00",
                         "items": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]},
        "PaymentProcessed": {"payment_id": "p", "amount": "1.00"},
        "MoneyDeposited": {"amount": "1.00"},
        "AccountOpened": {"account_id": "a", "owner_id": "o", "currency": "USD"},
    }[type_name]
    # floats with a zero fraction are left out: JSON Schema calls 1.0 an "integer", pydantic's strict
    # int does not, and no writer of ours produces one
    values = st.one_of(
        st.text(max_size=8), st.text(alphabet="0123456789.-e \u0661\n", max_size=8), st.integers(),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()), st.booleans(), st.none(),
    )

    @settings(max_examples=examples(150), deadline=None)
    @given(st.sampled_from(sorted(base) + ["items.sku", "items.quantity", "items.unit_price"]), values)
    def agree(field: str, value):
        payload = _json.loads(_json.dumps(base))
        if field.startswith("items."):
            if "items" not in payload:
                return
            payload["items"][0][field.split(".")[1]] = value
        else:
            payload[field] = value
        try:
            registry.decode(type_name, 1, _json.dumps(payload))
            decoded = True
        except ValidationError:
            decoded = False
        assert validator.is_valid(payload) == decoded, (field, value)

    agree()
