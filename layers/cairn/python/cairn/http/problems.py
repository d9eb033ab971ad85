"""RFC 9457 problem details: every error a Cairn API returns has this one shape.

``type`` is ``https://cairn.dev/problems/<code>`` (docs/decisions.md #5); the code is stable and
documented in docs/api.md, so clients switch on it rather than on ``detail`` text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://cairn.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code


class ProblemError(Exception):
    """Raise anywhere in a handler to answer with this problem (the service's handler renders it)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": problem_type(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


def problem_body(status: int, code: str, detail: str, *, title: str | None = None, **extra: Any) -> dict[str, Any]:
    return ProblemError(status, code, detail, title=title, **extra).body()


def problem_response(error: ProblemError, correlation_id: str | None = None) -> Response:
    """A Powertools Response; the body is serialized here (the resolver only serializes JSON)."""
    body = error.body()
    if correlation_id and "correlation_id" not in body:
        body["correlation_id"] = correlation_id
    return Response(
        status_code=error.status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body, separators=(",", ":"), default=str),
        headers=error.headers,
    )


def problem_event_response(error: ProblemError, correlation_id: str | None = None) -> dict[str, Any]:
    """The API Gateway v2 integration response of a problem, for answers given before routing."""
    response = problem_response(error, correlation_id)
    return {
        "statusCode": response.status_code,
        "headers": {str(k): str(v) for k, v in response.headers.items()},
        "body": response.body,
        "isBase64Encoded": False,
    }


# -- the problems every service shares ----------------------------------------------------------
def not_found(detail: str = "no such resource") -> ProblemError:
    return ProblemError(404, "not-found", detail)


def unauthorized(detail: str = "a valid bearer token is required") -> ProblemError:
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str = "this route is for staff only") -> ProblemError:
    return ProblemError(403, "forbidden", detail)


def validation_failed(errors: list[dict[str, Any]], detail: str = "the request is not valid") -> ProblemError:
    return ProblemError(422, "validation-failed", detail, title="Validation failed", errors=errors)


def service_unavailable(detail: str = "the service is busy; retry shortly", retry_after: int = 1) -> ProblemError:
    return ProblemError(503, "service-unavailable", detail, headers={"Retry-After": str(retry_after)})


def internal_error() -> ProblemError:
    # never any internals: the correlation id in the body is what support needs
    return ProblemError(500, "internal-error", "an unexpected error occurred")


__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_CONTENT_TYPE",
    "ProblemError",
    "forbidden",
    "internal_error",
    "not_found",
    "problem_body",
    "problem_event_response",
    "problem_response",
    "problem_type",
    "service_unavailable",
    "unauthorized",
    "validation_failed",
]
