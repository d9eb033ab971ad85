"""What every query Lambda shares: the audit-trail page, instants, min_version, JSON answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict

from cairn.events import EventEnvelope, normalize_timestamp
from cairn.http.headers import etag
from cairn.http.problems import ProblemError, not_found, validation_failed
from cairn.store import EventStore


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # API.md: fields may be added, none removed


class EventMetadataOut(_Open):
    correlation_id: str | None
    causation_id: str | None
    actor: str | None


class EventRecord(_Open):
    event_id: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    occurred_at: str
    data: dict[str, Any]
    metadata: EventMetadataOut


class EventPage(BaseModel):
    events: list[EventRecord]
    next_after: int | None


def json_response(body: Any, *, version: int | None = None, source: str | None = None) -> Response:
    """200 JSON; ``ETag`` for an entity, ``X-Cairn-Source`` saying read-model or event-store."""
    headers = {}
    if version is not None:
        headers["ETag"] = etag(version)
    if source is not None:
        headers["X-Cairn-Source"] = source
    return Response(status_code=200, content_type="application/json", body=body, headers=headers)


def event_page(
    store: EventStore,
    stream_id: str,
    after: int,
    limit: int,
    visible: Callable[[EventEnvelope], bool],
) -> dict[str, Any]:
    """``{"events", "next_after"}`` of a stream; 404 unless ``visible(first event)``.

    Versions are contiguous, so one bounded Query reads the page plus one event that tells
    whether another page exists.
    """
    events = list(store.read(stream_id, after=after, up_to_version=after + limit + 1))
    if events and events[0].version == 1:
        first: EventEnvelope | None = events[0]
    else:
        first = next(iter(store.read(stream_id, after=0, up_to_version=1)), None)
    if first is None or not visible(first):
        raise not_found(f"{stream_id} not found")
    page = events[:limit]
    return {"events": [e.to_dict() for e in page], "next_after": page[-1].version if len(events) > limit else None}


def instant(value: str | None, loc: str = "at") -> str | None:
    """An ISO 8601 instant normalized to the stored form (so string order is time order); 422 if not one."""
    if value is None:
        return None
    try:
        return normalize_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise validation_failed([{"loc": ["query", loc], "msg": "not an ISO 8601 instant"}]) from None


def one_of_version_or_at(version: int | None, at: str | None) -> None:
    if (version is None) == (at is None):
        raise validation_failed([{"loc": ["query"], "msg": "give exactly one of version or at"}])


def version_not_reached(entity: str, current: int, wanted: int) -> ProblemError:
    """``?min_version`` beyond the stream's head: the client asked for a future version."""
    return ProblemError(
        412,
        "version-not-reached",
        f"{entity} is at version {current}, below min_version {wanted}",
        current_version=current,
    )


__all__ = [
    "EventMetadataOut",
    "EventPage",
    "EventRecord",
    "event_page",
    "instant",
    "json_response",
    "one_of_version_or_at",
    "version_not_reached",
]
