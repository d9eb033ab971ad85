"""Ops Lambda: staff-only operational routes (``GET /ops/projections``).

Every route here is behind the JWT authorizer and the staff check; the public routes (health,
the API description, unknown routes) live in ``cairn_platform.public``, a function without data
permissions, so nothing unauthenticated reaches this function's role (it reads the read models).
"""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict

from cairn.http import HttpService

__all__ = ["PROJECTION_TABLES", "handler", "service"]

service = HttpService("ops")
app = service.app

# projection name -> env var of its read-model table
PROJECTION_TABLES = {
    "order_view": "ORDER_VIEW_TABLE",
    "user_orders": "USER_ORDERS_TABLE",
    "analytics": "ANALYTICS_TABLE",
    "account_view": "ACCOUNT_VIEW_TABLE",
}


class ProjectionStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    generation: int
    streams: int
    events_applied: int
    lag_events: int
    parked_streams: int


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
    status = projection_status(client("dynamodb"), tables)
    return Response(status_code=200, content_type="application/json", body={"projections": status})


handler = service.handler
