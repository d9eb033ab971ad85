"""Public Lambda: the routes anyone may call, and every request that matches no route.

``GET /health``, ``GET /openapi.json`` and API Gateway's ``$default`` route (problem+json 404 /
405 instead of the gateway's bare ``{"message"}``) run here, unauthenticated. So this function's
role has no data permission at all (tests/infrastructure checks it): an unauthenticated request
cannot reach a role that may read an order or a balance, whatever a bug in the code would allow.

``/openapi.json`` is one OpenAPI 3 document of every route: each HTTP Lambda's resolver
generates its own (Powertools, from the routes' pydantic models), and Powertools'
``OpenAPIMerge`` merges them — conflicting paths or component names fail loudly. Built on the
first request and kept for the life of the process (importing the other HTTP modules creates
no AWS client: their runtimes and clients are built on first use).
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from cairn.http import HttpService

__all__ = ["API_TITLE", "API_VERSION", "HTTP_MODULES", "build_openapi", "handler", "service"]

service = HttpService("public", authenticated=False)
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
    "cairn_platform.public",
)


class Health(BaseModel):
    status: str


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
