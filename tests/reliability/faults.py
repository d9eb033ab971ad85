"""Fault injection at the botocore level: the real adapters run, the wire misbehaves.

Every client the code under test builds (``cairn.aws.client``) gets three hooks:

- ``before-call``: counts *logical* calls (one per API call, whatever botocore's retries do) while
  the injector is armed, so a fault can be aimed at "the i-th AWS call of this path";
- the wire (in place of moto's ``before-send`` stubber on that client): per HTTP *attempt*, either
  an AWS-shaped error response (throttling 400/503, 500), a read timeout before the service saw
  the request, or a *lost response* (moto processes the request, then the caller times out);
- ``after-call``: :class:`SimulatedCrash` once the call returned — the Lambda dies between this
  step and the next (nothing after it runs; ``BaseException`` so no ``except Exception`` in the
  code under test can swallow it).

Transient faults hit only the first attempt (botocore's standard retries must absorb them);
``persistent`` faults hit every attempt of that call, so the caller sees the error after the SDK
gave up — what the HTTP layer must turn into 503 + Retry-After and the consumers into a retry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

__all__ = [
    "KINDS",
    "Call",
    "Fault",
    "FaultInjector",
    "SimulatedCrash",
    "error_response",
]

# Throttling codes each service really returns (botocore's standard mode retries all of them).
THROTTLE_CODES: dict[str, tuple[tuple[str, int], ...]] = {
    "dynamodb": (
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
    ),
    "s3": (("SlowDown", 503),),
    "events": (("ThrottlingException", 400),),
    "sqs": (("ThrottlingException", 400),),
}
SERVER_ERROR_CODES = {"dynamodb": "InternalServerError", "s3": "InternalError", "events": "InternalException"}

KINDS = ("throttle", "server-error", "timeout", "lost-response", "crash-after")


class SimulatedCrash(BaseException):
    """The process died right after an AWS call returned (timeout, OOM, SIGKILL)."""

    def __init__(self, call: Call):
        super().__init__(f"crashed after call {call.index}: {call.service}.{call.operation}")
        self.call = call


@dataclass(frozen=True, slots=True)
class Call:
    index: int
    service: str
    operation: str

    def __str__(self) -> str:
        return f"#{self.index} {self.service}.{self.operation}"


@dataclass(frozen=True, slots=True)
class Fault:
    """``kind`` at logical call ``at``; ``persistent``: every attempt of that call, not the first only."""

    kind: str
    at: int
    persistent: bool = False
    code: str | None = None  # a specific throttling code (default: cycles through the service's)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")

    def __str__(self) -> str:
        return f"{self.kind}{'*' if self.persistent else ''}@{self.at}"


@dataclass(slots=True)
class Fired:
    fault: Fault
    call: Call
    attempt: int


def error_response(service_model: Any, url: str, code: str, status: int, message: str = "injected") -> AWSResponse:
    """An error response in the service's own wire protocol, as the service would send it."""
    from moto.core.botocore_stubber import MockRawResponse

    protocol = service_model.protocol
    headers: dict[str, str] = {"x-amzn-RequestId": "injected-fault"}
    if protocol in ("json", "rest-json"):
        prefix = service_model.metadata.get("targetPrefix", "")
        type_name = f"com.amazonaws.{service_model.endpoint_prefix}.{prefix}#{code}" if prefix else code
        body = json.dumps({"__type": type_name, "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.0"
        if service_model.metadata.get("awsQueryCompatible") is not None:
            headers["x-amzn-query-error"] = f"{code};Sender"
    elif protocol == "rest-xml":
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
        headers["Content-Type"] = "application/xml"
    else:  # query / ec2
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>injected-fault</RequestId></ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
    return AWSResponse(url, status, headers, MockRawResponse(body))


@dataclass
class FaultInjector:
    """Attach to clients, then ``with injector.armed(*faults):`` around the code under test."""

    calls: list[Call] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    faults: dict[int, Fault] = field(default_factory=dict)
    counting: bool = False
    _throttle_turn: int = 0

    # -- wiring --------------------------------------------------------------------------------
    def attach(self, client: Any) -> Any:
        """Hook ``client`` (idempotent); moto's stubber is called from the wire, not directly."""
        from moto.core.models import botocore_stubber

        events = client.meta.events
        if getattr(client, "_cairn_faults", None) is self:
            return client
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self._wire, unique_id=f"cairn-faults-wire-{id(self)}")
        events.register("before-call", self._before_call, unique_id=f"cairn-faults-count-{id(self)}")
        events.register("after-call", self._after_call, unique_id=f"cairn-faults-crash-{id(self)}")
        client._cairn_faults = self
        return client

    @contextmanager
    def armed(self, *faults: Fault) -> Iterator[FaultInjector]:
        """Count calls (from 0) and inject ``faults`` meanwhile."""
        self.calls.clear()
        self.fired.clear()
        self.faults = {f.at: f for f in faults}
        self.counting = True
        try:
            yield self
        finally:
            self.counting = False
            self.faults = {}

    def trace(self) -> list[Call]:
        return list(self.calls)

    # -- hooks ---------------------------------------------------------------------------------
    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self.counting:
            return
        call = Call(len(self.calls), model.service_model.service_name, model.name)
        self.calls.append(call)
        fault = self.faults.get(call.index)
        if fault is not None:
            context["cairn_fault"] = (fault, call)

    def _after_call(self, context: dict[str, Any], **_: Any) -> None:
        planned = context.get("cairn_fault")
        if planned is None:
            return
        fault, call = planned
        if fault.kind == "crash-after":
            self.fired.append(Fired(fault, call, context.get("retries", {}).get("attempt", 1)))
            raise SimulatedCrash(call)

    def _wire(self, request: Any, event_name: str = "", **kwargs: Any) -> AWSResponse | None:
        from moto.core.models import botocore_stubber

        planned = (request.context or {}).get("cairn_fault")
        if planned is None or planned[0].kind == "crash-after":
            return botocore_stubber(event_name=event_name, request=request, **kwargs)
        fault, call = planned
        attempt = request.context.get("retries", {}).get("attempt", 1)
        if attempt > 1 and not fault.persistent:
            return botocore_stubber(event_name=event_name, request=request, **kwargs)
        self.fired.append(Fired(fault, call, attempt))
        if fault.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if fault.kind == "lost-response":
            botocore_stubber(event_name=event_name, request=request, **kwargs)  # it happened ...
            raise ReadTimeoutError(endpoint_url=request.url)  # ... but the caller never hears of it
        service_model = _service_model_of(call.service)
        if fault.kind == "throttle":
            code, status = self._throttle_code(call.service, fault.code)
        else:
            code, status = SERVER_ERROR_CODES.get(call.service, "InternalError"), 500
        return error_response(service_model, request.url, code, status)

    def _throttle_code(self, service: str, wanted: str | None) -> tuple[str, int]:
        codes = THROTTLE_CODES.get(service, (("ThrottlingException", 400),))
        if wanted is not None:
            return next((c for c in codes if c[0] == wanted), (wanted, 400))
        self._throttle_turn += 1
        return codes[self._throttle_turn % len(codes)]


_SERVICE_MODELS: dict[str, Any] = {}


def _service_model_of(service: str) -> Any:
    model = _SERVICE_MODELS.get(service)
    if model is None:
        import botocore.session

        model = _SERVICE_MODELS[service] = botocore.session.get_session().get_service_model(service)
    return model
