"""Entry point of ``make bench``: run the suites, merge bench/results.json, print a table."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
SUITES = [
    "foundation",
    "projection_calls",
    "side_by_side",
    "imports",
    "cold_start",
    "load",
    "cost",
    "stream_length",
    "hot_stream",
    "scale_model",
    "local_endurance",
    "realtime",
    "privacy",
    "integrity",
    "archive",
]


def _prepare_environment() -> None:
    """Benchmarks run on in-process moto: never real AWS, never a stray endpoint."""
    for path in (ROOT / "functions", ROOT / "layers" / "cairn" / "python"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def merge(results: dict[str, float], path: Path = RESULTS) -> dict[str, float]:
    existing: dict[str, float] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
    existing.update(results)
    path.write_text(json.dumps(dict(sorted(existing.items())), indent=2) + "\n")
    return existing


def table(results: dict[str, float], goals: dict[str, str]) -> str:
    rows = [("metric", "value", "goal")]
    for name, value in results.items():
        shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}" if value % 1 else f"{value:,.0f}"
        rows.append((name, shown, goals.get(name, "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]}" for r in rows]
    lines.insert(1, "-" * (sum(widths) + 4))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", default=SUITES, help=f"suites to run (default: {' '.join(SUITES)})")
    args = parser.parse_args(argv)
    _prepare_environment()
    print(f"machine: {machine()}")
    for suite in args.suites:
        module = importlib.import_module(f"bench.{suite}")
        started = time.perf_counter()
        results = module.run()
        merge(results)
        print(f"\n[{suite}] ({time.perf_counter() - started:.1f} s)")
        print(table(results, getattr(module, "GOALS", {})))
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
