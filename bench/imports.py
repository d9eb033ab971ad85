"""Cold-start import cost of every Lambda handler, relative to ``import boto3`` alone.

For each handler module named in docs/architecture.md (``<context>.<module>.handler``), fresh
interpreters run ``python -X importtime -c "import <module>"`` with a Lambda-like environment
(fake resource names, ``AWS_LAMBDA_FUNCTION_NAME`` set, X-Ray tracing on as deployed) and
``PYTHONPATH=layers/cairn/python:functions``. A run's import time is the sum of the cumulative
times of the top-level imports the ``-c`` statement triggered (the interpreter's own start-up
imports are excluded). Each figure is the median of ``RUNS`` runs, interleaved with the
``import boto3`` runs so machine noise hits both alike.

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

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
RUNS = 5

GOALS = {"handler_import_ratio": "<= 1.5"}

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)\s*$")


def handler_modules(path: Path = ARCHITECTURE) -> list[str]:
    """Every ``<package>.<module>.handler`` in the conventions page, as module names."""
    found = re.findall(r"`([a-z_]+\.[a-z_]+)\.handler`", path.read_text())
    return sorted(set(found))


def lambda_env(pycache: str) -> dict[str, str]:
    """What a deployed function sees, with fake values (docs/architecture.md's variables)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    fake = {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "cairn" / "python"), str(ROOT / "functions")]),
        "PYTHONPYCACHEPREFIX": pycache,
        "PYTHONDONTWRITEBYTECODE": "",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": "Cairn-Bench-Function",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "EVENTS_TABLE": "cairn-events",
        "IDEMPOTENCY_TABLE": "cairn-idempotency",
        "SNAPSHOT_BUCKET": "cairn-snapshots",
        "ORDER_VIEW_TABLE": "cairn-order-view",
        "USER_ORDERS_TABLE": "cairn-user-orders",
        "ANALYTICS_TABLE": "cairn-analytics",
        "ACCOUNT_VIEW_TABLE": "cairn-account-view",
        "INVENTORY_TABLE": "cairn-inventory",
        "NOTIFICATIONS_TABLE": "cairn-notifications",
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
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
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
    """Seconds the import of ``module`` took: its top-level imports, start-up excluded."""
    rows = _importtime(f"import {module}", env)
    return sum(cum for _, cum, depth, name in rows if depth == 0 and name not in startup) / 1e6


def startup_modules(env: dict[str, str]) -> set[str]:
    return {name for *_, name in _importtime("pass", env)}


def heaviest(module: str, env: dict[str, str], startup: set[str], limit: int = 15) -> list[tuple[float, str]]:
    """The largest subtrees (depth <= 2) of one import of ``module``: where the time goes."""
    rows = _importtime(f"import {module}", env)
    picked = [(cum / 1000, "  " * depth + name) for _, cum, depth, name in rows if depth <= 2 and name not in startup]
    return sorted(picked, reverse=True)[:limit]


def measure(modules: list[str], runs: int = RUNS) -> tuple[float, dict[str, float]]:
    """(median boto3 seconds, {module: median seconds})."""
    with tempfile.TemporaryDirectory(prefix="cairn-pycache-") as pycache:
        env = lambda_env(pycache)
        startup = startup_modules(env)
        for module in ["boto3", *modules]:  # warm-up: compile into the cache prefix
            import_seconds(module, env, startup)
        boto3_runs: list[float] = []
        module_runs: dict[str, list[float]] = {m: [] for m in modules}
        for _ in range(runs):
            boto3_runs.append(import_seconds("boto3", env, startup))
            for n, module in enumerate(modules):
                module_runs[module].append(import_seconds(module, env, startup))
                if n % 4 == 3:  # boto3 spread over the round, like the handlers
                    boto3_runs.append(import_seconds("boto3", env, startup))
    return statistics.median(boto3_runs), {m: statistics.median(v) for m, v in module_runs.items()}


def run(runs: int = RUNS) -> dict[str, float]:
    modules = handler_modules()
    boto3_s, per_module = measure(modules, runs)
    ratios = {m: s / boto3_s for m, s in per_module.items()}
    worst = max(ratios, key=ratios.__getitem__)
    print(f"import boto3: {boto3_s * 1000:.0f} ms (median of {runs}+)")
    for module in sorted(ratios, key=ratios.__getitem__, reverse=True):
        print(f"  {module:<28} {per_module[module] * 1000:7.0f} ms  ratio {ratios[module]:.2f}")
    print(f"worst handler: {worst}")
    results = {
        "boto3_import_ms": boto3_s * 1000,
        "handler_import_ratio": ratios[worst],
        "handler_import_worst_ms": per_module[worst] * 1000,
    }
    for module, ratio in ratios.items():
        results["import_ratio_" + module.replace(".", "_")] = ratio
    return {k: round(v, 3) for k, v in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.split("\n")[0])
    parser.add_argument("--detail", metavar="MODULE", help="print the heaviest imports below MODULE")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)
    if args.detail:
        with tempfile.TemporaryDirectory(prefix="cairn-pycache-") as pycache:
            env = lambda_env(pycache)
            startup = startup_modules(env)
            import_seconds(args.detail, env, startup)
            for ms, name in heaviest(args.detail, env, startup):
                print(f"{ms:8.1f} ms  {name}")
        return 0
    print(run(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
