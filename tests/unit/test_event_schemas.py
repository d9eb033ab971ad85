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
