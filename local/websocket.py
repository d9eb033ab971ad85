"""The template's API Gateway WebSocket API, served locally (``websockets``) — and its management API.

What API Gateway does, done here from the synthesized template: the ``$connect`` route's Lambda
REQUEST authorizer (identity source checked first: a missing ``?token`` is a 401 without calling
it; ``Unauthorized`` -> 401, a Deny policy -> 403), then the ``$connect`` function (a non-2xx answer
refuses the handshake); each message goes to the route the route-selection expression picks
(``$default`` when none matches), and a two-way route's answer is sent back; closing runs
``$disconnect``. Connections close after the idle timeout (10 min) and the lifetime (2 h).

The management API (``POST/GET/DELETE /{stage}/@connections/{id}``, 410 ``GoneException`` for a
connection that is not open) is answered on the HTTP front: the template's callback URL (the
pushers' ``WS_MANAGEMENT_ENDPOINT``) resolves to it, so functions use the deployed code path.
The functions the template points at Cognito's JWKS get the local issuer's JWKS URL instead.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.apigw import HttpRequest, HttpResponse
from local.lambdas import FunctionError, FunctionSpec, LambdaService, ThrottledError
from local.template import ACCOUNT_ID, REGION, Template, TemplateError

__all__ = ["WebSocketApi", "localize_jwks"]

log = logging.getLogger("cairn.local.websocket")

IDLE_TIMEOUT = 600.0  # API Gateway: 10 minutes without a message either way
MAX_LIFETIME = 7200.0  # API Gateway: 2 hours per connection
MAX_FRAME = 128 * 1024  # API Gateway's message size limit (frames of 32 KB make up at most 128 KB)
_JWKS = re.compile(r"^https://cognito-idp\.[\w-]+\.amazonaws\.com/[\w-]+/\.well-known/jwks\.json$")
_MANAGEMENT = re.compile(r"^/(?P<stage>[^/]+)/@connections/(?P<id>[^/]+)$")


def localize_jwks(specs: Sequence[FunctionSpec], base_url: str) -> None:
    """Point env vars that name a Cognito pool's JWKS at the local issuer's (same code path)."""
    for spec in specs:
        for name, value in spec.environment.items():
            if _JWKS.match(value):
                spec.environment[name] = f"{base_url}/_local/jwks.json"


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class _Connection:
    connection_id: str
    socket: Any
    source_ip: str
    user_agent: str
    connected_at: float
    authorizer: dict[str, Any]
    last_active: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Route:
    key: str
    function: str
    two_way: bool


class WebSocketApi:
    """One ``AWS::ApiGatewayV2::Api`` with protocol WEBSOCKET, served on ``host:port``."""

    def __init__(self, api_id: str, stage: str, routes: Mapping[str, _Route], authorizer: str | None,
                 identity_sources: Sequence[str], selection: str, lambdas: LambdaService, *,
                 idle_timeout: float = IDLE_TIMEOUT, max_lifetime: float = MAX_LIFETIME):
        self.api_id = api_id
        self.stage = stage
        self.routes = dict(routes)
        self.authorizer = authorizer
        self.identity_sources = tuple(identity_sources)
        self.selection = selection
        self.lambdas = lambdas
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self.connections: dict[str, _Connection] = {}
        self.stats = {"connects": 0, "refused": 0, "messages": 0, "posts": 0, "gone": 0}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # -- building from the template ----------------------------------------------------------

    @classmethod
    def from_template(cls, template: Template, lambdas: LambdaService, **kwargs: Any) -> WebSocketApi | None:
        apis = [a for a in template.of_type("AWS::ApiGatewayV2::Api")
                if template.resolve(a.properties.get("ProtocolType", "HTTP")) == "WEBSOCKET"]
        if not apis:
            return None
        if len(apis) > 1:
            log.warning("several WebSocket APIs in the template; serving %s", apis[0].logical_id)
        api = apis[0]
        api_id = str(api.ref)
        integrations = {}
        for res in template.of_type("AWS::ApiGatewayV2::Integration"):
            p = template.resolve(res.properties)
            if p.get("ApiId") != api_id:
                continue
            if p.get("IntegrationType") != "AWS_PROXY":
                raise TemplateError(f"{res.logical_id}: only Lambda proxy integrations are emulated")
            integrations[str(res.ref)] = _function_arn(str(p["IntegrationUri"]))
        two_way = {str(template.resolve(r.properties.get("RouteId")))
                   for r in template.of_type("AWS::ApiGatewayV2::RouteResponse")
                   if template.resolve(r.properties.get("ApiId")) == api_id}
        authorizers: dict[str, tuple[str, list[str]]] = {}
        for res in template.of_type("AWS::ApiGatewayV2::Authorizer"):
            p = template.resolve(res.properties)
            if p.get("ApiId") != api_id:
                continue
            if p.get("AuthorizerType") != "REQUEST":
                raise TemplateError(f"authorizer {res.logical_id}: only REQUEST (Lambda) authorizers are emulated")
            authorizers[str(res.ref)] = (_function_arn(str(p["AuthorizerUri"])), list(p.get("IdentitySource") or []))
        routes: dict[str, _Route] = {}
        authorizer, sources = None, []
        for res in template.of_type("AWS::ApiGatewayV2::Route"):
            p = template.resolve(res.properties)
            if p.get("ApiId") != api_id:
                continue
            key = str(p["RouteKey"])
            target = integrations.get(str(p.get("Target", "")).removeprefix("integrations/"))
            if target is None:
                log.warning("WebSocket route %s has no integration this runtime knows; skipped", key)
                continue
            lambdas.get(target)  # fail early on a route to an unknown function
            routes[key] = _Route(key, target, str(res.ref) in two_way)
            if p.get("AuthorizationType") == "CUSTOM":
                if key != "$connect":
                    raise TemplateError(f"route {key}: API Gateway authorizes WebSocket APIs on $connect only")
                authorizer, sources = authorizers[str(p["AuthorizerId"])]
            elif p.get("AuthorizationType") not in (None, "NONE"):
                raise TemplateError(f"route {key}: authorization {p.get('AuthorizationType')} is not emulated")
        stages = [template.resolve(s.properties) for s in template.of_type("AWS::ApiGatewayV2::Stage")]
        stage = next((str(s["StageName"]) for s in stages if s.get("ApiId") == api_id), "$default")
        selection = str(template.resolve(api.properties.get("RouteSelectionExpression")) or "$request.body.action")
        env = os.environ
        kwargs.setdefault("idle_timeout", float(env.get("CAIRN_WS_IDLE_TIMEOUT", IDLE_TIMEOUT)))
        kwargs.setdefault("max_lifetime", float(env.get("CAIRN_WS_MAX_LIFETIME", MAX_LIFETIME)))
        return cls(api_id, stage, routes, authorizer, sources, selection, lambdas, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/{self.stage}"

    def start(self, host: str, port: int) -> WebSocketApi:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(host, port, started))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                started.set()

        self._thread = threading.Thread(target=run, name="websocket", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _serve(self, host: str, port: int, started: threading.Event) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        quiet = logging.getLogger("cairn.local.websocket.server")
        quiet.setLevel(logging.WARNING)
        async with serve(self._session, host, port, process_request=self._handshake, logger=quiet,
                         max_size=MAX_FRAME, ping_interval=None, server_header="CairnLocal",
                         open_timeout=35) as server:  # authorizer + $connect: up to 29 s each on AWS
            sock = next(iter(server.sockets))
            self.host, self.port = sock.getsockname()[:2]
            started.set()
            reaper = asyncio.create_task(self._reap())
            await self._stop.wait()
            reaper.cancel()

    async def _reap(self) -> None:
        """API Gateway's limits: close idle connections and those past their lifetime."""
        while True:
            await asyncio.sleep(min(5.0, self.idle_timeout / 2, self.max_lifetime / 2))
            now = time.time()
            for conn in list(self.connections.values()):
                if now - conn.last_active > self.idle_timeout or now - conn.connected_at > self.max_lifetime:
                    await conn.socket.close(1001, "Going away")

    # -- the handshake ($connect) ------------------------------------------------------------

    def _base_context(self, conn_id: str, route: str, event_type: str, source_ip: str, user_agent: str,
                      connected_at: float) -> dict[str, Any]:
        now = time.time()
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": int(connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "requestId": uuid.uuid4().hex[:16],
            "domainName": f"{self.host}:{self.port}",
            "connectionId": conn_id,
            "apiId": self.api_id,
        }

    async def _handshake(self, connection: Any, request: Any) -> Any:
        path = urlsplit(request.path)
        if path.path.rstrip("/") != f"/{self.stage}":
            return connection.respond(404, "Not Found\n")
        query: dict[str, str] = {}
        for k, v in parse_qsl(path.query, keep_blank_values=True):
            query[k] = v
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        source_ip = connection.remote_address[0] if connection.remote_address else "127.0.0.1"
        user_agent = headers.get("user-agent", "")
        conn_id = base64.b64encode(uuid.uuid4().bytes[:9]).decode().replace("/", "_").replace("+", "-")
        connected_at = time.time()
        context = self._base_context(conn_id, "$connect", "CONNECT", source_ip, user_agent, connected_at)
        event = {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "isBase64Encoded": False,
            "requestContext": context,
        }
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        authorizer_ctx: dict[str, Any] = {}
        if self.authorizer is not None:
            for source in self.identity_sources:
                kind, _, name = source.removeprefix("route.request.").partition(".")
                present = query.get(name) if kind == "querystring" else headers.get(name.lower())
                if not present:
                    self.stats["refused"] += 1
                    return connection.respond(401, "Unauthorized\n")
            auth_event = {
                "type": "REQUEST",
                "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/$connect",
                **{k: v for k, v in event.items() if k != "isBase64Encoded"},
                "stageVariables": {},
            }
            started = time.time()
            try:
                result = await asyncio.to_thread(self.lambdas.invoke, self.authorizer, auth_event, chaos=False)
            except FunctionError as exc:
                self.stats["refused"] += 1
                if exc.error.get("errorMessage") == "Unauthorized":
                    return connection.respond(401, "Unauthorized\n")
                log.error("WebSocket authorizer failed: %s", exc)
                return connection.respond(500, "Internal Server Error\n")
            except ThrottledError:
                return connection.respond(429, "Too Many Requests\n")
            refusal = _policy_refusal(result.payload)
            if refusal:
                self.stats["refused"] += 1
                return connection.respond(*refusal)
            payload = result.payload
            authorizer_ctx = {**(payload.get("context") or {}), "principalId": payload.get("principalId"),
                              "integrationLatency": int((time.time() - started) * 1000)}
            context["authorizer"] = authorizer_ctx
        route = self.routes.get("$connect")
        if route is not None:
            status, _ = await self._invoke(route, event)
            if not 200 <= status < 300:
                self.stats["refused"] += 1
                return connection.respond(status if status >= 400 else 500, "Forbidden\n" if status == 403 else "Refused\n")
        connection.cairn = _Connection(conn_id, connection, source_ip, user_agent, connected_at, authorizer_ctx)
        return None

    async def _invoke(self, route: _Route, event: dict[str, Any]) -> tuple[int, Any]:
        """(status, body) of a route's function, as API Gateway maps a Lambda proxy answer."""
        try:
            result = await asyncio.to_thread(self.lambdas.invoke, route.function, event, chaos=False)
        except (FunctionError, ThrottledError) as exc:
            log.error("WebSocket route %s failed: %s", route.key, exc)
            return 500, None
        payload = result.payload
        if isinstance(payload, dict) and "statusCode" in payload:
            return int(payload["statusCode"]), payload.get("body")
        return 200, payload if isinstance(payload, str) or payload is None else json.dumps(payload)

    # -- an open connection ---------------------------------------------------------------------

    async def _session(self, socket: Any) -> None:
        conn: _Connection = socket.cairn
        with self._lock:
            self.connections[conn.connection_id] = conn
        self.stats["connects"] += 1
        code, reason = 1000, ""
        try:
            async for frame in socket:
                conn.last_active = time.time()
                self.stats["messages"] += 1
                await self._message(conn, frame)
        except Exception as exc:  # noqa: BLE001 - any end of a connection runs $disconnect
            log.debug("connection %s ended: %s", conn.connection_id, exc)
        finally:
            with self._lock:
                self.connections.pop(conn.connection_id, None)
            if socket.close_code is not None:
                code, reason = socket.close_code, socket.close_reason or ""
            route = self.routes.get("$disconnect")
            if route is not None:
                context = self._base_context(conn.connection_id, "$disconnect", "DISCONNECT", conn.source_ip,
                                             conn.user_agent, conn.connected_at)
                context.update(disconnectStatusCode=code, disconnectReason=reason, authorizer=conn.authorizer)
                await self._invoke(route, {"headers": {}, "isBase64Encoded": False, "requestContext": context})

    def _select(self, body: str | None) -> _Route | None:
        expression = self.selection
        if expression.startswith("$request.body.") and body is not None:
            try:
                value: Any = json.loads(body)
                for part in expression.removeprefix("$request.body.").split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, str) and value in self.routes and not value.startswith("$"):
                    return self.routes[value]
            except ValueError:
                pass
        return self.routes.get("$default")

    async def _message(self, conn: _Connection, frame: str | bytes) -> None:
        binary = isinstance(frame, bytes)
        body = base64.b64encode(frame).decode() if binary else frame
        route = self._select(None if binary else frame)
        if route is None:
            await conn.socket.send(json.dumps({"message": "Forbidden", "connectionId": conn.connection_id}))
            return
        context = self._base_context(conn.connection_id, route.key, "MESSAGE", conn.source_ip, conn.user_agent,
                                     conn.connected_at)
        context.update(messageId=uuid.uuid4().hex[:16], authorizer=conn.authorizer)
        status, answer = await self._invoke(route, {"body": body, "isBase64Encoded": binary,
                                                    "requestContext": context})
        if status >= 500:
            await conn.socket.send(json.dumps({"message": "Internal server error",
                                               "connectionId": conn.connection_id}))
        elif route.two_way and answer is not None:
            await conn.socket.send(answer)

    # -- the management API (on the HTTP front) --------------------------------------------------

    def management(self, req: HttpRequest) -> HttpResponse | None:
        """Answer ``/{stage}/@connections/{id}``; None for any other path."""
        m = _MANAGEMENT.match(unquote(req.raw_path))
        if m is None or m.group("stage") != self.stage:
            return None
        conn_id, method = m.group("id"), req.method.upper()
        with self._lock:
            conn = self.connections.get(conn_id)
        if conn is None:
            self.stats["gone"] += 1
            return HttpResponse.json(410, {"message": None}, [("x-amzn-ErrorType", "GoneException")])
        assert self._loop is not None
        if method == "POST":
            data = req.body
            if len(data) > MAX_FRAME:
                return HttpResponse.json(413, {"message": "Request Entity Too Large"},
                                         [("x-amzn-ErrorType", "PayloadTooLargeException")])
            try:
                text: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data
            try:
                asyncio.run_coroutine_threadsafe(conn.socket.send(text), self._loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - the socket closed meanwhile: gone
                self.stats["gone"] += 1
                return HttpResponse.json(410, {"message": None}, [("x-amzn-ErrorType", "GoneException")])
            conn.last_active = time.time()
            self.stats["posts"] += 1
            return HttpResponse(200, [("Content-Type", "application/json")], b"")
        if method == "GET":
            return HttpResponse.json(200, {
                "ConnectedAt": _now_iso(conn.connected_at),
                "Identity": {"SourceIp": conn.source_ip, "UserAgent": conn.user_agent},
                "LastActiveAt": _now_iso(conn.last_active),
            })
        if method == "DELETE":
            asyncio.run_coroutine_threadsafe(conn.socket.close(1000, "Closed by the service"), self._loop)
            return HttpResponse(204, [], b"")
        return HttpResponse.json(404, {"message": "Not Found"})


def _function_arn(uri: str) -> str:
    m = re.search(r"(arn:[^/]+:lambda:[^/]+:function:[^/]+?)(/invocations)?$", uri)
    return m.group(1) if m else uri


def _policy_refusal(payload: Any) -> tuple[int, str] | None:
    """None if the authorizer's policy allows ``execute-api:Invoke``; else API Gateway's answer."""
    if not isinstance(payload, dict) or not isinstance(payload.get("policyDocument"), dict):
        return 500, "Internal Server Error\n"
    statements = payload["policyDocument"].get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    effects = {str(s.get("Effect")) for s in statements if isinstance(s, dict)
               and "execute-api:Invoke" in (s.get("Action") if isinstance(s.get("Action"), list) else [s.get("Action")])}
    if "Deny" in effects or "Allow" not in effects:
        return 403, "Forbidden\n"
    return None
