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
from integration.payments import PAYMENT_EVENTS

CATALOGUE_VERSION = 1


class UnknownIntegrationEventError(LookupError):
    """A (type, version) this code does not know: a newer contract, or not ours."""


class MalformedIntegrationEventError(ValueError):
    """A known (type, version) whose payload does not match its schema."""


def _key(model: type[IntegrationEvent]) -> tuple[str, int]:
    type_name, version, _ = model.contract()
    return type_name, version


CATALOGUE: dict[tuple[str, int], type[IntegrationEvent]] = {_key(m): m for m in (*ORDER_EVENTS, *PAYMENT_EVENTS)}


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


CATALOGUE_START = "<!-- integration-event-catalogue:start (generated: python -m integration --docs) -->"
CATALOGUE_END = "<!-- integration-event-catalogue:end -->"


def _compact(schema: Any) -> Any:
    """A schema without pydantic's generated titles (the property names say the same)."""
    if isinstance(schema, dict):
        return {k: _compact(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    if isinstance(schema, list):
        return [_compact(v) for v in schema]
    return schema


def _block(schema: Any) -> list[str]:
    return ["```json", json.dumps(_compact(schema), indent=2, sort_keys=True), "```", ""]


def markdown() -> str:
    """The catalogue section of docs/eda.md: envelope, shared definitions, each event's data schema."""
    lines = [CATALOGUE_START, ""]
    envelope = IntegrationEvent.model_json_schema(mode="serialization")
    envelope["properties"]["data"] = {"description": "The event's data: see its type below."}
    envelope.pop("description", None)
    lines += ["#### Envelope (every event's EventBridge `detail`)", "", *_block(envelope)]
    shared: dict[str, Any] = {}
    events: list[tuple[str, int, str, str, dict[str, Any]]] = []
    for (type_name, version), model in sorted(CATALOGUE.items()):
        data_model = model.model_fields["data"].annotation
        schema = data_model.model_json_schema(mode="serialization")
        shared.update(schema.pop("$defs", {}))
        schema.pop("description", None)
        events.append((type_name, version, model.contract()[2], (data_model.__doc__ or "").strip(), schema))
    lines += ["#### Shared definitions (`#/$defs/...`)", "", *_block(shared)]
    for type_name, version, source, doc, schema in events:
        lines += [
            f"#### {type_name} v{version}",
            "",
            f"source `{source}`, detail-type `{type_name}`, `version` {version}. {doc}",
            "",
            *_block(schema),
        ]
    lines.append(CATALOGUE_END)
    return "\n".join(lines)
