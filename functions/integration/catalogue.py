"""The catalogue of published integration events: (type, version) -> model, parsing, schemas.

``schemas/integration-events.json`` is generated from here and committed; a test fails when the
committed file differs from the models (regenerate: ``python -m integration --write``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from integration.envelope import IntegrationEvent
from integration.orders import ORDER_EVENTS

CATALOGUE_VERSION = 1


class UnknownIntegrationEventError(LookupError):
    """A (type, version) this code does not know: a newer contract, or not ours."""


class MalformedIntegrationEventError(ValueError):
    """A known (type, version) whose payload does not match its schema."""


def _key(model: type[IntegrationEvent]) -> tuple[str, int]:
    type_name, version, _ = model.contract()
    return type_name, version


CATALOGUE: dict[tuple[str, int], type[IntegrationEvent]] = {_key(m): m for m in ORDER_EVENTS}


def model_for(type_name: str, version: int) -> type[IntegrationEvent]:
    try:
        return CATALOGUE[(type_name, version)]
    except KeyError:
        raise UnknownIntegrationEventError(f"unknown integration event {type_name} v{version}") from None


def parse_integration_event(detail: dict[str, Any] | str | bytes) -> IntegrationEvent:
    """EventBridge ``detail`` -> the typed integration event of its (type, version)."""
    raw = json.loads(detail) if isinstance(detail, str | bytes) else detail
    if not isinstance(raw, dict):
        raise MalformedIntegrationEventError("integration event detail must be a JSON object")
    type_name, version = raw.get("type"), raw.get("version")
    if not isinstance(type_name, str) or not isinstance(version, int) or isinstance(version, bool):
        raise MalformedIntegrationEventError("integration event needs a string 'type' and an integer 'version'")
    model = model_for(type_name, version)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise MalformedIntegrationEventError(f"{type_name} v{version}: {exc}") from exc


def json_schemas() -> dict[str, Any]:
    """The catalogue as one JSON document: every (type, version) with its envelope schema."""
    events = []
    for (type_name, version), model in sorted(CATALOGUE.items()):
        schema = model.model_json_schema(mode="serialization")
        events.append(
            {
                "type": type_name,
                "version": version,
                "source": model.contract()[2],
                "detail_type": type_name,
                "schema": schema,
            }
        )
    return {
        "catalogue_version": CATALOGUE_VERSION,
        "transport": "Amazon EventBridge: source = event source, detail-type = type, detail = the envelope",
        "events": events,
    }


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "integration-events.json"


def render() -> str:
    return json.dumps(json_schemas(), indent=2, sort_keys=True) + "\n"
