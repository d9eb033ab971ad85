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
An :class:`Outage` makes a whole service misbehave for a while (S3 down, PutEvents partially
failing); ``partial`` is EventBridge's per-entry failure (HTTP 200, ``FailedEntryCount`` > 0):
only the other entries reach the bus.
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
    "Chaos",
    "Fault",
    "FaultInjector",
    "Outage",
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

KINDS = ("throttle", "server-error", "timeout", "lost-response", "crash-after", "partial")


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
    body: Any = field(default=None, compare=False, repr=False)  # the serialized request (JSON APIs)

    def request(self) -> dict[str, Any]:
        raw = self.body.decode() if isinstance(self.body, bytes) else self.body
        return json.loads(raw) if raw else {}

    def __str__(self) -> str:
        return f"#{self.index} {self.service}.{self.operation}"


@dataclass(frozen=True, slots=True)
class Fault:
    """``kind`` at logical call ``at``; ``persistent``: every attempt of that call, not the first only."""

    kind: str
    at: int
    persistent: bool = False
    code: str | None = None  # a specific throttling code (default: cycles through the service's)
    fail_every: int = 2  # "partial" (PutEvents): every n-th entry of the request fails

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")

    def __str__(self) -> str:
        return f"{self.kind}{'*' if self.persistent else ''}@{self.at}"


@dataclass
class Outage:
    """A service misbehaving for a while: ``kind`` on every call to it (``calls``: the next n only)."""

    service: str
    kind: str
    calls: int | None = None
    fail_every: int = 2
    operation: str | None = None  # only this API (e.g. TransactWriteItems)
    hit: int = 0

    def take(self, call: Call) -> bool:
        if call.service != self.service or (self.operation is not None and call.operation != self.operation):
            return False
        if self.calls is not None and self.hit >= self.calls:
            return False
        self.hit += 1
        return True


@dataclass
class Chaos:
    """Random faults: each call gets ``kind`` with probability ``rates[kind]`` (persistent for the
    kinds in ``persistent``), from a seeded ``rng`` so a failure can be replayed."""

    rng: Any
    rates: dict[str, float]
    persistent: frozenset[str] = frozenset({"throttle", "server-error", "timeout"})

    def draw(self, call: Call) -> Fault | None:
        roll = self.rng.random()
        for kind, rate in self.rates.items():
            if roll < rate:
                return Fault(kind, call.index, persistent=kind in self.persistent)
            roll -= rate
        return None


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
    outages: list[Outage] = field(default_factory=list)
    chaos: Chaos | None = None
    delivered: list[dict[str, Any]] = field(default_factory=list)  # PutEvents entries the bus accepted
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
    def armed(
        self, *faults: Fault, outages: tuple[Outage, ...] = (), chaos: Chaos | None = None
    ) -> Iterator[FaultInjector]:
        """Count calls (from 0) and inject ``faults`` (and ``outages``, and ``chaos``) meanwhile."""
        self.calls.clear()
        self.fired.clear()
        self.faults = {f.at: f for f in faults}
        self.outages = list(outages)
        self.chaos = chaos
        self.counting = True
        try:
            yield self
        finally:
            self.counting = False
            self.faults = {}
            self.outages = []
            self.chaos = None

    def trace(self) -> list[Call]:
        return list(self.calls)

    # -- hooks ---------------------------------------------------------------------------------
    def _before_call(self, model: Any, context: dict[str, Any], params: Any = None, **_: Any) -> None:
        if not self.counting:
            return
        body = params.get("body") if isinstance(params, dict) else None
        call = Call(len(self.calls), model.service_model.service_name, model.name, body)
        self.calls.append(call)
        fault = self.faults.get(call.index)
        if fault is None:
            for outage in self.outages:
                if outage.take(call):
                    fault = Fault(outage.kind, call.index, persistent=True, fail_every=outage.fail_every)
                    break
        if fault is None and self.chaos is not None:
            fault = self.chaos.draw(call)
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
            return self._observe(request, botocore_stubber(event_name=event_name, request=request, **kwargs))
        fault, call = planned
        attempt = request.context.get("retries", {}).get("attempt", 1)
        if attempt > 1 and not fault.persistent:
            return self._observe(request, botocore_stubber(event_name=event_name, request=request, **kwargs))
        self.fired.append(Fired(fault, call, attempt))
        if fault.kind == "partial":
            return self._partial_put_events(request, fault, event_name, **kwargs)
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

    def _observe(self, request: Any, response: AWSResponse | None) -> AWSResponse | None:
        """Remember the PutEvents entries the bus accepted (what consumers may receive)."""
        if response is None or response.status_code >= 300 or not request.headers.get("X-Amz-Target", b""):
            return response
        target = request.headers["X-Amz-Target"]
        target = target.decode() if isinstance(target, bytes) else target
        if target.endswith(".PutEvents"):
            entries = json.loads(request.body)["Entries"]
            results = json.loads(response.content)["Entries"]
            self.delivered.extend(e for e, r in zip(entries, results, strict=True) if not r.get("ErrorCode"))
        return response

    def _partial_put_events(self, request: Any, fault: Fault, event_name: str, **kwargs: Any) -> AWSResponse:
        """PutEvents where every ``fail_every``-th entry fails (HTTP 200, per-entry ErrorCode) and
        only the others reach the bus: what EventBridge does under per-entry throttling."""
        from botocore.awsrequest import AWSPreparedRequest
        from moto.core.botocore_stubber import MockRawResponse
        from moto.core.models import botocore_stubber

        if not request.url or call_operation(request) != "PutEvents":
            raise ValueError("a partial failure is a PutEvents thing")
        entries = json.loads(request.body)["Entries"]
        failing = {i for i in range(len(entries)) if i % fault.fail_every == fault.fail_every - 1}
        if len(entries) == 1:
            failing = {0}
        passing = [e for i, e in enumerate(entries) if i not in failing]
        accepted: list[dict[str, Any]] = []
        if passing:
            body = json.dumps({"Entries": passing}).encode()
            headers = dict(request.headers.items())
            headers["Content-Length"] = str(len(body))
            forwarded = AWSPreparedRequest(request.method, request.url, headers, body, request.stream_output)
            forwarded.context = request.context
            response = self._observe(forwarded, botocore_stubber(event_name=event_name, request=forwarded, **kwargs))
            assert response is not None and response.status_code == 200, response
            accepted = json.loads(response.content)["Entries"]
        results, it = [], iter(accepted)
        for i in range(len(entries)):
            if i in failing:
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded (injected)"})
            else:
                results.append(next(it))
        body = json.dumps({"FailedEntryCount": len(failing), "Entries": results})
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, MockRawResponse(body))

    def _throttle_code(self, service: str, wanted: str | None) -> tuple[str, int]:
        codes = THROTTLE_CODES.get(service, (("ThrottlingException", 400),))
        if wanted is not None:
            return next((c for c in codes if c[0] == wanted), (wanted, 400))
        self._throttle_turn += 1
        return codes[self._throttle_turn % len(codes)]


def call_operation(request: Any) -> str:
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else target
    return target.rsplit(".", 1)[-1]


_SERVICE_MODELS: dict[str, Any] = {}


def _service_model_of(service: str) -> Any:
    model = _SERVICE_MODELS.get(service)
    if model is None:
        import botocore.session

        model = _SERVICE_MODELS[service] = botocore.session.get_session().get_service_model(service)
    return model
