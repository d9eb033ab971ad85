"""Ops Lambda: GET /health and GET /openapi.json (public), GET /ops/projections (staff).

``/openapi.json`` is one OpenAPI 3 document of every route: each HTTP Lambda's resolver
generates its own (Powertools, from the routes' pydantic models), and Powertools'
``OpenAPIMerge`` merges them — conflicting paths or component names fail loudly. Built on the
first request and kept for the life of the process.
"""

from __future__ import annotations

import importlib
import json
import os
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict

from cairn.http import HttpService

service = HttpService("ops", authenticated=False)
app = service.app

API_TITLE = "Cairn API"
API_VERSION = "1.0.0"
BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}

# Every HTTP Lambda's module (docs/architecture.md "HTTP routes -> functions"), this one last.
HTTP_MODULES = (
    "orders.api",
    "orders.queries",
    "accounts.api",
    "accounts.queries",
    "inventory.queries",
    "notifications.queries",
    "catalog.api",
    "cairn_platform.ops",
)

# projection name -> env var of its read-model table
PROJECTION_TABLES = {
    "order_view": "ORDER_VIEW_TABLE",
    "user_orders": "USER_ORDERS_TABLE",
    "analytics": "ANALYTICS_TABLE",
    "account_view": "ACCOUNT_VIEW_TABLE",
    "catalog": "CATALOG_TABLE",
}


class Health(BaseModel):
    status: str


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


@service.get("/health", summary="Liveness", tags=["ops"])
def health() -> Health:
    return Health(status="ok")


@service.get("/openapi.json", summary="This document: OpenAPI 3 of every route", tags=["ops"])
def openapi_json():  # the document itself: no response model
    return Response(
        status_code=200,
        content_type="application/json",
        body=_openapi_text(),
        headers={"Cache-Control": "public, max-age=300"},
    )


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


def build_openapi(modules: tuple[str, ...] = HTTP_MODULES) -> dict[str, Any]:
    """The merged document (the resolvers' own OpenAPI generation, merged by Powertools)."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    merge = OpenAPIMerge(
        title=API_TITLE,
        version=API_VERSION,
        description="Event-sourced orders and accounts. Errors are application/problem+json (RFC 9457).",
        security_schemes=BEARER,
        on_conflict="error",
    )
    seen: dict[str, Any] = {}
    for name in modules:
        module = importlib.import_module(name)
        resolver = module.service.app if hasattr(module, "service") else module.app
        schema = json.loads(
            resolver.get_openapi_schema(title=API_TITLE, version=API_VERSION, security_schemes=BEARER).model_dump_json(
                by_alias=True, exclude_none=True
            )
        )
        for component, definition in schema.get("components", {}).get("schemas", {}).items():
            if component in seen and seen[component] != definition:
                raise ValueError(f"OpenAPI component {component!r} differs between services ({name})")
            seen[component] = definition
        merge.add_schema(schema)
    return merge.get_openapi_schema()


@cache
def _openapi_text() -> str:
    return json.dumps(build_openapi(), separators=(",", ":"))


handler = service.handler
