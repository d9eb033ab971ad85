"""What every query Lambda shares: the audit-trail page, instants, min_version, JSON answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

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


class IntactStream(_Open):
    stream_id: str
    version: int
    head_hash: str
    intact: Literal[True]


class BrokenStream(_Open):
    stream_id: str
    intact: Literal[False]
    first_bad_version: int
    problem: str


# API.md "Integrity": intact → version + head_hash; broken → first_bad_version + problem (still 200)
VerificationResult = IntactStream | BrokenStream


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
    "BrokenStream",
    "EventRecord",
    "IntactStream",
    "VerificationResult",
    "event_page",
    "instant",
    "json_response",
    "one_of_version_or_at",
    "seen_elsewhere",
    "verification",
    "version_not_reached",
]


def current_view(
    entity: str,
    read_model: Callable[[], dict[str, Any] | None],
    from_store: Callable[[], dict[str, Any] | None],
    *,
    min_version: int | None,
    visible: Callable[[dict[str, Any]], bool],
) -> Response:
    """A single-entity GET: the read model, or the fold of the store when it lags (read-your-writes).

    Another user's entity is the same 404 as a missing one; ``min_version`` beyond the head is 412.
    """
    view = read_model()
    source = "read-model"
    if view is None or (min_version is not None and view["version"] < min_version):
        view = from_store()  # the projection has not caught up (or never saw the entity)
        source = "event-store"
    if view is None or not visible(view):
        raise not_found(f"{entity} not found")
    if min_version is not None and view["version"] < min_version:
        raise version_not_reached(entity, view["version"], min_version)
    return json_response(view, version=view["version"], source=source)


def state_as_of(
    entity: str,
    runtime: Any,
    stream_id: str,
    *,
    version: int | None,
    at: str | None,
    visible: Callable[[Any], bool],
) -> tuple[int, Any, str | None]:
    """Time travel: (version reached, state, last occurred_at) as of exactly one of version or at.

    Every 404 is the same problem with the same detail — no such entity, another user's, not
    yet created at that instant, no such version — so the answer never tells a caller whether
    someone else's entity exists (or since when).
    """
    from cairn.commands import StreamNotFoundError

    at = instant(at)
    one_of_version_or_at(version, at)
    try:
        reached, state, last_at = runtime.state_at(stream_id, up_to_version=version, up_to_time=at)
    except StreamNotFoundError:
        raise not_found(f"{entity} not found") from None
    if not visible(state) or (version is not None and reached < version):
        raise not_found(f"{entity} not found")
    return reached, state, last_at


def verification(
    entity: str,
    store: EventStore,
    stream_id: str,
    *,
    owner_of_first: Callable[[Any], str | None],
    visible: Callable[[str | None], bool],
    elsewhere: Callable[[], tuple[str | None, list[tuple[int, str | None]]]],
) -> Response:
    """``GET …/verification``: the chain recomputed from version 1, against what was seen elsewhere.

    ``elsewhere()`` -> (owner known to the read model, [(version, hash or None)] seen by
    projections and snapshots). The owner comes from the stored first event, or from the read
    model when that event is gone or unreadable; nobody sees a stream whose owner is unknown but
    staff. A tampered or missing item is never an error: the answer is the verification (200)."""
    from cairn.integrity import verify_items

    items = list(store.raw_items(stream_id))
    owner_known, seen = elsewhere()
    owner = owner_known
    if items:
        try:
            first = store.registry.decode(
                str(_attr(items[0], "type")), int(_attr(items[0], "schema_version")), str(_attr(items[0], "data"))
            )
            if int(_attr(items[0], "version")) == 1:
                owner = owner_of_first(first) or owner
        except Exception:  # a damaged first event: the read model still knows the owner
            pass
    if not items and not seen:
        raise not_found(f"{entity} not found")
    if not visible(owner):
        raise not_found(f"{entity} not found")
    expected_head = max((v for v, _ in seen), default=None)
    witnesses = {v: h for v, h in seen if h}
    result = verify_items(stream_id, items, expected_head=expected_head, witnesses=witnesses)
    return json_response(result.to_dict())


def _attr(item: Any, name: str) -> Any:
    value = item[name]
    if isinstance(value, dict):
        return value.get("S", value.get("N"))
    return value


def seen_elsewhere(
    stream_id: str, read_view: Callable[[], dict[str, Any] | None], owner_field: str, runtime: Any
) -> tuple[str | None, list[tuple[int, str | None]]]:
    """(owner, [(version, hash)]) of a stream as the read model and the snapshot saw it.

    Each witness is best effort: an unreadable view or snapshot is simply not a witness."""
    import logging

    owner: str | None = None
    seen: list[tuple[int, str | None]] = []
    try:
        view = read_view()
    except Exception:
        logging.getLogger(__name__).warning("read model unavailable for %s", stream_id, exc_info=True)
        view = None
    if view:
        owner = view.get(owner_field)
        try:
            seen.append((int(view["version"]), None))
        except (KeyError, TypeError, ValueError):
            pass
    snapshots = getattr(runtime, "snapshots", None)
    if snapshots is not None:
        try:
            snapshot = snapshots.get(stream_id, runtime.decider.state_schema_version)
        except Exception:
            snapshot = None
        if snapshot is not None and snapshot.version > 0:
            seen.append((snapshot.version, snapshot.hash or None))
    return owner, seen
