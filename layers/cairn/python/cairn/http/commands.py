"""Run one command from an HTTP request through ``CommandRuntime`` and answer as API.md says.

- ``If-Match`` -> expected version (412 + ``current_version`` when the stream moved on);
- ``Idempotency-Key`` -> marker key scoped to user and route, fingerprint of route + path
  parameters + validated body; the stored answer is status, body and headers, so a repeat
  (also after a crash that happened after the append) answers exactly like the first time;
- domain errors -> problem+json with the error's own code and status (409 business rules);
- metrics: CommandLatency, ConflictsRetried, IdempotentReplays, CommandRejected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools.event_handler import Response

from cairn.commands import CommandContext, CommandRuntime, RetriesExhaustedError
from cairn.http import problems
from cairn.http.headers import etag, parse_if_match, request_fingerprint, scoped_idempotency_key
from cairn.http.problems import ProblemError
from cairn.http.service import HttpService
from cairn.store import ConcurrencyError, EventTooLargeError, IdempotencyKeyReuseError, TooManyEventsError


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """What the route knows about the request; ``route`` is the template, e.g. ``POST /orders/{id}/payment``."""

    route: str
    body: Any  # the validated body, JSON-ready
    params: Mapping[str, str] = field(default_factory=dict)
    if_match: str | None = None
    idempotency_key: str | None = None


def domain_problem(exc: BaseException) -> ProblemError | None:
    """A domain error (``code``/``status``/``title``/``detail``, as kernel.DomainError) as a problem."""
    status, code = getattr(exc, "status", None), getattr(exc, "code", None)
    if isinstance(status, int) and 400 <= status < 500 and isinstance(code, str):
        return ProblemError(status, code, str(getattr(exc, "detail", exc)), title=getattr(exc, "title", None))
    return None


def execute(
    service: HttpService,
    runtime: CommandRuntime,
    stream_id: str,
    command: Any,
    request: CommandRequest,
    *,
    answer: Callable[[Any, int], dict[str, Any]],
    status: int = 200,
    headers: Callable[[dict[str, Any]], dict[str, str]] | None = None,
    authorize: Callable[[Any], bool] | None = None,
) -> Response:
    """Decide and append ``command`` on ``stream_id``; the response body is ``answer(state, version)``.

    ``authorize(state)`` (for commands on existing streams) says whether the caller may act on
    the stream; a missing stream or a refusal is the same 404, so existence does not leak.
    """
    started = time.perf_counter()
    principal = service.principal
    try:
        expected = parse_if_match(request.if_match)
    except ValueError as exc:
        raise problems.validation_failed([{"loc": ["header", "if-match"], "msg": str(exc)}]) from None
    key = fingerprint = None
    if request.idempotency_key is not None:
        key = scoped_idempotency_key(principal.sub, request.route, request.idempotency_key)
        fingerprint = request_fingerprint(request.route, request.params, request.body)

    def stored(state: Any, version: int) -> dict[str, Any]:
        body = answer(state, version)
        return {"status": status, "body": body, "headers": headers(body) if headers else {}}

    try:
        if authorize is not None:
            # min_version=1: never trust a cached "does not exist" (another instance may have created it)
            _, state = runtime.current(stream_id, min_version=1)
            is_new = runtime.decider.is_new
            if (is_new(state) if is_new is not None else False) or not authorize(state):
                raise problems.not_found(f"{stream_id} not found")
        result = _handle(service, runtime, stream_id, command, principal, expected, key, fingerprint, stored)
    finally:
        service.latency("CommandLatency", (time.perf_counter() - started) * 1000)

    if key is not None and not result.replayed and not result.events:
        # The decider found nothing to do (e.g. the same payment again), so no append met the
        # marker: consult it here, or a reused key with another body would pass unnoticed.
        record = runtime.store.get_idempotency_record(key)
        if record is not None:
            if record.fingerprint != fingerprint:
                raise _key_reused()
            result = replace(result, replayed=True, answer=record.answer)
    if result.retries:
        service.count("ConflictsRetried", result.retries)
    stored_answer = result.answer if result.answer is not None else stored(result.state, result.version)
    body = dict(stored_answer["body"])
    response_headers = {str(k): str(v) for k, v in (stored_answer.get("headers") or {}).items()}
    response_headers["ETag"] = etag(int(body.get("version", result.version)))
    if result.replayed:
        service.count("IdempotentReplays")
        response_headers["Idempotent-Replayed"] = "true"
        service.logger.info("idempotent replay", extra={"stream_id": result.stream_id})
    return Response(
        status_code=int(stored_answer.get("status", status)),
        content_type="application/json",
        body=body,
        headers=response_headers,
    )


def _handle(
    service: HttpService,
    runtime: CommandRuntime,
    stream_id: str,
    command: Any,
    principal: Any,
    expected: int | None,
    key: str | None,
    fingerprint: str | None,
    stored: Callable[[Any, int], dict[str, Any]],
) -> Any:
    """``runtime.handle`` with the store's and the domain's errors as problems."""
    try:
        return runtime.handle(
            stream_id,
            command,
            context=CommandContext(correlation_id=service.correlation_id or None, actor=principal.sub),
            expected_version=expected,
            idempotency_key=key,
            fingerprint=fingerprint or "",
            answer=stored,
        )
    except RetriesExhaustedError:
        service.count("ConflictsRetried", runtime.max_retries)
        raise problems.service_unavailable("the stream is too busy right now; retry shortly") from None
    except ConcurrencyError as exc:
        raise ProblemError(
            412,
            "version-mismatch",
            f"{stream_id} is at version {exc.current_version}, not {exc.expected_version}",
            headers={"ETag": etag(exc.current_version)},
            current_version=exc.current_version,
        ) from None
    except IdempotencyKeyReuseError:
        raise _key_reused() from None
    except (EventTooLargeError, TooManyEventsError) as exc:
        raise ProblemError(413, "payload-too-large", str(exc)) from None
    except Exception as exc:
        problem = domain_problem(exc)
        if problem is None:
            raise
        if problem.status == 409:
            service.count("CommandRejected")
        service.logger.info("command rejected", extra={"reason": problem.code, "stream_id": stream_id})
        raise problem from None


def _key_reused() -> ProblemError:
    return ProblemError(
        422,
        "idempotency-key-reused",
        "this Idempotency-Key was already used with a different request",
        title="Idempotency key reused",
    )


__all__ = ["CommandRequest", "domain_problem", "execute"]
