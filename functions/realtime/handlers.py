"""The WebSocket routes: ``$connect`` records the caller, ``$disconnect`` forgets it,
``$default`` answers client messages (``subscribe``) on the socket (a two-way route).

Bad input never closes the connection: it gets an ``error`` message. A subscribe to a stream the
caller may not see gets the same answer as one to a stream that does not exist.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools import Logger

from realtime.connections import Connection
from realtime.messages import (
    ProtocolError,
    error,
    owner_of,
    parse_client_message,
    subscribed,
    valid_stream_id,
)

__all__ = ["connect", "default", "disconnect", "subscribe"]

logger = Logger()  # connections and messages are counted by API Gateway (ConnectCount, MessageCount)


def _caller(event: dict[str, Any]) -> Connection:
    ctx = event.get("requestContext") or {}
    auth = ctx.get("authorizer") or {}
    user = auth.get("sub") or auth.get("principalId")
    if not user:
        raise PermissionError("no authorizer context")  # API Gateway never routes without $connect auth
    groups = [g for g in str(auth.get("groups") or "").split(",") if g]
    connected_ms = ctx.get("connectedAt") or int(time.time() * 1000)
    return Connection(
        connection_id=ctx["connectionId"],
        user=str(user),
        staff="staff" in groups,
        connected_at=int(connected_ms) // 1000,
    )


def _reply(message: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps(message, separators=(",", ":"))}


@logger.inject_lambda_context
def connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from realtime.app import connections

    caller = _caller(event)
    connections().add(caller)
    logger.info("connected", extra={"connection_id": caller.connection_id, "user": caller.user})
    return {"statusCode": 200}


@logger.inject_lambda_context
def disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from realtime.app import connections

    connection_id = (event.get("requestContext") or {}).get("connectionId")
    if connection_id:
        connections().remove(connection_id)
    return {"statusCode": 200}


def subscribe(caller: Connection, stream_id: str, store: Any, read_view: Any) -> dict[str, Any]:
    """The answer to ``subscribe``; ``read_view(stream_id) -> (version, view) | None``."""
    not_found = error("stream-not-found", "there is no stream with this id that you may follow",
                      stream_id=stream_id[:200])
    if not valid_stream_id(stream_id):
        return not_found
    found = read_view(stream_id)
    if found is None or not found[1]:
        return not_found
    version, view = found
    owner = owner_of(stream_id, view)
    if owner == caller.user:
        return subscribed(stream_id, version)  # its own streams reach it anyway
    if not caller.staff:
        return not_found
    store.subscribe(caller, stream_id)
    return subscribed(stream_id, version)


def _read_view(stream_id: str) -> tuple[int, Any] | None:
    from cairn.projections.readers import ReadModelTable
    from realtime.app import dynamodb, view_tables

    for prefix, table in view_tables().items():
        if stream_id.startswith(prefix):
            return ReadModelTable(dynamodb(), table).stream_state(stream_id)
    return None


@logger.inject_lambda_context
def default(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from realtime.app import connections

    caller = _caller(event)
    try:
        message = parse_client_message(event.get("body"))
    except ProtocolError as exc:
        return _reply(error(exc.code, str(exc)))
    answer = subscribe(caller, message.stream_id, connections(), _read_view)
    logger.info("subscribe", extra={"user": caller.user, "stream_id": message.stream_id[:200],
                                    "answer": answer["type"]})
    return _reply(answer)
