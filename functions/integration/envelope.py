"""The integration event envelope: what leaves a service on the bus.

Integration events are a published contract, versioned on their own and decoupled from the
internal (stored) event schemas: an internal refactoring never changes what other services read.
The envelope travels as the EventBridge ``detail``; ``detail-type`` is ``type``.
"""

from __future__ import annotations

import uuid
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field

# Fixed namespace: ids derived from it must stay stable forever (consumers dedupe on them).
INTEGRATION_NAMESPACE = uuid.UUID("6f1c2b7e-4d0a-5c8e-9b3f-2a1d7e5c4b90")


def integration_event_id(internal_event_id: str, type_name: str, version: int) -> str:
    """The id of the integration event published for an internal event: same input, same id.

    Derived (UUIDv5) from the internal event id, so every re-publication of that event (stream
    redelivery, publisher retry, replay of the stream) carries the same id and consumers can dedupe.
    Type and contract version are part of the name: during a migration the v1 and v2 events of
    one internal event are distinct messages.
    """
    return str(uuid.uuid5(INTEGRATION_NAMESPACE, f"{internal_event_id}/{type_name}/v{version}"))


class IntegrationEvent(BaseModel):
    """Envelope fields shared by every integration event (``data`` is typed per event type).

    Tolerant reader: unknown fields are ignored, so a producer can add optional fields without a
    new version. Removing or changing a field needs a new ``version`` (see docs/eda.md).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(description="Stable id (UUIDv5 of the internal event id): consumers dedupe on it.")
    type: str = Field(description="Integration event type; also the EventBridge detail-type.")
    version: int = Field(ge=1, description="Contract version of this type's data schema.")
    source: str = Field(description="Publishing service, e.g. cairn.orders (the EventBridge source).")
    subject: str = Field(description="Id of the entity the event is about (the order id).")
    sequence: int = Field(
        ge=1,
        description="Version of the subject after this event: consumers use it to detect stale or "
        "reordered deliveries (higher is newer).",
    )
    occurred_at: str = Field(description="When the internal event was recorded (ISO 8601 UTC).")
    correlation_id: str | None = Field(None, description="Correlation id of the request that started the flow.")
    causation_id: str | None = Field(None, description="Id of the internal event this integration event reports.")
    data: Any

    @classmethod
    def contract(cls) -> tuple[str, int, str]:
        """(type, version, source) of a concrete contract class (its ``Literal`` annotations)."""
        return tuple(get_args(cls.model_fields[name].annotation)[0] for name in ("type", "version", "source"))

    def to_detail(self) -> dict[str, Any]:
        """JSON-ready EventBridge detail; absent optionals are omitted (so `exists` patterns are exact)."""
        return self.model_dump(mode="json", exclude_none=True)
