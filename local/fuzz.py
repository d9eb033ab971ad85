"""``python -m local.fuzz`` (``make fuzz``): schemathesis against the local runtime's /openapi.json.

Uses a runtime already answering on ``--port`` (``make dev``) or starts one in this process (the
synthesized template on moto, state in ``.local/fuzz/``), asks ``POST /_local/token`` for a staff
token and runs the schemathesis CLI with it, every phase (examples, coverage, fuzzing, stateful),
a bounded number of examples per operation. A run fails on:

- any 5xx (``not_a_server_error``);
- a response the document does not describe: status, content type, headers, body schema;
- an error that is not RFC 9457 problem+json (``problem_details_on_errors``, defined here and
  loaded by schemathesis as a hook module) — except API Gateway's own answers, which never reach
  a function and which an HTTP API cannot reshape: ``{"message": ...}`` as ``application/json``
  for 401/403 (the JWT authorizer), 404 (no route), 413 (payload limit) and 429 (throttling).

Before the run, a few entities are made through the API (orders in CREATED, PAID and SHIPPED,
an account with money, all the fuzzer's) and handed to schemathesis as a dictionary for the
``{id}`` path parameters (80 % of the cases; the rest are generated ids): without them every
command on an existing order or account stops at 404 and the deeper rules go untested.

Exit status: schemathesis' (0 = nothing found). Reports (JUnit XML) go to ``.local/fuzz/report``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local.seed import seed_catalog

__all__ = [
    "DEFAULT_CHECKS",
    "GATEWAY_STATUSES",
    "main",
    "problem_details_on_errors",
    "run_schemathesis",
    "staff_token",
    "start_runtime",
]

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = REPO / ".local" / "fuzz"
CHECK_NAME = "problem_details_on_errors"
DEFAULT_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    CHECK_NAME,
)
GATEWAY_STATUSES = frozenset({401, 403, 404, 413, 429})
PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail"})


# -- the check (registered when schemathesis loads this module as its hooks) -----------------------
def _header(headers: Any, name: str) -> str:
    value = headers.get(name) or headers.get(name.title()) or ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)


def gateway_answer(status: int, content_type: str, body: Any) -> bool:
    """API Gateway's own error (no function ran): ``{"message": "..."}``, application/json."""
    return (
        status in GATEWAY_STATUSES
        and content_type.split(";")[0].strip() == "application/json"
        and isinstance(body, dict)
        and set(body) == {"message"}
        and isinstance(body["message"], str)
    )


def problem_details_on_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is ``application/problem+json`` with type, title, status (= the HTTP status)
    and detail (RFC 9457, API.md "Errors")."""
    status = response.status_code
    if status < 400:
        return None
    content_type = _header(response.headers, "content-type")
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    if gateway_answer(status, content_type, body):
        return None
    if content_type.split(";")[0].strip() != "application/problem+json":
        raise AssertionError(f"{status} answered as {content_type or 'no content type'}, not application/problem+json")
    if not isinstance(body, dict) or not PROBLEM_FIELDS <= set(body):
        raise AssertionError(f"{status} problem lacks {sorted(PROBLEM_FIELDS - set(body or {}))}: {body!r}")
    if body["status"] != status:
        raise AssertionError(f"problem says status {body['status']}, the response is {status}")
    if not str(body["type"]).startswith(("https://", "http://")) and body["type"] != "about:blank":
        raise AssertionError(f"problem type {body['type']!r} is not a URI")
    return True


if os.environ.get("SCHEMATHESIS_HOOKS") == __name__:  # loaded by the schemathesis CLI
    import schemathesis

    schemathesis.check(problem_details_on_errors)


# -- the runtime and the token --------------------------------------------------------------------------
def _request(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def staff_token(base_url: str, sub: str = "fuzzer") -> str:
    status, body = _request("POST", f"{base_url}/_local/token", {"sub": sub, "groups": ["staff"]})
    if status != 200 or not isinstance(body, dict) or "token" not in body:
        raise RuntimeError(f"{base_url} is not a Cairn local runtime (POST /_local/token answered {status})")
    return str(body["token"])


def _authorized(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def seed_data(base_url: str, token: str) -> dict[str, list[str]]:
    """Orders in CREATED, PAID and SHIPPED and an account with money, made through the API."""
    seed_catalog(base_url, token, {"SKU-FUZZ": ("Fuzz item", "9.99", "USD")})
    orders: list[str] = []
    for steps in ([], ["payment"], ["payment", "shipment"]):
        status, created = _authorized(
            "POST", f"{base_url}/orders", token,
            {"items": [{"sku": "SKU-FUZZ", "quantity": 2, "unit_price": "9.99"}], "currency": "USD"},
        )
        if status != 201:
            raise RuntimeError(f"seeding an order failed: {status} {created}")
        order_id = created["order_id"]
        bodies = {"payment": {"payment_id": f"pay-{order_id[-8:]}", "amount": created["total"]}, "shipment": {"tracking": "FUZZ1"}}
        for step in steps:
            status, answer = _authorized("POST", f"{base_url}/orders/{order_id}/{step}", token, bodies[step])
            if status != 200:
                raise RuntimeError(f"seeding {step} of {order_id} failed: {status} {answer}")
        orders.append(order_id)
    status, account = _authorized("POST", f"{base_url}/accounts", token, {"currency": "USD"})
    if status != 201:
        raise RuntimeError(f"seeding an account failed: {status} {account}")
    _authorized("POST", f"{base_url}/accounts/{account['account_id']}/deposits", token, {"amount": "500.00"})
    return {"order_ids": orders, "account_ids": [account["account_id"]]}


def write_config(path: Path, data: dict[str, list[str]], probability: float = 0.8) -> Path:
    """A schemathesis.toml binding ``{id}`` of the order and account routes to the seeded ids."""
    lines = ["[dictionaries]"]
    for name, values in data.items():
        lines.append(f"{name} = {{ values = {json.dumps(values)} }}")
    for name, prefix in (("order_ids", "orders"), ("account_ids", "accounts")):
        lines += [
            "",
            "[[operations]]",
            f"include-path-regex = '^/{prefix}/\\{{id\\}}'",  # a TOML literal string
            f'parameters = {{ "path.id" = {{ dictionary = "{name}", probability = {probability} }} }}',
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def running_at(base_url: str) -> bool:
    """A Cairn local runtime answers there (health and the local token endpoint)."""
    try:
        status, _ = _request("GET", f"{base_url}/health", timeout=2.0)
        if status != 200:
            return False
        staff_token(base_url)
        return True
    except (OSError, RuntimeError):
        return False


def start_runtime(state_dir: Path = STATE_DIR, *, port: int = 0) -> Any:
    """The synthesized template on moto, in this process (``runtime.stop()`` ends it)."""
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    from local.runtime import LocalRuntime, RuntimeOptions
    from local.synth import synthesize
    from local.template import Template

    template_path, _ = synthesize(REPO, REPO / ".local" / "cdk.out", "Cairn")
    options = RuntimeOptions(
        port=port,
        state_dir=state_dir,
        echo_function_logs=False,
        access_log=False,
        max_concurrency=4,
    )
    return LocalRuntime(Template.load(template_path, "Cairn"), options).start()


# -- schemathesis ----------------------------------------------------------------------------------------
def schemathesis_command(
    base_url: str,
    token: str,
    *,
    max_examples: int,
    seed: int | None,
    workers: int,
    phases: str | None,
    checks: tuple[str, ...],
    report_dir: Path,
    extra: list[str],
    config_file: Path | None = None,
) -> list[str]:
    command = [sys.executable, "-m", "schemathesis.cli"]
    if config_file is not None:
        command += ["--config-file", str(config_file)]
    command += [
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(max_examples),
        "--workers",
        str(workers),
        "--request-timeout",
        "30",
        "--wait-for-schema",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    if phases:
        command += ["--phases", phases]
    return command + extra


def run_schemathesis(base_url: str, token: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, with this module as its hooks (the problem+json check)."""
    report_dir = Path(options.pop("report_dir", STATE_DIR / "report"))
    report_dir.mkdir(parents=True, exist_ok=True)
    capture = options.pop("capture", False)
    command = schemathesis_command(base_url, token, report_dir=report_dir, **options)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "local.fuzz", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=REPO, env=env, text=True, capture_output=capture, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")),
                        help="use the runtime on this port if one runs there (default $PORT or 3000)")
    parser.add_argument("--url", help="fuzz this base URL (a running local runtime) instead")
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "30")),
                        help="test cases per operation and phase (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--phases", default=None, help="examples,coverage,fuzzing,stateful (default: all)")
    parser.add_argument("--checks", default=",".join(DEFAULT_CHECKS))
    parser.add_argument("--report-dir", type=Path, default=STATE_DIR / "report",
                        help="JUnit report and the generated schemathesis.toml (default .local/fuzz/report)")
    parser.add_argument("extra", nargs="*", help="more schemathesis options (after --)")
    args = parser.parse_args(argv)
    os.chdir(REPO)

    runtime = None
    base_url = (args.url or f"http://127.0.0.1:{args.port}").rstrip("/")
    if not running_at(base_url):
        if args.url:
            print(f"fuzz: no Cairn local runtime at {args.url}", file=sys.stderr)
            return 2
        print("fuzz: starting the local runtime (the synthesized template on moto) ...", file=sys.stderr, flush=True)
        started = time.time()
        runtime = start_runtime()
        base_url = runtime.base_url
        print(f"fuzz: runtime up at {base_url} in {time.time() - started:.1f} s", file=sys.stderr, flush=True)
    try:
        token = staff_token(base_url)
        config = write_config(args.report_dir / "schemathesis.toml", seed_data(base_url, token))
        print(f"fuzz: schemathesis against {base_url}/openapi.json as staff, {args.max_examples} examples",
              file=sys.stderr, flush=True)
        result = run_schemathesis(
            base_url,
            token,
            config_file=config,
            max_examples=args.max_examples,
            seed=args.seed,
            workers=args.workers,
            phases=args.phases,
            checks=tuple(c for c in args.checks.split(",") if c),
            report_dir=args.report_dir,
            extra=args.extra,
        )
        return result.returncode
    finally:
        if runtime is not None:
            runtime.stop()


if __name__ == "__main__":
    sys.exit(main())
