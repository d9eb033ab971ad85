"""Cold-start import cost of every Lambda handler, relative to ``import boto3`` alone.

For each handler module named in docs/architecture.md (``<context>.<module>.handler``), fresh
interpreters run ``python -X importtime -c "import <module>"`` with a Lambda-like environment
(fake resource names, ``AWS_LAMBDA_FUNCTION_NAME`` and ``LAMBDA_TASK_ROOT`` set, X-Ray tracing on
as deployed) and
``PYTHONPATH=layers/cairn/python:functions``. A run's import time is the sum of the cumulative
times of the top-level imports the ``-c`` statement triggered (the interpreter's own start-up
imports are excluded). Each figure is the median of ``RUNS`` runs, interleaved with the
``import boto3`` runs so machine noise hits both alike.

The interpreter sees what a deployed function sees, not the development virtualenv: ``python -S``
(no site-packages) with a path of the function code, the cairn package, the layer's
distributions (layers/requirements.txt and their dependency closure) and the runtime-provided
boto3 closure, each linked from the virtualenv (same pinned versions). The dev venv holds
hundreds of distributions more, which would make ``pydantic``'s plugin scan and the X-Ray SDK's
``patch_all`` (it patches every library it finds installed: requests, httpx, ...) look slower
than on Lambda.

Bytecode is cached (``PYTHONPYCACHEPREFIX`` in a temp dir, one warm-up run per module): what is
measured is import work, not compiling sources, for handlers and boto3 alike.

``python -m bench.imports --detail orders.api`` prints the heaviest imports below a handler.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
RUNS = 5

GOALS = {"handler_import_ratio": "<= 1.5"}

# What any HTTP handler built the way the project asks (Powertools resolver with validation,
# Logger, Metrics) imports before a line of Cairn: the floor under the HTTP handlers; and the
# same with each tracing option (issue 17: the X-Ray SDK via Powertools' Tracer, or OpenTelemetry
# with the botocore instrumentation, an OTLP exporter and the X-Ray propagator). The options'
# packages are not in the layer: they are linked for the floors only (OPTION_REQUIREMENTS).
_POWERTOOLS_HTTP = (
    "from aws_lambda_powertools import Logger, Metrics\n"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
    "from aws_lambda_powertools.event_handler.openapi.params import Path\n"
    "Logger(); Metrics(); APIGatewayHttpResolver(enable_validation=True)\n"
)
FLOORS = {
    "powertools_http": _POWERTOOLS_HTTP,  # tracing: Lambda's active tracing, no SDK (chosen)
    "powertools_http_xray_sdk": _POWERTOOLS_HTTP + "from aws_lambda_powertools import Tracer\nTracer()\n",
    "powertools_http_otel": _POWERTOOLS_HTTP + (
        "from opentelemetry import trace, propagate\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
        "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter\n"
        "from opentelemetry.propagators.aws import AwsXRayPropagator\n"
        "from opentelemetry.instrumentation.botocore import BotocoreInstrumentor\n"
        "provider = TracerProvider(); provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))\n"
        "trace.set_tracer_provider(provider); propagate.set_global_textmap(AwsXRayPropagator())\n"
        "BotocoreInstrumentor().instrument()\n"
    ),
}
OPTION_REQUIREMENTS = (
    "aws-xray-sdk",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-botocore",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-propagator-aws-xray",
)

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)\s*$")


def handler_modules(path: Path = ARCHITECTURE) -> list[str]:
    """Every ``<package>.<module>.handler`` in the conventions page, as module names."""
    found = re.findall(r"`([a-z_]+\.[a-z_]+)\.handler`", path.read_text())
    return sorted(set(found))


LAYER_REQUIREMENTS = ROOT / "layers" / "requirements.txt"
RUNTIME_PROVIDED = ("boto3",)  # the Lambda Python runtime ships boto3 and its dependencies


def _closure(requirements: list[str]) -> list[Any]:
    """Installed distributions of ``requirements`` and everything they require (markers, extras)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found: dict[str, Any] = {}
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = requirement.name.lower().replace("_", "-")
        dist = metadata.distribution(requirement.name)
        extras = sorted(requirement.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in found:
            continue
        found[key] = dist
        for extra_name in ["", *extras]:
            pending.extend((Requirement(r), extra_name) for r in dist.requires or ())
    unique: dict[str, Any] = {}
    for dist in found.values():
        unique[dist.metadata["Name"].lower()] = dist
    return list(unique.values())


def lambda_site(target: Path, extra: tuple[str, ...] = ()) -> Path:
    """A site dir of links to the layer's and the runtime's distributions (and nothing else;
    ``extra``: more requirements, for the tracing options' floors)."""
    lines = [ln.split("#")[0].strip() for ln in LAYER_REQUIREMENTS.read_text().splitlines()]
    requirements = [ln for ln in lines if ln] + list(RUNTIME_PROVIDED) + list(extra)
    target.mkdir(parents=True, exist_ok=True)
    for dist in _closure(requirements):
        base = Path(str(dist.locate_file("")))
        tops = set()
        for file in dist.files or ():
            first = file.parts[0]
            if first in ("..", "__pycache__") or first.endswith(".data"):
                continue
            tops.add(first)
        for top in tops:
            link = target / top
            if not link.exists() and (base / top).exists():
                link.symlink_to(base / top)
    return target


def lambda_env(pycache: str, site: Path | None = None) -> dict[str, str]:
    """What a deployed function sees, with fake values (docs/architecture.md's variables)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    path = [str(ROOT / "functions"), str(ROOT / "layers" / "cairn" / "python")]
    if site is not None:
        path.append(str(site))
    fake = {
        "PYTHONPATH": os.pathsep.join(path),
        "CAIRN_BENCH_NO_SITE": "1" if site is not None else "",
        "PYTHONPYCACHEPREFIX": pycache,
        "PYTHONDONTWRITEBYTECODE": "",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # what the Lambda runtime sets (the X-Ray SDK picks its Lambda sampler on LAMBDA_TASK_ROOT)
        "AWS_LAMBDA_FUNCTION_NAME": "Cairn-Bench-Function",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions"),
        "TZ": ":UTC",
        "EVENTS_TABLE": "cairn-events",
        "IDEMPOTENCY_TABLE": "cairn-idempotency",
        "SNAPSHOT_BUCKET": "cairn-snapshots",
        "ORDER_VIEW_TABLE": "cairn-order-view",
        "USER_ORDERS_TABLE": "cairn-user-orders",
        "ANALYTICS_TABLE": "cairn-analytics",
        "ACCOUNT_VIEW_TABLE": "cairn-account-view",
        "INVENTORY_TABLE": "cairn-inventory",
        "NOTIFICATIONS_TABLE": "cairn-notifications",
        "CATALOG_TABLE": "cairn-catalog",
        "EVENT_BUS_NAME": "cairn-bus",
        "PARKED_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cairn-parked",
        "SNAPSHOT_EVERY": "order=50,account=100",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Cairn",
        "LOG_LEVEL": "INFO",
    }
    return {**keep, **fake}


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """``-X importtime`` lines -> (self_us, cumulative_us, depth, module), in log order."""
    rows = []
    for line in stderr.splitlines():
        match = _LINE.match(line)
        if match:
            self_us, cumulative, indent, name = match.groups()
            rows.append((int(self_us), int(cumulative), len(indent) // 2, name))
    return rows


def _importtime(statement: str, env: dict[str, str]) -> list[tuple[int, int, int, str]]:
    isolated = ["-S"] if env.get("CAIRN_BENCH_NO_SITE") else []
    proc = subprocess.run(
        [sys.executable, *isolated, "-X", "importtime", "-c", statement],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{statement!r} failed:\n{proc.stderr[-2000:]}")
    return parse_importtime(proc.stderr)


def import_seconds(module: str, env: dict[str, str], startup: set[str]) -> float:
    """Seconds the import of ``module`` (or a floor statement) took: its top-level imports,
    start-up excluded."""
    rows = _importtime(FLOORS.get(module, f"import {module}"), env)
    return sum(cum for _, cum, depth, name in rows if depth == 0 and name not in startup) / 1e6


def import_cpu_seconds(module: str, env: dict[str, str]) -> float:
    """CPU seconds the import of ``module`` (or a floor statement) took in a fresh interpreter:
    less disturbed than wall time by other load on a shared machine."""
    statement = FLOORS.get(module, f"import {module}")
    code = f"import time\n_c = time.process_time()\n{statement}\nprint(time.process_time() - _c)"
    isolated = ["-S"] if env.get("CAIRN_BENCH_NO_SITE") else []
    proc = subprocess.run([sys.executable, *isolated, "-c", code], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def startup_modules(env: dict[str, str]) -> set[str]:
    return {name for *_, name in _importtime("pass", env)}


def heaviest(module: str, env: dict[str, str], startup: set[str], limit: int = 15) -> list[tuple[float, str]]:
    """The largest subtrees (depth <= 2) of one import of ``module``: where the time goes."""
    rows = _importtime(f"import {module}", env)
    picked = [(cum / 1000, "  " * depth + name) for _, cum, depth, name in rows if depth <= 2 and name not in startup]
    return sorted(picked, reverse=True)[:limit]


def measure(
    modules: list[str], runs: int = RUNS, cpu: dict[str, list[float]] | None = None
) -> tuple[list[float], dict[str, list[float]]]:
    """(boto3 seconds per run, {module: seconds per run}); CPU seconds into ``cpu`` if given."""
    with tempfile.TemporaryDirectory(prefix="cairn-pycache-") as pycache:
        env = lambda_env(pycache, lambda_site(Path(pycache) / "site"))
        floor_env = lambda_env(pycache, lambda_site(Path(pycache) / "options", OPTION_REQUIREMENTS))
        startup = startup_modules(env)

        def env_of(module: str) -> dict[str, str]:
            return floor_env if module in FLOORS else env

        for module in ["boto3", *modules]:  # warm-up: compile into the cache prefix
            import_seconds(module, env_of(module), startup)
        boto3_runs: list[float] = []
        module_runs: dict[str, list[float]] = {m: [] for m in modules}
        for _ in range(runs):
            boto3_runs.append(import_seconds("boto3", env, startup))
            if cpu is not None:
                cpu.setdefault("boto3", []).append(import_cpu_seconds("boto3", env))
            for n, module in enumerate(modules):
                module_runs[module].append(import_seconds(module, env_of(module), startup))
                if cpu is not None:
                    cpu.setdefault(module, []).append(import_cpu_seconds(module, env_of(module)))
                if n % 4 == 3:  # boto3 spread over the round, like the handlers
                    boto3_runs.append(import_seconds("boto3", env, startup))
    return boto3_runs, module_runs


def run(runs: int = RUNS) -> dict[str, float]:
    modules = handler_modules()
    cpu: dict[str, list[float]] = {}
    boto3_runs, module_runs = measure([*modules, *FLOORS], runs, cpu)
    boto3_cpu = statistics.median(cpu.pop("boto3"))
    cpu_ratios = {m: statistics.median(v) / boto3_cpu for m, v in cpu.items()}
    floors = {name: module_runs.pop(name) for name in FLOORS}
    boto3_s = statistics.median(boto3_runs)
    per_module = {m: statistics.median(v) for m, v in module_runs.items()}
    ratios = {m: s / boto3_s for m, s in per_module.items()}
    # the same from each one's fastest run (the least disturbed by other load on the machine)
    fastest = {m: min(v) / min(boto3_runs) for m, v in module_runs.items()}
    worst = max(ratios, key=ratios.__getitem__)
    print(f"import boto3: {boto3_s * 1000:.0f} ms (median of {len(boto3_runs)}), fastest {min(boto3_runs) * 1000:.0f} ms")
    for module in sorted(ratios, key=ratios.__getitem__, reverse=True):
        print(f"  {module:<28} {per_module[module] * 1000:7.0f} ms  ratio {ratios[module]:.2f}"
              f"  (fastest runs: {fastest[module]:.2f})")
    print(f"worst handler: {worst}")
    results = {
        "boto3_import_ms": boto3_s * 1000,
        "handler_import_ratio": ratios[worst],
        "handler_import_ratio_fastest": max(fastest.values()),
        "handler_import_worst_ms": per_module[worst] * 1000,
    }
    for module, ratio in ratios.items():
        results["import_ratio_" + module.replace(".", "_")] = ratio
    # the same in CPU time (what this machine's other load disturbs least)
    results["boto3_import_cpu_ms"] = boto3_cpu * 1000
    results["handler_import_ratio_cpu"] = max(cpu_ratios[m] for m in modules)
    for name in FLOORS:
        results[f"import_floor_ratio_cpu_{name}"] = cpu_ratios[name]
    print(f"CPU time: import boto3 {boto3_cpu * 1000:.0f} ms; worst handler "
          f"{max(modules, key=cpu_ratios.__getitem__)} {results['handler_import_ratio_cpu']:.2f}; floors "
          + ", ".join(f"{n} {cpu_ratios[n]:.2f}" for n in FLOORS))
    for name, seconds in floors.items():
        results[f"import_floor_ratio_{name}"] = statistics.median(seconds) / boto3_s
        print(f"  floor {name:<22} {statistics.median(seconds) * 1000:7.0f} ms  ratio {results[f'import_floor_ratio_{name}']:.2f}")
    return {k: round(v, 3) for k, v in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.split("\n")[0])
    parser.add_argument("--detail", metavar="MODULE", help="print the heaviest imports below MODULE")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--venv", action="store_true", help="--detail with the whole dev virtualenv on the path")
    args = parser.parse_args(argv)
    if args.detail:
        with tempfile.TemporaryDirectory(prefix="cairn-pycache-") as pycache:
            env = lambda_env(pycache, None if args.venv else lambda_site(Path(pycache) / "site"))
            startup = startup_modules(env)
            import_seconds(args.detail, env, startup)
            for ms, name in heaviest(args.detail, env, startup):
                print(f"{ms:8.1f} ms  {name}")
        return 0
    print(run(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
