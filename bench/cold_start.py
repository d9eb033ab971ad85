"""Cold start of every HTTP handler: init (the handler module's import) + its first invocation,
against a minimal boto3 handler doing the same DynamoDB calls, in fresh interpreters.

Each HTTP handler named in docs/architecture.md's routes table and the baseline run in their own
``python -S`` process with what a deployed function sees (``bench.imports.lambda_env``: the layer's
distributions and boto3 only, Lambda's environment variables, bytecode cached), against one moto
server on 127.0.0.1 with the production tables. In the process: ``t0``; import the handler module
(Lambda's init phase); ``t1``; the first invocation with a real-shaped API Gateway event (one
route per handler, the first thing a client would call); ``t2``. The interpreter's own start-up is
the same for both and left out. Times are the process's CPU time: the function's own work
(imports, clients, validation, serialization), not moto's answer time nor the other load on this
shared machine, which dominate wall time here (``cold_start_ratio_wall`` is reported alongside). The baseline module is ``import boto3``, a client made at import,
and per invocation the DynamoDB calls the handler's request makes on the event store: a Query (a
command also appends: a conditional TransactWriteItems). Runs are interleaved (handler, baseline,
handler, ...) so machine noise hits both alike; each figure is a median of ``RUNS``.

``cold_start_ratio`` is the worst handler's (init + first invocation) / the baseline's.

The floors (``cold_start_floor_ratio_query``, ``_command``) are the same measurement of a handler
with no Cairn code at all: Powertools' resolver with validation, Logger and Metrics, one pydantic
model for the route, and the baseline's own boto3 calls. What a handler built that way costs
before any code of ours, against the same baseline, in the same run.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.imports import ARCHITECTURE, ROOT, lambda_env, lambda_site

__all__ = ["FLOORS", "GOALS", "REQUESTS", "http_handlers", "run"]

RUNS = 5
GOALS = {"cold_start_ratio": "<= 1.5"}
EVENTS = ROOT / "tests" / "events"

ORDER = {"items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"}], "currency": "USD"}
# module -> (method, path, route key, body, staff, baseline calls)
REQUESTS: dict[str, tuple[str, str, str, Any, bool, tuple[str, ...]]] = {
    "orders.api": ("POST", "/orders", "POST /orders", ORDER, False, ("query", "append")),
    "orders.queries": ("GET", "/orders/order-0", "GET /orders/{id}", None, False, ("query",)),
    "accounts.api": ("POST", "/accounts", "POST /accounts", {"currency": "USD"}, False, ("query", "append")),
    "accounts.queries": ("GET", "/accounts/account-0", "GET /accounts/{id}", None, False, ("query",)),
    "inventory.queries": ("GET", "/inventory/SKU-1", "GET /inventory/{sku}", None, True, ("query",)),
    "notifications.queries": ("GET", "/users/me/notifications", "GET /users/me/notifications", None, False,
                              ("query",)),
    "catalog.api": ("GET", "/catalog/SKU-1", "GET /catalog/{sku}", None, False, ("query",)),
    "cairn_platform.ops": ("GET", "/ops/projections", "GET /ops/projections", None, True, ("query",)),
    "cairn_platform.public": ("GET", "/health", "GET /health", None, False, ()),
}

_CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import importlib
module = importlib.import_module(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()

class Context:
    function_name = "Cairn-Bench-Function"; function_version = "$LATEST"; memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:Cairn-Bench-Function"
    log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 900_000  # the bench measures work, not deadlines

import os
devnull = open(os.devnull, "w"); real_stdout = sys.stdout; sys.stdout = devnull  # logs and EMF
response = module.handler(json.loads(sys.argv[2]), Context())
t2, c2 = time.perf_counter(), time.process_time()
sys.stdout = real_stdout
status = response.get("statusCode") if isinstance(response, dict) else None
print(json.dumps({"init": c1 - c0, "invoke": c2 - c1, "wall": t2 - t0, "status": status}))
"""

_BASELINE = '''"""The minimal handler: boto3, a client made at import, the same DynamoDB calls."""
import os
import uuid

import boto3

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    calls = os.environ["BASELINE_CALLS"].split(",") if os.environ["BASELINE_CALLS"] else []
    stream = "order-" + str(uuid.uuid4())
    if "query" in calls:
        dynamodb.query(
            TableName=os.environ["EVENTS_TABLE"], KeyConditionExpression="stream_id = :s",
            ExpressionAttributeValues={":s": {"S": stream}}, ConsistentRead=True,
        )
    if "append" in calls:
        dynamodb.transact_write_items(TransactItems=[{"Put": {
            "TableName": os.environ["EVENTS_TABLE"],
            "Item": {"stream_id": {"S": stream}, "version": {"N": "1"}, "type": {"S": "Baseline"}},
            "ConditionExpression": "attribute_not_exists(stream_id)",
        }}])
    return {"statusCode": 200, "body": "{}"}
'''


_FLOOR = '''"""The floor: a Powertools HTTP handler with validation, no Cairn code, the baseline's calls."""
import os
import uuid
from typing import Annotated

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, Field

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)


class Line(BaseModel):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=1000)]
    unit_price: Annotated[str, Field(pattern=r"^\\d+\\.\\d{2}$")]


class Command(BaseModel):
    items: Annotated[list[Line], Field(min_length=1, max_length=100)]
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")]


class View(BaseModel):
    id: str
    version: int


def _calls(stream):
    import boto3

    dynamodb = boto3.client("dynamodb")
    calls = os.environ["BASELINE_CALLS"].split(",")
    items = dynamodb.query(
        TableName=os.environ["EVENTS_TABLE"], KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream}}, ConsistentRead=True,
    )["Items"]
    if "append" in calls:
        dynamodb.transact_write_items(TransactItems=[{"Put": {
            "TableName": os.environ["EVENTS_TABLE"],
            "Item": {"stream_id": {"S": stream}, "version": {"N": "1"}, "type": {"S": "Floor"}},
            "ConditionExpression": "attribute_not_exists(stream_id)",
        }}])
    return len(items)


@app.get("/floor/<id>")
def get_view(id: Annotated[str, Path(max_length=100)]) -> View:
    return View(id=id, version=_calls(id))


@app.post("/floor")
def create(body: Command) -> View:
    stream = "floor-" + str(uuid.uuid4())
    return View(id=stream, version=_calls(stream) + 1)


def handler(event, context):
    with logger.append_context_keys(route=event.get("routeKey")):
        response = app.resolve(event, context)
    metrics.flush_metrics(raise_on_empty_metrics=False)
    return response
'''
# pseudo-module -> (method, path, route key, body, staff, baseline calls)
FLOORS: dict[str, tuple[str, str, str, Any, bool, tuple[str, ...]]] = {
    "bench_floor:query": ("GET", "/floor/order-0", "GET /floor/{id}", None, False, ("query",)),
    "bench_floor:command": ("POST", "/floor", "POST /floor", ORDER, False, ("query", "append")),
}


def http_handlers(path: Path = ARCHITECTURE) -> list[str]:
    """Handler modules of the "HTTP routes -> functions" table."""
    text = path.read_text()
    section = text.split("## HTTP routes → functions", 1)[1].split("\n## ", 1)[0]
    return sorted(set(re.findall(r"`([a-z_]+\.[a-z_]+)\.handler`", section)))


def api_event(method: str, path: str, route_key: str, body: Any, staff: bool) -> dict[str, Any]:
    """A payload-2.0 API Gateway event (tests/events' captured shape), authorized unless public."""
    public = route_key in ("GET /health", "GET /openapi.json")
    event = json.loads((EVENTS / ("apigw_http_v2_public.json" if public else "apigw_http_v2.json")).read_text())
    event = copy.deepcopy(event)
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    keys = re.findall(r"\{(\w+)\}", route_key)
    values = [seg for seg, tmpl in zip(path.split("/"), route_key.split(" ", 1)[1].split("/"), strict=True) if tmpl.startswith("{")]
    if keys:
        event["pathParameters"] = dict(zip(keys, values, strict=True))
    else:
        event.pop("pathParameters", None)
    event["rawQueryString"] = ""
    event.pop("queryStringParameters", None)
    headers = {k: v for k, v in event["headers"].items() if k not in ("content-length", "content-type")}
    if not public:
        claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        claims["sub"] = claims["username"] = "bench-user"
        if staff:
            claims["cognito:groups"] = "[staff]"
        else:
            claims.pop("cognito:groups", None)
    if body is not None:
        event["body"] = json.dumps(body)
        headers["content-type"] = "application/json"
        headers["idempotency-key"] = str(uuid.uuid4())
    else:
        event.pop("body", None)
    event["isBase64Encoded"] = False
    event["headers"] = headers
    return event


def _tables(endpoint: str, env: dict[str, str]) -> None:
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    sys.path[:0] = [str(ROOT / "layers" / "cairn" / "python")]
    from cairn.store.dynamodb import create_tables

    create_tables(ddb, env["EVENTS_TABLE"], env["IDEMPOTENCY_TABLE"])
    for var in ("ORDER_VIEW_TABLE", "USER_ORDERS_TABLE", "ANALYTICS_TABLE", "ACCOUNT_VIEW_TABLE",
                "INVENTORY_TABLE", "NOTIFICATIONS_TABLE", "CATALOG_TABLE"):
        ddb.create_table(
            TableName=env[var],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=env["SNAPSHOT_BUCKET"])


def _once(module: str, event: dict[str, Any], env: dict[str, str], extra_path: str = "") -> dict[str, Any]:
    if extra_path:
        env = {**env, "PYTHONPATH": extra_path + os.pathsep + env["PYTHONPATH"]}
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _CHILD, module, json.dumps(event)],
        env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["status"] is None or result["status"] >= 500:
        raise RuntimeError(f"{module} answered {result['status']}:\n{proc.stderr[-3000:]}")
    return result


def measure(modules: list[str], runs: int = RUNS) -> dict[str, dict[str, list[float]]]:
    """{module or "baseline:<module>": {"init": [...], "invoke": [...], "total": [...]}}."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with tempfile.TemporaryDirectory(prefix="cairn-cold-") as tmp:
            env = lambda_env(tmp, lambda_site(Path(tmp) / "site"))
            env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled")
            _tables(endpoint, env)
            baseline_dir = Path(tmp) / "baseline"
            baseline_dir.mkdir()
            (baseline_dir / "bench_baseline.py").write_text(_BASELINE)
            (baseline_dir / "bench_floor.py").write_text(_FLOOR)
            results: dict[str, dict[str, list[float]]] = {}

            def record(name: str, outcome: dict[str, Any]) -> None:
                row = results.setdefault(name, {"init": [], "invoke": [], "total": [], "wall": []})
                row["init"].append(outcome["init"])
                row["invoke"].append(outcome["invoke"])
                row["total"].append(outcome["init"] + outcome["invoke"])
                row["wall"].append(outcome["wall"])

            for warm_up in (True, *([False] * runs)):  # the first round compiles the bytecode cache
                for module in modules:
                    method, path, route_key, body, staff, calls = {**REQUESTS, **FLOORS}[module]
                    event = api_event(method, path, route_key, body, staff)
                    base_env = {**env, "BASELINE_CALLS": ",".join(calls)}
                    if module in FLOORS:
                        handler_run = _once("bench_floor", event, base_env, str(baseline_dir))
                    else:
                        handler_run = _once(module, event, env)
                    baseline_run = _once("bench_baseline", event, base_env, str(baseline_dir))
                    if not warm_up:
                        record(module, handler_run)
                        record(f"baseline:{module}", baseline_run)
            return results
    finally:
        server.stop()


def run(runs: int = RUNS) -> dict[str, float]:
    modules = http_handlers()
    missing = set(modules) - set(REQUESTS)
    if missing:
        raise RuntimeError(f"no first request defined for {sorted(missing)}")
    measured = measure([*modules, *FLOORS], runs)
    results: dict[str, float] = {}
    ratios: dict[str, float] = {}
    for module in modules:
        handler_ms = statistics.median(measured[module]["total"]) * 1000
        baseline_ms = statistics.median(measured[f"baseline:{module}"]["total"]) * 1000
        ratios[module] = handler_ms / baseline_ms
        init_ms = statistics.median(measured[module]["init"]) * 1000
        invoke_ms = statistics.median(measured[module]["invoke"]) * 1000
        key = module.replace(".", "_")
        results[f"cold_start_ms_{key}"] = handler_ms
        results[f"cold_start_ratio_{key}"] = ratios[module]
        base_init_ms = statistics.median(measured[f"baseline:{module}"]["init"]) * 1000
        print(f"  {module:<24} init {init_ms:5.0f} + first call {invoke_ms:4.0f} = {handler_ms:5.0f} ms CPU"
              f"  baseline {base_init_ms:4.0f} + {baseline_ms - base_init_ms:4.0f} = {baseline_ms:4.0f} ms"
              f"  ratio {ratios[module]:.2f}")
    for floor in FLOORS:
        floor_ms = statistics.median(measured[floor]["total"]) * 1000
        baseline_ms = statistics.median(measured[f"baseline:{floor}"]["total"]) * 1000
        results[f"cold_start_floor_ratio_{floor.split(':')[1]}"] = floor_ms / baseline_ms
        print(f"  floor, {floor.split(':')[1]:<17} {floor_ms:5.0f} ms CPU  baseline {baseline_ms:4.0f} ms"
              f"  ratio {floor_ms / baseline_ms:.2f}")
    worst = max(ratios, key=ratios.__getitem__)
    baselines = [t for m in modules for t in measured[f"baseline:{m}"]["total"]]
    results["cold_start_ratio"] = ratios[worst]
    results["cold_start_ratio_wall"] = max(
        statistics.median(measured[m]["wall"]) / statistics.median(measured[f"baseline:{m}"]["wall"]) for m in modules
    )
    results["cold_start_baseline_ms"] = statistics.median(baselines) * 1000
    print(f"worst handler: {worst}")
    return {k: round(v, 3) for k, v in results.items()}


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    from bench.__main__ import _prepare_environment

    _prepare_environment()
    print(run(runs))
