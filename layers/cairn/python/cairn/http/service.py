"""One HTTP Lambda: a Powertools resolver plus what every Cairn API does around it.

Before routing (transport concerns the resolver's validation would otherwise pre-empt): the
correlation id, the 64 KiB body limit (413), JSON-only bodies (415) and authentication (401).
Around routing: problem+json for every error (400 malformed JSON, 422 validation, 404/405,
503 throttling, 500 without internals), staff-only routes (403, checked before validation
errors are reported), the correlation id echoed, an access log line and EMF metrics flushed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)

from cairn.deadline import deadline_of
from cairn.http import problems
from cairn.http.auth import Principal, principal_of
from cairn.http.headers import correlation_id as correlation_id_of
from cairn.http.problems import ProblemError
from cairn.logs import structured
from cairn.retry import is_transient

MAX_BODY_BYTES = 64 * 1024

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "correlation_id": {"type": "string"},
        "current_version": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {}}, "msg": {"type": "string"}},
            },
        },
    },
}


# API Gateway's own answers (the authorizer's 401/403, no route, throttling): no function ran
GATEWAY_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}


def _loads(text: str | bytes | bytearray) -> Any:
    """json.loads that reports every undecodable body as a JSON error (-> 400, never 500).

    Python raises plain ValueError for >4300-digit integers and RecursionError for very deep
    nesting; both fit in 64 KiB.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError(f"undecodable JSON ({type(exc).__name__})", doc, 0) from None


def transient_failure(exc: BaseException) -> bool:
    """An AWS throttle, a lost connection or an exhausted retry budget: 503 + Retry-After
    (``cairn.retry.is_transient``, the same rule the projection engine retries by)."""
    return is_transient(exc)


class HttpService:
    """A resolver with Cairn's conventions. ``authenticated``: every route needs a caller."""

    def __init__(self, name: str, *, authenticated: bool = True, max_body_bytes: int = MAX_BODY_BYTES):
        self.name = name
        self.service = os.environ.get("POWERTOOLS_SERVICE_NAME") or name
        self.authenticated = authenticated
        self.max_body_bytes = max_body_bytes
        self.logger = structured(Logger(service=self.service))  # library loggers too (cairn.logs)
        self.metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Cairn", service=self.service)
        self.app = APIGatewayHttpResolver(
            enable_validation=True,
            response_validation_error_http_code=500,
            json_body_deserializer=_loads,
        )
        self.staff_routes: set[tuple[str, str]] = set()
        self.rules: list[tuple[str, re.Pattern[str]]] = []  # (method, path regex) of every route, for 405
        self._cold = True
        self._install_error_handlers()

    # -- routes ---------------------------------------------------------------------------------
    def route(
        self, method: str, rule: str, *, staff: bool = False, problems: Mapping[int, str] | None = None, **kwargs: Any
    ) -> Callable:
        """``app.route`` plus ``staff=True`` (403 for anyone outside the staff group) and
        ``problems={status: description}`` documented as problem+json responses in OpenAPI."""
        # Powertools documents the success response only when no ``responses`` are given; with
        # ours, an entry without content gets the route's return model as its schema.
        success = {kwargs.get("status_code", 200): {"description": kwargs.get("response_description", "Success")}}
        common = self._common_responses(staff, method.upper())
        responses: dict[int, Any] = {**success, **common, **kwargs.pop("responses", {})}
        for status, description in (problems or {}).items():
            responses[status] = _unauthorized_response(description) if status == 401 else _problem_response(description)
        self.rules.append((method.upper(), _rule_regex(rule)))
        if staff:
            self.staff_routes.add((method.upper(), rule))
            kwargs["middlewares"] = [self._staff_only, *kwargs.get("middlewares", [])]
        if self.authenticated:
            kwargs.setdefault("security", [{"bearerAuth": []}])
        return self.app.route(rule, method.upper(), responses=responses, **kwargs)

    def get(self, rule: str, **kwargs: Any) -> Callable:
        return self.route("GET", rule, **kwargs)

    def post(self, rule: str, **kwargs: Any) -> Callable:
        return self.route("POST", rule, **kwargs)

    def _common_responses(self, staff: bool, method: str = "GET") -> dict[int, Any]:
        """What any route may answer besides its own problems (found by ``make fuzz``: each of
        these happens, so the document must say so)."""
        problem = _problem_response
        responses = {422: problem("Validation failed"), 404: problem("Not found")}
        if method in ("POST", "PUT", "PATCH"):
            responses[400] = problem("The body is not valid JSON")
            responses[413] = problem("The body is larger than 64 KiB")
            responses[415] = problem("The body is not application/json")
        if self.authenticated:
            responses[401] = _unauthorized_response("Missing or invalid token")
        if staff:
            responses[403] = problem("Staff only")
        responses[503] = {
            **problem("Throttled or unavailable for a moment: retry after Retry-After seconds"),
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}},
        }
        return responses

    # -- request context --------------------------------------------------------------------------
    @property
    def principal(self) -> Principal:
        principal = self.app.context.get("principal")
        if principal is None:
            raise problems.unauthorized()
        return principal

    @property
    def correlation_id(self) -> str:
        return self.app.context.get("correlation_id") or ""

    def require_staff(self) -> Principal:
        principal = self.principal
        if not principal.is_staff:
            raise problems.forbidden()
        return principal

    def _staff_only(self, app: APIGatewayHttpResolver, next_middleware: Callable) -> Response:
        self.require_staff()
        return next_middleware(app)

    # -- the Lambda entry point ---------------------------------------------------------------------
    def handler(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        # every AWS call below is budgeted to finish before Lambda would kill the invocation
        with deadline_of(context):
            return self._handle(event, context)

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        raw_headers = event.get("headers") or {}
        headers = {str(k).lower(): v for k, v in raw_headers.items()}
        cid = correlation_id_of(headers)
        http = (event.get("requestContext") or {}).get("http") or {}
        method, path = http.get("method", "?"), event.get("rawPath") or http.get("path", "?")
        self.logger.set_correlation_id(cid)
        self.logger.append_keys(
            cold_start=self._cold,
            request_id=getattr(context, "aws_request_id", None),
            route=f"{method} {path}",
        )
        self._cold = False
        principal = principal_of(event)
        try:
            early = self._precheck(event, headers, method, principal)
            if isinstance(early, ProblemError):
                response = problems.problem_event_response(early, cid)
            else:
                if early is not None:
                    event = early
                self.app.append_context(principal=principal, correlation_id=cid)
                response = self.app.resolve(event, context)
        except Exception:  # the resolver handles everything; this is the last line of defence
            self.logger.exception("unhandled error")
            response = problems.problem_event_response(problems.internal_error(), cid)
        finally:
            self._flush_metrics()
        response.setdefault("headers", {})["X-Correlation-Id"] = cid
        self.logger.info(
            "request",
            extra={
                "status": response.get("statusCode"),
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "user": principal.sub if principal else None,
            },
        )
        self.logger.remove_keys(["route", "request_id", "cold_start"])
        return response

    def _precheck(
        self, event: dict[str, Any], headers: Mapping[str, Any], method: str, principal: Principal | None
    ) -> ProblemError | dict[str, Any] | None:
        """A problem to answer at once, a rewritten event, or None to route as is."""
        original = event
        body = event.get("body")
        if body:
            size = len(body.encode()) if isinstance(body, str) else len(body)
            if event.get("isBase64Encoded"):
                size = size * 3 // 4
            if size > self.max_body_bytes:
                return ProblemError(
                    413, "payload-too-large", f"the body has {size} bytes; at most {self.max_body_bytes} are accepted"
                )
            content_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
            if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
                return ProblemError(415, "unsupported-media-type", f"bodies are application/json, not {content_type}")
            if event.get("isBase64Encoded"):
                try:
                    decoded = base64.b64decode(body, validate=True).decode()
                except (binascii.Error, ValueError, UnicodeDecodeError):
                    return ProblemError(400, "malformed-json", "the body is not valid base64-encoded UTF-8 JSON")
                event = {**event, "body": decoded, "isBase64Encoded": False}
        if self.authenticated and principal is None:
            return problems.unauthorized()
        if method == "POST" and not event.get("body"):
            return {**event, "body": "{}", "isBase64Encoded": False}  # a bodiless command is ``{}``
        return event if event is not original else None

    def _flush_metrics(self) -> None:
        if self.metrics.metric_set:
            self.metrics.flush_metrics()

    # -- errors -------------------------------------------------------------------------------
    def problem(self, error: ProblemError) -> Response:
        return problems.problem_response(error, self.correlation_id)

    def _install_error_handlers(self) -> None:
        app = self.app

        @app.exception_handler(ProblemError)
        def _problem(exc: ProblemError) -> Response:
            return self.problem(exc)

        @app.exception_handler(RequestValidationError)
        def _invalid(exc: RequestValidationError) -> Response:
            errors = exc.errors()
            if any(e.get("type") == "json_invalid" for e in errors):
                return self.problem(ProblemError(400, "malformed-json", "the body is not valid JSON"))
            route = app.context.get("_route")
            if route is not None and (route.method, route.path) in self.staff_routes:
                principal = app.context.get("principal")
                if principal is None or not principal.is_staff:
                    return self.problem(problems.forbidden())  # 403 before details of the body
            return self.problem(problems.validation_failed(_public_errors(errors)))

        @app.exception_handler(RequestUnsupportedContentType)
        def _unsupported(exc: RequestUnsupportedContentType) -> Response:
            return self.problem(ProblemError(415, "unsupported-media-type", "bodies are application/json"))

        @app.exception_handler(ResponseValidationError)
        def _bad_response(exc: ResponseValidationError) -> Response:
            self.logger.error("response failed its own schema", extra={"errors": _public_errors(exc.errors())})
            return self.problem(problems.internal_error())

        @app.not_found
        def _not_found(exc: RouteNotFoundError) -> Response:
            method = app.current_event.http_method.upper()
            path = app.current_event.path
            allowed = sorted({m for m, regex in self.rules if regex.fullmatch(path)})
            if allowed:
                return self.problem(
                    ProblemError(
                        405,
                        "method-not-allowed",
                        f"{method} is not allowed on {path}",
                        headers={"Allow": ", ".join(allowed)},
                    )
                )
            return self.problem(problems.not_found(f"no route for {method} {path}"))

        @app.exception_handler(Exception)
        def _unexpected(exc: Exception) -> Response:
            from pydantic import ValidationError

            if isinstance(exc, ValidationError):  # a command built from valid-looking input said no
                errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
                return self.problem(problems.validation_failed(errors))
            from cairn.archive.base import ArchiveError

            if isinstance(exc, ArchiveError):  # an archived range unreadable: never a shorter history
                self.logger.error("archived range unavailable", extra={"error": type(exc).__name__, "reason": str(exc)})
                return self.problem(problems.service_unavailable(str(exc), retry_after=30))
            if transient_failure(exc):
                self.logger.warning("transient failure", extra={"error": type(exc).__name__, "reason": str(exc)})
                return self.problem(problems.service_unavailable())
            self.logger.exception("unexpected error")
            return self.problem(problems.internal_error())

    # -- metrics ------------------------------------------------------------------------------
    def count(self, name: str, value: float = 1) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def latency(self, name: str, milliseconds: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)

    # -- OpenAPI ------------------------------------------------------------------------------
    def openapi(self, title: str | None = None) -> dict[str, Any]:
        """This service's OpenAPI 3 document (Powertools' own generation)."""
        schema = self.app.get_openapi_schema(
            title=title or f"Cairn {self.name}",
            version="1.0.0",
            security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        )
        return json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))


# Powertools' own character class for a ``<name>`` path segment (its route syntax, documented);
# the rules are kept here rather than read from the resolver's private route tables.
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"


def _rule_regex(rule: str) -> re.Pattern[str]:
    """``/orders/<id>/payment`` -> a regex matching the paths the resolver routes to that rule."""
    parts = re.split(r"(<\w+>)", rule)
    return re.compile("".join(_SEGMENT if re.fullmatch(r"<\w+>", p) else re.escape(p) for p in parts))


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {problems.PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_SCHEMA}}}


def _unauthorized_response(description: str) -> dict[str, Any]:
    """401: the JWT authorizer answers before any function runs, in API Gateway's own shape;
    a function that finds no caller answers problem+json."""
    return {
        "description": description,
        "content": {
            problems.PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_SCHEMA},
            "application/json": {"schema": GATEWAY_MESSAGE_SCHEMA},
        },
    }


def _public_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{loc, msg}]`` without the offending input (it may be large or sensitive)."""
    return [{"loc": [p for p in e.get("loc", ())], "msg": str(e.get("msg") or e.get("type") or "invalid")} for e in errors]


__all__ = ["MAX_BODY_BYTES", "PROBLEM_SCHEMA", "HttpService", "transient_failure"]
