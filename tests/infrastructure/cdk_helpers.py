"""Helpers for the infrastructure tests: template navigation and docs/architecture.md parsing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Synth:
    outdir: Path
    template: dict[str, Any]
    metadata: dict[str, list[dict[str, Any]]]  # construct path -> metadata entries
    report: dict[str, Any]  # cdk validation (cdk-nag) report

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def logical_id(self, construct_path: str) -> str:
        """Logical id of the resource at ``construct_path`` (e.g. ``Cairn/EventStore/Events``)."""
        for entry in self.metadata.get(f"/{construct_path}/Resource", []) + self.metadata.get(
            f"/{construct_path}", []
        ):
            if entry["type"] == "aws:cdk:logicalId":
                return entry["data"]
        raise KeyError(construct_path)


def run_synth(outdir: Path, *, skip_layer: bool = True, extra_env: dict[str, str] | None = None,
              args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_OUTDIR": str(outdir), **(extra_env or {})}
    if skip_layer:
        env["CAIRN_SKIP_LAYER_BUILD"] = "1"
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "cdk_app" / "app.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def get_att(logical_id: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def flatten_join(value: Any, placeholder: str = "TOKEN") -> str:
    """Render ``Fn::Join`` of strings and intrinsics as text (intrinsics -> ``placeholder``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten_join(part, placeholder) for part in parts)
    return placeholder


# -- docs/architecture.md -------------------------------------------------------------------------

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def _section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if match is None:
        raise AssertionError(f"docs/architecture.md has no section {title!r}")
    return match.group(1)


def architecture_routes(markdown: str | None = None) -> dict[tuple[str, str], tuple[str, str]]:
    """``(method, path) -> (function, handler)`` from the "HTTP routes" table.

    Cells hold backticked routes like ``POST /orders/{id}/payment|shipment`` then ``/orders/{id}/x``:
    a path without a method inherits the previous one, ``a|b`` in the last segment expands.
    """
    markdown = markdown if markdown is not None else ARCHITECTURE.read_text()
    routes: dict[tuple[str, str], tuple[str, str]] = {}
    for line in _section(markdown, "HTTP routes → functions").splitlines():
        fn = re.search(r"\|\s*([A-Z]\w+) \(`([\w.]+)`\)", line)
        if fn is None:
            continue
        method = None
        for span in re.findall(r"`([^`]+)`", line[: fn.start()]):
            head, _, rest = span.partition(" ")
            if head in _METHODS:
                method, path = head, rest
            else:
                path = span
            assert method is not None, f"route without a method: {span!r}"
            prefix, _, last = path.rpartition("/")
            for alternative in last.split("|"):
                routes[(method, f"{prefix}/{alternative}")] = (fn.group(1), fn.group(2))
    return routes


def architecture_functions(markdown: str | None = None) -> dict[str, str]:
    """``function -> handler`` from the routes table and the consumers table."""
    markdown = markdown if markdown is not None else ARCHITECTURE.read_text()
    functions = {fn: handler for fn, handler in architecture_routes(markdown).values()}
    for title in ("Stream and queue consumers", "WebSocket routes → functions"):
        for line in _section(markdown, title).splitlines():
            fn = re.match(r"\|\s*([A-Z]\w+) \(`([\w.]+)`\)", line)
            if fn:
                functions[fn.group(1)] = fn.group(2)
    return functions


def architecture_metrics(markdown: str | None = None) -> set[str]:
    """Metric names of the EMF metrics table."""
    markdown = markdown if markdown is not None else ARCHITECTURE.read_text()
    section = next(
        _section(markdown, title)
        for title in re.findall(r"^## (Metrics.*)$", markdown, re.M)
    )
    names: set[str] = set()
    for line in section.splitlines():
        first = line.split("|")[1] if line.startswith("|") else ""
        names.update(re.findall(r"`(\w+)`", first))
    return names
