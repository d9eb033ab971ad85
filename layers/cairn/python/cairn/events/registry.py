"""Maps event type names to pydantic models and upgrades old stored payloads on read.

Stored events are never rewritten: an event written at schema version 1 stays version 1 in the
table forever. When a model changes, its ``schema_version`` is bumped and an upcaster
``(type, from_version) -> dict`` turns an old payload into the next version's shape; decoding
applies the chain until the payload matches the current model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import SchemaValidator

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
JsonDecoder = Callable[[str | bytes], BaseModel]


class UnknownEventTypeError(KeyError):
    """A stored event's type is not registered (a deploy dropped a type still in the log)."""


class UpcasterMissingError(LookupError):
    """An old payload cannot be brought to the current schema version."""


class SchemaVersionError(ValueError):
    """A stored event claims a schema version newer than this code knows (rollback hazard)."""


@dataclass(frozen=True, slots=True)
class RegisteredType:
    name: str
    model: type[BaseModel]
    schema_version: int


class EventRegistry:
    """Type name <-> model, current schema versions and upcasters, for one or more contexts."""

    def __init__(self) -> None:
        self._by_name: dict[str, RegisteredType] = {}
        self._by_model: dict[type[BaseModel], RegisteredType] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._decoders: dict[str, tuple[int, JsonDecoder]] | None = None

    # -- registration -------------------------------------------------------------------------
    def register(self, model: type[BaseModel], *, name: str | None = None, schema_version: int = 1):
        """Register ``model`` under ``name`` (default: class name). Usable as a decorator."""
        type_name = name or model.__name__
        if schema_version < 1:
            raise ValueError("schema_version starts at 1")
        existing = self._by_name.get(type_name)
        if existing is not None and existing.model is not model:
            raise ValueError(f"event type {type_name!r} is already registered to {existing.model!r}")
        entry = RegisteredType(type_name, model, schema_version)
        self._by_name[type_name] = entry
        self._by_model[model] = entry
        self._decoders = None
        return model

    def event(self, name: str | None = None, *, schema_version: int = 1):
        """Decorator form: ``@registry.event(schema_version=2)``."""

        def wrap(model: type[BaseModel]) -> type[BaseModel]:
            return self.register(model, name=name, schema_version=schema_version)

        return wrap

    def upcaster(self, type_name: str, from_version: int):
        """Decorator registering the step ``from_version -> from_version + 1`` for ``type_name``."""

        def wrap(fn: Upcaster) -> Upcaster:
            key = (type_name, from_version)
            if key in self._upcasters:
                raise ValueError(f"upcaster {key} already registered")
            self._upcasters[key] = fn
            return fn

        return wrap

    def merge(self, *others: EventRegistry) -> EventRegistry:
        """A registry holding this one's and ``others``' types (for consumers of several contexts)."""
        merged = EventRegistry()
        for reg in (self, *others):
            for entry in reg._by_name.values():
                merged.register(entry.model, name=entry.name, schema_version=entry.schema_version)
            merged._upcasters.update(reg._upcasters)
        return merged

    # -- lookup -------------------------------------------------------------------------------
    def type_of(self, event: BaseModel) -> RegisteredType:
        try:
            return self._by_model[type(event)]
        except KeyError:
            raise UnknownEventTypeError(f"{type(event).__name__} is not a registered event") from None

    def get(self, type_name: str) -> RegisteredType:
        try:
            return self._by_name[type_name]
        except KeyError:
            raise UnknownEventTypeError(f"unknown event type {type_name!r}") from None

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._by_name

    def names(self) -> Iterable[str]:
        return sorted(self._by_name)

    def has_upcaster(self, type_name: str, from_version: int) -> bool:
        return (type_name, from_version) in self._upcasters

    def decoders(self) -> dict[str, tuple[int, JsonDecoder]]:
        """Type name -> (current schema version, JSON decoder of that version), built once.

        The decoder is the model's bound pydantic-core validator (``model_validate_json`` minus a
        Python frame) for the store's hot loop; payloads at other versions go through
        :meth:`decode`. Treat the mapping as read-only.
        """
        decoders = self._decoders
        if decoders is None:
            decoders = {}
            for name, entry in self._by_name.items():
                validator = getattr(entry.model, "__pydantic_validator__", None)
                decode = validator.validate_json if isinstance(validator, SchemaValidator) else None
                decoders[name] = (entry.schema_version, decode or entry.model.model_validate_json)
            self._decoders = decoders
        return decoders

    # -- codec --------------------------------------------------------------------------------
    def encode(self, event: BaseModel) -> tuple[str, int, str]:
        """(type name, schema version, compact JSON) for storing."""
        entry = self.type_of(event)
        return entry.name, entry.schema_version, event.model_dump_json()

    def decode(self, type_name: str, schema_version: int, payload: str | bytes | dict[str, Any]) -> BaseModel:
        """Payload as stored -> current model. The current-version path is pydantic-core only."""
        entry = self.get(type_name)
        if schema_version == entry.schema_version:
            if isinstance(payload, dict):
                return entry.model.model_validate(payload)
            return entry.model.model_validate_json(payload)
        if schema_version > entry.schema_version:
            raise SchemaVersionError(
                f"{type_name} v{schema_version} is newer than this code's v{entry.schema_version}"
            )
        raw = json.loads(payload) if not isinstance(payload, dict) else dict(payload)
        for version in range(schema_version, entry.schema_version):
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise UpcasterMissingError(f"no upcaster for {type_name} v{version} -> v{version + 1}")
            raw = step(raw)
        return entry.model.model_validate(raw)

    # -- schema export ------------------------------------------------------------------------
    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """Every registered type's JSON Schema with its version (committed, checked by a test)."""
        return {
            name: {
                "schema_version": self._by_name[name].schema_version,
                "upcasters_from": sorted(v for (t, v) in self._upcasters if t == name),
                "schema": self._by_name[name].model.model_json_schema(),
            }
            for name in self.names()
        }
