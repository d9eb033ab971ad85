"""The local runtime: one supervisor that runs a synthesized template end to end.

Start-up order: moto server -> the template's tables/buckets/queues/topics/buses/rules on it ->
function specs (environment resolved to the local physical names) -> execution environments'
fork server -> HTTP API (routes, JWT authorizer) -> event source mappings and rule targets ->
``.local/outputs.json``. ``LocalRuntime.stop()`` undoes it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local import docs
from local.apigw import HttpApi, HttpRequest, HttpResponse, unavailable
from local.auth import JwtIssuer
from local.bus import RuleTargets
from local.cloud import STREAM_ACTIVITY, LocalCloud, MotoChaos, MotoServer
from local.esm import StreamChaos, Timing, build_mappings
from local.kinesis import KinesisHub, build_forwarders, hub_for
from local.lambdas import FunctionSpec, LambdaService
from local.template import ACCOUNT_ID, REGION, Template, TemplateError
from local.websocket import WebSocketApi, localize_jwks

__all__ = ["LocalRuntime", "RuntimeOptions", "function_specs"]

log = logging.getLogger("cairn.local")

LOCAL_ISSUER_FALLBACK = "https://cognito-idp.us-east-1.amazonaws.com/local"


@dataclass
class RuntimeOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    state_dir: Path = Path(".local")
    echo_function_logs: bool = True
    max_concurrency: int = 8
    serialize_dynamodb: bool = True
    shuffle: bool = False
    shards: int = 4
    duplicate: float = 0.0
    throttle: float = 0.0  # DynamoDB API calls of functions
    lambda_throttle: float = 0.0  # invocations by event sources and rules
    seed: int | None = None
    timing: Timing = field(default_factory=Timing)
    access_log: bool = True

    @classmethod
    def from_env(cls, **overrides: Any) -> RuntimeOptions:
        """Chaos switches from ``CAIRN_CHAOS_*`` (tests and ``make dev`` alike)."""
        env = os.environ
        opts = cls(
            shuffle=env.get("CAIRN_CHAOS_SHUFFLE", "0").lower() in ("1", "true", "yes"),
            shards=int(env.get("CAIRN_CHAOS_SHARDS", "4")),
            duplicate=float(env.get("CAIRN_CHAOS_DUPLICATE", "0") or 0),
            throttle=float(env.get("CAIRN_CHAOS_THROTTLE", "0") or 0),
            lambda_throttle=float(env.get("CAIRN_CHAOS_LAMBDA_THROTTLE", "0") or 0),
            seed=int(env["CAIRN_CHAOS_SEED"]) if env.get("CAIRN_CHAOS_SEED") else None,
        )
        for k, v in overrides.items():
            setattr(opts, k, v)
        return opts


def _asset_dir(template: Template, metadata: dict[str, Any], what: str) -> Path:
    path = metadata.get("aws:asset:path")
    if not path:
        raise TemplateError(f"{what}: no aws:asset:path metadata (synthesize with asset metadata on)")
    p = Path(path)
    if not p.is_absolute():
        base = template.source.parent if template.source else Path.cwd()
        p = base / p
    if not p.exists():
        raise TemplateError(f"{what}: asset {p} does not exist")
    return p.resolve()


def _localize_urls(value: str, api_ids: list[str], base_url: str) -> str:
    for api_id in api_ids:
        value = re.sub(rf"https://{re.escape(api_id)}\.execute-api\.[\w-]+\.amazonaws\.com/?", base_url + "/", value)
    return value


def function_specs(template: Template, *, endpoint: str, base_url: str, state_dir: Path,
                   warn: Any = log.warning) -> list[FunctionSpec]:
    """One spec per Python function of the template, environment resolved to local names."""
    api_ids = [str(a.ref) for a in template.of_type("AWS::ApiGatewayV2::Api")]
    layers_by_arn = {}
    for layer in template.of_type("AWS::Lambda::LayerVersion"):
        d = _asset_dir(template, layer.metadata, layer.logical_id)
        layers_by_arn[layer.ref] = str(d / "python") if (d / "python").is_dir() else str(d)
    specs = []
    for res in template.of_type("AWS::Lambda::Function"):
        p = template.resolve(res.properties)
        runtime = str(p.get("Runtime", ""))
        if not runtime.startswith("python"):
            warn(f"function {res.logical_id} ({runtime or 'container image'}) is not run locally: "
                 "only Python functions are (CDK's own helper functions are not needed here)")
            continue
        code = p.get("Code") or {}
        if "ZipFile" in code:
            inline = state_dir / "inline" / res.logical_id
            inline.mkdir(parents=True, exist_ok=True)
            (inline / "index.py").write_text(code["ZipFile"])
            code_dir = inline
        else:
            code_dir = _asset_dir(template, res.metadata, res.logical_id)
        layers = []
        for arn in p.get("Layers") or []:
            if arn not in layers_by_arn:
                warn(f"function {res.logical_id}: layer {arn} is not in the template; ignored")
                continue
            layers.append(layers_by_arn[arn])
        env = {k: _localize_urls(str(v), api_ids, base_url)
               for k, v in ((p.get("Environment") or {}).get("Variables") or {}).items()}
        name = str(res.ref)
        memory = int(p.get("MemorySize", 128))
        handler = str(p["Handler"])
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
            # Local cloud: moto, fake credentials, no X-Ray daemon.
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_XRAY_SDK_ENABLED": "false",
        })
        # Overrides of variables the template already gives the function (e.g. a short
        # PAYMENT_TIMEOUT_SECONDS for the e2e suite): CAIRN_LOCAL_ENV="NAME=value,NAME2=value".
        for pair in filter(None, os.environ.get("CAIRN_LOCAL_ENV", "").split(",")):
            key, _, value = pair.partition("=")
            if key in env:
                env[key] = value
        reserved = p.get("ReservedConcurrentExecutions")
        specs.append(FunctionSpec(
            logical_id=res.logical_id,
            name=name,
            arn=res.attributes["Arn"],
            handler=handler,
            runtime=runtime,
            code_dir=str(code_dir),
            layers=tuple(layers),
            environment=env,
            timeout=float(p.get("Timeout", 3)),
            memory=memory,
            reserved_concurrency=int(reserved) if reserved is not None else None,
        ))
    return specs


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CairnLocal"
    runtime: LocalRuntime  # set on the subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        started = time.time()
        raw_path, _, raw_query = self.path.partition("?")
        body = self._read_body()
        req = HttpRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        target = "-"
        try:
            resp, route = self.runtime.dispatch(req)
            if route is not None:
                target = route.function.rsplit(":", 1)[-1]
        except Exception as exc:  # the runtime itself failed (or ran out of something): say what
            log.exception("local runtime error on %s %s", self.command, self.path)
            resp = unavailable(f"{type(exc).__name__}: {exc}")
        self.send_response(resp.status, HTTPStatus(resp.status).phrase if resp.status in HTTPStatus._value2member_map_ else "")
        sent = set()
        for name, value in resp.headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
            sent.add(name.lower())
        if "content-type" not in sent and resp.body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        if self.runtime.options.access_log and not raw_path.startswith("/docs/"):
            ms = (time.time() - started) * 1000
            print(f"{self.command} {self.path} -> {resp.status} ({target}, {ms:.0f} ms)", flush=True)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def __getattr__(self, name: str) -> Any:
        # any other method (TRACE, QUERY, ...) reaches API Gateway too and matches no route
        # (404 there), rather than http.server's 501 (found by make fuzz)
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


class LocalRuntime:
    """Runs a template locally. ``start()`` returns once the API answers."""

    def __init__(self, template: Template, options: RuntimeOptions | None = None):
        self.template = template
        self.options = options or RuntimeOptions()
        self.state_dir = Path(self.options.state_dir)
        self.warnings: list[str] = []
        self.moto: MotoServer | None = None
        self.cloud: LocalCloud | None = None
        self.lambdas: LambdaService | None = None
        self.api: HttpApi | None = None
        self.issuer: JwtIssuer | None = None
        self.mappings: list[Any] = []
        self.kinesis: KinesisHub | None = None
        self.rules: RuleTargets | None = None
        self.websocket: WebSocketApi | None = None
        self.stream_chaos = StreamChaos(
            shuffle=self.options.shuffle, shards=self.options.shards,
            duplicate=self.options.duplicate, seed=self.options.seed,
        )
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.outputs: dict[str, Any] = {}
        self.started_at = 0.0
        from local.metrics import MetricStore

        self.metrics = MetricStore()  # EMF + observed AWS metrics, for /_local/dashboard
        self._sampling = threading.Event()  # set: stop sampling queue depths

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)

    @property
    def base_url(self) -> str:
        assert self._http is not None
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, publish_outputs: bool = True) -> LocalRuntime:
        """Start everything; ``publish_outputs=False`` leaves ``outputs.json`` unwritten until the
        caller's own start-up work is done (``python -m local`` seeds the demo catalog first)."""
        t0 = time.time()
        opts = self.options
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handler = type("Handler", (_FrontHandler,), {"runtime": self})
        self._http = ThreadingHTTPServer((opts.host, opts.port), handler)
        self._http.daemon_threads = True

        self.moto = MotoServer(serialize=opts.serialize_dynamodb,
                               chaos=MotoChaos(throttle=opts.throttle)).start()
        endpoint = self.moto.endpoint
        # The runtime's own process talks to the local cloud too (tools, tests in-process).
        os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")

        self.cloud = LocalCloud(self.template, endpoint)
        self.cloud.provision()
        # Kinesis Data Streams for DynamoDB (local/kinesis.py): streams, consumers, forwarders.
        self.kinesis = hub_for(endpoint)
        self.cloud.created += self.kinesis.provision(self.template)
        for api in self.template.of_type("AWS::ApiGatewayV2::Api"):
            api.attributes["ApiEndpoint"] = self.base_url

        specs = function_specs(self.template, endpoint=endpoint, base_url=self.base_url,
                               state_dir=self.state_dir, warn=self.warn)
        localize_jwks(specs, self.base_url)
        repo_paths = sorted({Path(s.code_dir) for s in specs} | {Path(p) for s in specs for p in s.layers})
        self.lambdas = LambdaService(
            specs,
            log_dir=self.state_dir / "logs",
            echo_logs=opts.echo_function_logs,
            max_concurrency=opts.max_concurrency,
            throttle_probability=opts.lambda_throttle,
            watch_paths=repo_paths,
        )
        self.lambdas.metrics = self.metrics
        self.lambdas.start()

        def issuer_factory(iss: str, aud: str) -> JwtIssuer:
            self.issuer = JwtIssuer(self.state_dir, iss or LOCAL_ISSUER_FALLBACK, aud)
            return self.issuer

        self.api = HttpApi.from_template(self.template, self.lambdas, issuer_factory)
        if self.issuer is None:
            self.issuer = JwtIssuer(self.state_dir, LOCAL_ISSUER_FALLBACK, "local")
        self.mappings = build_mappings(self.template, self.lambdas, endpoint, self.stream_chaos,
                                       opts.timing, warn=self.warn)
        self.mappings += build_forwarders(self.template, endpoint, opts.timing)
        for m in self.mappings:
            m.start()
        self.rules = RuleTargets(self.template, self.lambdas, endpoint)
        if self.rules.targets:
            assert self.moto.middleware is not None
            self.moto.middleware.put_events_observers.append(self.rules.on_put_events)
            self.rules.start()

        self.websocket = WebSocketApi.from_template(self.template, self.lambdas)
        if self.websocket is not None:
            ws_port = int(os.environ.get("CAIRN_WS_PORT", opts.port + 1 if opts.port else 0))
            self.websocket.start(opts.host, ws_port)

        self._write_outputs(publish=publish_outputs)
        threading.Thread(target=self._sample_forever, name="queue-depths", daemon=True).start()
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        self._http_thread.start()
        self.started_at = time.time()
        log.info("local runtime up in %.2f s", self.started_at - t0)
        return self

    def stop(self) -> None:
        """Within seconds however busy: invocations not yet started are refused and every mapping
        is told at once, then each is joined (one by one they waited up to 2 s per thread while
        the others kept invoking: 16-20 s after a long session)."""
        if self.lambdas is not None:
            self.lambdas.begin_stop()
        for m in self.mappings:
            m.stop_event.set()
        STREAM_ACTIVITY.wake_all()  # idle stream readers wait there, not on their stop event
        if self.websocket is not None:
            self.websocket.stop()
        self._sampling.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for m in self.mappings:
            m.stop()
        if self.rules is not None:
            self.rules.stop()
        if self.lambdas is not None:
            self.lambdas.shutdown()
        if self.moto is not None:
            self.moto.stop()

    # -- outputs -----------------------------------------------------------------------------

    def _write_outputs(self, publish: bool = True) -> None:
        assert self.moto is not None
        api_ids = [str(a.ref) for a in self.template.of_type("AWS::ApiGatewayV2::Api")]
        outputs: dict[str, Any] = {}
        for key, spec in self.template.outputs.items():
            if spec.get("Condition") and not self.template.condition(spec["Condition"]):
                continue
            try:
                value = self.template.resolve(spec.get("Value"))
            except TemplateError as exc:
                self.warn(f"output {key} not resolved locally: {exc}")
                continue
            outputs[key] = _localize_urls(str(value), api_ids, self.base_url).rstrip("/") \
                if isinstance(value, str) and "execute-api" in value else value
        outputs["ApiUrl"] = self.base_url
        if self.websocket is not None:
            outputs["WsUrl"] = self.websocket.url
        outputs["AwsEndpointUrl"] = self.moto.endpoint
        outputs.setdefault("Region", REGION)
        outputs.setdefault("AccountId", ACCOUNT_ID)
        self.outputs = {self.template.stack_name: outputs}
        if publish:
            self.publish_outputs()

    def publish_outputs(self) -> None:
        """Write ``outputs.json``: what scripts and suites wait for as "the runtime is ready"."""
        path = self.state_dir / "outputs.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.outputs, indent=2) + "\n")
        tmp.replace(path)

    # -- requests ----------------------------------------------------------------------------

    def dispatch(self, req: HttpRequest) -> tuple[HttpResponse, Any]:
        path = req.raw_path
        if path.startswith("/_local/"):
            return self._local(req), None
        if path in ("/docs", "/docs/"):
            page = docs.page(self.base_url).encode()
            return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8")], page), None
        if path.startswith("/docs/"):
            found = docs.asset(path.removeprefix("/docs/"))
            if found is None:
                return HttpResponse.json(404, {"message": "Not Found"}), None
            data, ctype = found
            return HttpResponse(200, [("Content-Type", ctype), ("Cache-Control", "max-age=3600")], data), None
        if self.websocket is not None and (managed := self.websocket.management(req)) is not None:
            return managed, None
        if self.api is None:
            return HttpResponse.json(404, {"message": "Not Found (the template has no HTTP API)"}), None
        started = time.perf_counter()
        response, route = self.api.handle(req)
        from local.metrics import observe_request

        for api in self.template.of_type("AWS::ApiGatewayV2::Api")[:1]:
            observe_request(self.metrics, str(api.ref), response.status, (time.perf_counter() - started) * 1000)
        return response, route

    def _local(self, req: HttpRequest) -> HttpResponse:
        path, method = req.raw_path, req.method.upper()
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            return HttpResponse.json(400, {"message": "body must be JSON"})
        if not isinstance(body, dict):
            return HttpResponse.json(400, {"message": "body must be a JSON object"})
        if path == "/_local/token" and method == "POST":
            assert self.issuer is not None
            sub = body.get("sub")
            groups = body.get("groups") or []
            if isinstance(groups, str):
                groups = [g for g in groups.split(",") if g]
            if not isinstance(sub, str) or not sub or not isinstance(groups, list):
                return HttpResponse.json(422, {"message": 'expected {"sub": "alice", "groups": ["staff"]}'})
            token = self.issuer.issue(
                sub, [str(g) for g in groups], scopes=body.get("scopes") or (),
                expires_in=int(body.get("expires_in", 3600)),
            )
            return HttpResponse.json(200, {"token": token, "token_type": "Bearer",
                                           "expires_in": int(body.get("expires_in", 3600))})
        if path == "/_local/jwks.json" and method == "GET":
            assert self.issuer is not None
            return HttpResponse.json(200, self.issuer.jwks())
        if path in ("/_local/dashboard", "/_local/dashboard/") and method == "GET":
            from local.dashboard import PAGE

            return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
                                PAGE.encode())
        if path.startswith("/_local/dashboard/data") and method == "GET":
            from local.metrics import dashboard_model

            self.sample_queues()
            minutes = 60
            if "minutes=" in (req.raw_query or ""):
                try:
                    minutes = max(5, min(180, int(req.raw_query.split("minutes=", 1)[1].split("&", 1)[0])))
                except ValueError:
                    pass
            return HttpResponse.json(200, dashboard_model(self.template, self.metrics, minutes))
        if path == "/_local/status" and method == "GET":
            return HttpResponse.json(200, self.status())
        if path == "/_local/chaos" and method in ("GET", "POST"):
            if method == "POST":
                self.set_chaos(**body)
            return HttpResponse.json(200, self.chaos_state())
        return HttpResponse.json(404, {"message": "Not Found"})

    # -- introspection and control ------------------------------------------------------------

    def _sample_forever(self, every: float = 30.0) -> None:
        while not self._sampling.wait(every):
            try:
                self.sample_queues()
            except Exception as exc:  # the dashboard's data only: never take the runtime down
                log.debug("sampling queue depths failed: %s", exc)

    def sample_queues(self) -> None:
        """AWS/SQS ApproximateNumberOfMessagesVisible of the template's queues, now (moto has no
        CloudWatch metrics; sampled when the dashboard asks, at most every 10 seconds)."""
        now = time.time()
        if self.moto is None or now - getattr(self, "_queues_sampled", 0.0) < 10:
            return
        self._queues_sampled = now
        from local.cloud import aws_client

        sqs = aws_client("sqs", self.moto.endpoint)
        for queue in self.template.of_type("AWS::SQS::Queue"):
            try:
                name = str(self.template.resolve({"Fn::GetAtt": [queue.logical_id, "QueueName"]}))
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            except Exception:  # not provisioned locally
                continue
            self.metrics.put("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name},
                             int(attributes.get("ApproximateNumberOfMessages", 0)))

    def idle(self) -> bool:
        """True when every mapping has delivered all it read and every queue is drained."""
        return all(m.idle for m in self.mappings) and (self.rules is None or self.rules.idle)

    def wait_idle(self, timeout: float = 30.0, settle: float = 0.3) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.idle():
                time.sleep(settle)
                if self.idle():
                    return True
            time.sleep(0.1)
        return False

    def chaos_state(self) -> dict[str, Any]:
        assert self.moto is not None and self.lambdas is not None
        return {
            "shuffle": self.stream_chaos.shuffle,
            "shards": len(self.mappings[0].shards) if self.mappings and hasattr(self.mappings[0], "shards")
            else self.stream_chaos.shards,
            "duplicate": self.stream_chaos.duplicate,
            "throttle": self.moto.chaos.throttle,
            "lambda_throttle": self.lambdas.throttle_probability,
            "duplicates_sent": self.stream_chaos.duplicates_sent,
            "throttled_calls": self.moto.chaos.throttled,
        }

    def set_chaos(self, shuffle: bool | None = None, duplicate: float | None = None,
                  throttle: float | None = None, lambda_throttle: float | None = None,
                  seed: int | None = None, **unknown: Any) -> None:
        assert self.moto is not None and self.lambdas is not None
        if unknown:
            raise TypeError(f"unknown chaos settings {sorted(unknown)}")
        if shuffle is not None:
            self.stream_chaos.shuffle = bool(shuffle)
        if duplicate is not None:
            self.stream_chaos.duplicate = float(duplicate)
        if throttle is not None:
            self.moto.chaos.throttle = float(throttle)
        if lambda_throttle is not None:
            self.lambdas.throttle_probability = float(lambda_throttle)
        if seed is not None:
            self.stream_chaos.rng.seed(seed)
            self.moto.chaos.rng.seed(seed)

    def status(self) -> dict[str, Any]:
        assert self.lambdas is not None and self.cloud is not None
        return {
            "idle": self.idle(),
            "uptime_s": round(time.time() - self.started_at, 1) if self.started_at else 0,
            "stack": self.template.stack_name,
            "outputs": self.outputs.get(self.template.stack_name, {}),
            "functions": self.lambdas.stats(),
            "mappings": [
                {"id": m.spec.logical_id, "function": m.spec.function.rsplit(":", 1)[-1],
                 "source": m.spec.source_arn, "kind": m.spec.kind, "idle": m.idle, **m.stats}
                for m in self.mappings
            ],
            "rules": self.rules.stats if self.rules else {},
            "routes": [r.route_key for r in self.api.routes] if self.api else [],
            "chaos": self.chaos_state(),
            "not_emulated": self.cloud.skipped,
            "warnings": self.warnings,
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "streams": {"records_trimmed": self.moto.middleware.retention.trimmed,
                        "kinesis_records_trimmed": self.kinesis.trimmed if self.kinesis else 0}
            if self.moto is not None and self.moto.middleware is not None else {},
        }
