"""Ops Lambda: staff-only operational routes (``GET /ops/projections``, ``POST /ops/snapshots``).

Every route here is behind the JWT authorizer and the staff check; the public routes (health,
the API description, unknown routes) live in ``cairn_platform.public``, a function without data
permissions, so nothing unauthenticated reaches this function's role (it reads the read models).
"""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict, Field

from cairn.http import HttpService, not_found

__all__ = ["FAILED_QUEUES", "PROJECTION_TABLES", "handler", "service"]

service = HttpService("ops")
app = service.app

# projection name -> env var of its read-model table
PROJECTION_TABLES = {
    "order_view": "ORDER_VIEW_TABLE",
    "user_orders": "USER_ORDERS_TABLE",
    "analytics": "ANALYTICS_TABLE",
    "account_view": "ACCOUNT_VIEW_TABLE",
    "catalog": "CATALOG_TABLE",
}

# projection name -> env var of its stream consumer's on-failure queue (failed batches)
FAILED_QUEUES = {
    "order_view": "ORDERS_FAILED_QUEUE_URL",
    "user_orders": "ORDERS_FAILED_QUEUE_URL",
    "analytics": "ORDERS_FAILED_QUEUE_URL",
    "account_view": "ACCOUNTS_FAILED_QUEUE_URL",
}


class ProjectionStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    generation: int
    streams: int
    events_applied: int
    lag_events: int
    lag_seconds: float
    parked_streams: int
    failed_batches: int


class SnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream_id: str = Field(min_length=1, max_length=200, pattern=r"^[a-z]+-[A-Za-z0-9-]{1,100}$")


class SnapshotTaken(BaseModel):
    stream_id: str
    version: int


class Projections(BaseModel):
    projections: list[ProjectionStatus]


@service.get(
    "/ops/projections",
    staff=True,
    security=[{"bearerAuth": []}],
    problems={401: "Missing or invalid token"},
    summary="Projection status: generation, applied events, lag, parked streams (staff)",
    tags=["ops"],
)
def projections() -> Response[Projections]:
    from cairn.aws import client
    from cairn.projections.status import projection_status

    tables = {name: os.environ[var] for name, var in PROJECTION_TABLES.items() if os.environ.get(var)}
    queues = {name: os.environ[var] for name, var in FAILED_QUEUES.items() if os.environ.get(var)}
    status = projection_status(
        client("dynamodb"), tables, events_table=os.environ.get("EVENTS_TABLE"), failed_queues=queues
    )
    return Response(status_code=200, content_type="application/json", body={"projections": status})


@service.post(
    "/ops/snapshots",
    status_code=202,
    staff=True,
    security=[{"bearerAuth": []}],
    problems={401: "Missing or invalid token", 404: "No such stream, or a type that is never snapshotted"},
    summary="Take a snapshot of a stream at its current version now (staff)",
    tags=["ops"],
)
def take_snapshot(body: SnapshotRequest) -> Response[SnapshotTaken]:
    from cairn_platform.snapshotter import UnknownStreamError, snapshot_now

    try:
        version = snapshot_now(body.stream_id)
    except UnknownStreamError as exc:
        raise not_found(str(exc)) from exc
    return Response(
        status_code=202, content_type="application/json", body={"stream_id": body.stream_id, "version": version}
    )


handler = service.handler
