"""Personal data in stored payloads (issue 12, docs/privacy.md): sealed values and the schema mark.

A personal field of an event is stored only *sealed* (AES-GCM under the data subject's key, by
``cairn.privacy``): ``{"pii": 1, "sub", "kid", "ct"}``. Domains carry sealed values as opaque
data — folds, snapshots and integration never need the plaintext — and mark the field with
``personal()`` so the JSON Schema says which fields are personal (``x-personal``); the schema
guard (``cairn.events.schemas``) refuses a change that drops the mark or stores a personal field
in any other shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PERSONAL_MARK", "Sealed", "personal", "personal_fields"]

PERSONAL_MARK = "x-personal"


class Sealed(BaseModel):
    """A sealed personal value: subject, key id and ciphertext; never the plaintext."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", title="Sealed")
    pii: Literal[1]
    sub: str
    kid: str
    ct: str


def personal(**kwargs: Any) -> Any:
    """``Field(default=None, …)`` marked personal in the JSON Schema."""
    return Field(default=None, json_schema_extra={PERSONAL_MARK: True}, **kwargs)


def personal_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` marked personal (what the codec seals and opens)."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(PERSONAL_MARK)
    )
