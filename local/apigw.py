"""The template's HTTP API (API Gateway v2) served locally: routes, JWT authorizer, payload 2.0.

A request is matched to a route key exactly as API Gateway does (most specific path first,
then the method before ``ANY``, then ``$default``), authorized by the route's JWT authorizer,
turned into the payload format 2.0 event (lower-cased headers joined by commas, cookies apart,
query values joined by commas, path parameters, base64 for binary bodies, the request context
with the authorizer's claims) and the function's answer is mapped back to HTTP the same way.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.auth import AuthError, Authorizer, JwtIssuer, claims_for_event
from local.lambdas import CapacityError, FunctionError, LambdaService, ThrottledError
from local.template import ACCOUNT_ID, Template, TemplateError

__all__ = ["HttpApi", "HttpRequest", "HttpResponse", "Route", "unavailable"]

log = logging.getLogger("cairn.local")

MAX_BODY = 10 * 1024 * 1024  # HTTP API payload quota
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded|problem\+json|[\w.+-]*\+(json|xml)))",
    re.I,
)


# Why the local runtime could not serve, by Lambda error type: a 503 problem that says so (API
# Gateway answers a bare {"message": "Service Unavailable"}, which tells a developer nothing).
_UNAVAILABLE = {
    "Sandbox.Timedout": "{fn} did not answer within its {timeout:.0f} s timeout; its execution "
                        "environment was stopped and the next request starts a fresh one",
    "Runtime.ExitError": "the execution environment of {fn} exited while serving this request "
                         "(crashed or killed); the next request starts a fresh one",
    "Runtime.InitTimeout": "a new execution environment of {fn} did not start in time",
    "Runtime.ResourceExhausted": "the local runtime could not start an execution environment of {fn} "
                                 "(out of memory, processes or files)",
}


def unavailable(detail: str, request_id: str = "") -> HttpResponse:
    """503 application/problem+json (RFC 9457): the local runtime, not the request, is at fault."""
    body = {
        "type": "https://cairn.dev/problems/local-runtime-unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": f"The local runtime could not serve this request: {detail}.",
    }
    if request_id:
        body["instance"] = f"urn:request:{request_id}"
    return HttpResponse(503, [("Content-Type", "application/problem+json"), ("Retry-After", "1")],
                        json.dumps(body).encode())


@dataclass
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def header_map(self) -> dict[str, str]:
        """Lower-cased names, repeated headers joined with commas (as payload 2.0 does)."""
        out: dict[str, str] = {}
        for name, value in self.headers:
            key = name.lower()
            out[key] = f"{out[key]},{value}" if key in out else value
        return out


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
        body = json.dumps(payload).encode()
        return cls(status, [("Content-Type", "application/json"), *(headers or [])], body)


@dataclass(frozen=True)
class Route:
    route_key: str
    method: str  # upper-case or ANY; "" for $default
    segments: tuple[str, ...]
    function: str
    payload_version: str
    authorizer: Authorizer | None
    scopes: tuple[str, ...]
    timeout_ms: int

    @property
    def specificity(self) -> tuple[Any, ...]:
        kinds = []
        for seg in self.segments:
            if seg.startswith("{") and seg.endswith("+}"):
                kinds.append(2)
            elif seg.startswith("{"):
                kinds.append(1)
            else:
                kinds.append(0)
        return (tuple(kinds), 1 if self.method == "ANY" else 0)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        parts = path.strip("/").split("/") if path.strip("/") else []
        params: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            if seg.startswith("{") and seg.endswith("+}"):
                if i >= len(parts):
                    return None
                params[seg[1:-2]] = unquote("/".join(parts[i:]))
                return params
            if i >= len(parts):
                return None
            if seg.startswith("{") and seg.endswith("}"):
                if parts[i] == "":
                    return None
                params[seg[1:-1]] = unquote(parts[i])
            elif seg != parts[i]:
                return None
        return params if len(parts) == len(self.segments) else None


class HttpApi:
    """One ``AWS::ApiGatewayV2::Api`` (protocol HTTP) with its routes."""

    def __init__(self, api_id: str, routes: list[Route], issuer: JwtIssuer | None,
                 lambdas: LambdaService, cors: Mapping[str, Any] | None = None, name: str = ""):
        self.api_id = api_id
        self.name = name
        self.routes = sorted((r for r in routes if r.method), key=lambda r: r.specificity)
        self.default = next((r for r in routes if not r.method), None)
        self.issuer = issuer
        self.lambdas = lambdas
        self.cors = cors or {}
        self.domain = "127.0.0.1"

    # -- building from the template ----------------------------------------------------------

    @classmethod
    def from_template(cls, template: Template, lambdas: LambdaService,
                      issuer_factory: Any) -> HttpApi | None:
        apis = [a for a in template.of_type("AWS::ApiGatewayV2::Api")
                if template.resolve(a.properties.get("ProtocolType", "HTTP")) == "HTTP"]
        if not apis:
            return None
        if len(apis) > 1:
            log.warning("several HTTP APIs in the template; serving %s", apis[0].logical_id)
        api = apis[0]
        api_id = api.ref or api.logical_id
        integrations = {
            r.ref: r for r in template.of_type("AWS::ApiGatewayV2::Integration")
            if template.resolve(r.properties.get("ApiId")) == api_id
        }
        authorizers: dict[str, Authorizer] = {}
        for res in template.of_type("AWS::ApiGatewayV2::Authorizer"):
            p = template.resolve(res.properties)
            if p.get("ApiId") != api_id:
                continue
            if p.get("AuthorizerType") != "JWT":
                raise TemplateError(f"authorizer {res.logical_id}: only JWT authorizers are emulated")
            jwt_cfg = p.get("JwtConfiguration") or {}
            sources = p.get("IdentitySource") or ["$request.header.Authorization"]
            authorizers[str(res.ref)] = Authorizer(
                name=str(p.get("Name", res.logical_id)),
                issuer=str(jwt_cfg.get("Issuer", "")),
                audiences=tuple(jwt_cfg.get("Audience") or ()),
                identity_source=sources[0],
            )
        issuer = None
        if authorizers:
            first = next(iter(authorizers.values()))
            issuer = issuer_factory(first.issuer, first.audiences[0] if first.audiences else "")
        routes: list[Route] = []
        for res in template.of_type("AWS::ApiGatewayV2::Route"):
            p = template.resolve(res.properties)
            if p.get("ApiId") != api_id:
                continue
            target = str(p.get("Target", ""))
            integ = integrations.get(target.removeprefix("integrations/"))
            if integ is None:
                log.warning("route %s has no integration this runtime knows; skipped", p.get("RouteKey"))
                continue
            ip = template.resolve(integ.properties)
            if ip.get("IntegrationType") != "AWS_PROXY":
                raise TemplateError(f"{integ.logical_id}: only Lambda proxy integrations are emulated")
            version = str(ip.get("PayloadFormatVersion", "2.0"))
            if version != "2.0":
                raise TemplateError(f"{integ.logical_id}: payload format {version} is not emulated (2.0 is)")
            uri = str(ip["IntegrationUri"])
            m = re.search(r"(arn:[^/]+:lambda:[^/]+:function:[^/]+?)(/invocations)?$", uri)
            fn_arn = m.group(1) if m else uri
            lambdas.get(fn_arn)  # fail early on a route to an unknown function
            route_key = str(p["RouteKey"])
            auth_type = p.get("AuthorizationType", "NONE")
            authorizer = None
            if auth_type == "JWT":
                authorizer = authorizers[str(p["AuthorizerId"])]
            elif auth_type not in ("NONE", None):
                raise TemplateError(f"route {route_key}: authorization {auth_type} is not emulated")
            if route_key == "$default":
                method, segments = "", ()
            else:
                method, path = route_key.split(" ", 1)
                segments = tuple(s for s in path.strip("/").split("/") if s)
            routes.append(Route(
                route_key=route_key,
                method=method.upper(),
                segments=segments,
                function=fn_arn,
                payload_version=version,
                authorizer=authorizer,
                scopes=tuple(p.get("AuthorizationScopes") or ()),
                timeout_ms=int(ip.get("TimeoutInMillis", 30000)),
            ))
        cors = template.resolve(api.properties.get("CorsConfiguration")) or None
        return cls(api_id, routes, issuer, lambdas, cors, name=str(api.properties.get("Name", "")))

    # -- serving -----------------------------------------------------------------------------

    def find(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return self.default, {}

    def handle(self, req: HttpRequest) -> tuple[HttpResponse, Route | None]:
        request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")[:16]
        headers = req.header_map()
        path = req.raw_path or "/"
        if req.method == "OPTIONS" and self.cors and "access-control-request-method" in headers:
            return self._preflight(headers), None
        if len(req.body) > MAX_BODY:
            return self._finish(HttpResponse.json(413, {"message": "Request Entity Too Large"}),
                                request_id, headers), None
        route, params = self.find(req.method.upper(), path)
        if route is None:
            return self._finish(HttpResponse.json(404, {"message": "Not Found"}), request_id, headers), None
        authorizer_ctx = None
        if route.authorizer is not None:
            assert self.issuer is not None
            try:
                claims = route.authorizer.authorize(headers, self.issuer, route.scopes)
            except AuthError as exc:
                log.debug("401/403 on %s %s: %s", req.method, path, exc.reason)
                body = {"message": "Unauthorized" if exc.status == 401 else "Forbidden"}
                extra = [("www-authenticate", 'Bearer error="invalid_token"')] if exc.status == 401 else []
                return self._finish(HttpResponse.json(exc.status, body, extra), request_id, headers), route
            authorizer_ctx = claims_for_event(claims)
        event = self.build_event(req, route, params, request_id, authorizer_ctx, headers)
        fn = route.function.rsplit(":", 1)[-1]
        try:
            result = self.lambdas.invoke(route.function, event, chaos=False)
        except CapacityError as exc:
            log.error("%s %s -> 503: %s", req.method, path, exc)
            resp = unavailable(f"{exc}; retry shortly", request_id)
        except ThrottledError:
            resp = HttpResponse.json(429, {"message": "Too Many Requests"})
        except FunctionError as exc:
            kind, message = exc.error.get("errorType"), exc.error.get("errorMessage")
            reason = _UNAVAILABLE.get(str(kind))
            if reason is None:  # the handler raised: API Gateway's 500, the traceback is in the log
                log.error("%s %s: %s failed: %s: %s", req.method, path, fn, kind, message)
                resp = HttpResponse.json(500, {"message": "Internal Server Error"})
            else:
                detail = reason.format(fn=fn, timeout=self.lambdas.get(route.function).spec.timeout)
                log.error("%s %s -> 503: %s (%s: %s)", req.method, path, detail, kind, message)
                resp = unavailable(detail, request_id)
        else:
            try:
                resp = self.map_response(result.payload)
            except (TypeError, ValueError) as exc:
                log.error("%s returned a response API Gateway cannot map: %s", route.function, exc)
                resp = HttpResponse.json(500, {"message": "Internal Server Error"})
        return self._finish(resp, request_id, headers), route

    def build_event(self, req: HttpRequest, route: Route, params: dict[str, str], request_id: str,
                    authorizer: dict[str, Any] | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        headers = dict(headers if headers is not None else req.header_map())
        cookies = None
        if "cookie" in headers:
            cookies = [c.strip() for c in re.split(r"[;,]", headers.pop("cookie")) if c.strip()]
        headers.setdefault("x-forwarded-for", req.source_ip)
        headers.setdefault("x-forwarded-proto", "http")
        headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
        now = time.time()
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": req.raw_path or "/",
            "rawQueryString": req.raw_query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        if req.raw_query:
            qs: dict[str, str] = {}
            for k, v in parse_qsl(req.raw_query, keep_blank_values=True):
                qs[k] = f"{qs[k]},{v}" if k in qs else v
            event["queryStringParameters"] = qs
        context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": self.api_id,
        }
        if authorizer is not None:
            context["authorizer"] = authorizer
        context.update({
            "domainName": headers.get("host", self.domain),
            "domainPrefix": headers.get("host", self.domain).split(".", 1)[0],
            "http": {
                "method": req.method.upper(),
                "path": req.raw_path or "/",
                "protocol": req.protocol,
                "sourceIp": req.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        })
        event["requestContext"] = context
        if params:
            event["pathParameters"] = params
        if req.body:
            ctype = headers.get("content-type", "")
            textual = bool(_TEXT_TYPES.match(ctype)) if ctype else True
            if textual:
                try:
                    event["body"] = req.body.decode("utf-8")
                    event["isBase64Encoded"] = False
                except UnicodeDecodeError:
                    textual = False
            if not textual:
                event["body"] = base64.b64encode(req.body).decode()
                event["isBase64Encoded"] = True
        else:
            event["isBase64Encoded"] = False
        return event

    @staticmethod
    def map_response(payload: Any) -> HttpResponse:
        """Payload 2.0 response mapping (with API Gateway's inference when there is no statusCode)."""
        if isinstance(payload, dict) and "statusCode" in payload:
            status = int(payload["statusCode"])
            headers = [(str(k), str(v)) for k, v in (payload.get("headers") or {}).items()]
            for name, values in (payload.get("multiValueHeaders") or {}).items():
                headers.extend((str(name), str(v)) for v in values)
            for cookie in payload.get("cookies") or []:
                headers.append(("Set-Cookie", str(cookie)))
            body = payload.get("body")
            if body is None:
                raw = b""
            elif payload.get("isBase64Encoded"):
                raw = base64.b64decode(body)
            else:
                raw = str(body).encode()
            return HttpResponse(status, headers, raw)
        return HttpResponse.json(200, payload)

    def _finish(self, resp: HttpResponse, request_id: str, req_headers: Mapping[str, str]) -> HttpResponse:
        names = {k.lower() for k, _ in resp.headers}
        if "apigw-requestid" not in names:
            resp.headers.append(("Apigw-Requestid", request_id))
        origin = req_headers.get("origin")
        if origin and self.cors and self._origin_allowed(origin):
            resp.headers.append(("Access-Control-Allow-Origin",
                                 "*" if "*" in self._cors_list("AllowOrigins") else origin))
            if self.cors.get("AllowCredentials"):
                resp.headers.append(("Access-Control-Allow-Credentials", "true"))
            expose = self._cors_list("ExposeHeaders")
            if expose:
                resp.headers.append(("Access-Control-Expose-Headers", ",".join(expose)))
        return resp

    def _cors_list(self, key: str) -> list[str]:
        return [str(v) for v in self.cors.get(key) or []]

    def _origin_allowed(self, origin: str) -> bool:
        allowed = self._cors_list("AllowOrigins")
        return "*" in allowed or origin in allowed

    def _preflight(self, headers: Mapping[str, str]) -> HttpResponse:
        origin = headers.get("origin", "")
        if not self._origin_allowed(origin):
            return HttpResponse(204, [])
        out = [("Access-Control-Allow-Origin", "*" if "*" in self._cors_list("AllowOrigins") else origin)]
        methods = self._cors_list("AllowMethods") or ["*"]
        out.append(("Access-Control-Allow-Methods", ",".join(methods)))
        allow_headers = self._cors_list("AllowHeaders")
        if allow_headers:
            out.append(("Access-Control-Allow-Headers", ",".join(allow_headers)))
        if self.cors.get("MaxAge") is not None:
            out.append(("Access-Control-Max-Age", str(self.cors["MaxAge"])))
        if self.cors.get("AllowCredentials"):
            out.append(("Access-Control-Allow-Credentials", "true"))
        return HttpResponse(204, out)
