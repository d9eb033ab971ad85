"""Synthesize the CDK app for local use, and reuse the result while its inputs are unchanged.

The app is synthesized with asset staging disabled (``aws:cdk:disable-asset-staging``, what
SAM CLI uses for local debugging), so each function's and layer's ``aws:asset:path`` metadata
points at the source directory: an edited handler runs on the next cold start, no re-synth.
The layer's pip build is skipped (``CAIRN_SKIP_LAYER_BUILD``): locally the layer is the
``cairn`` package from the repository and its dependencies come from the virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["SynthError", "find_template", "synthesize"]

CONTEXT = {"aws:cdk:disable-asset-staging": True, "aws:cdk:enable-asset-metadata": True}
_INPUT_DIRS = ("cdk_app",)
_INPUT_FILES = ("cdk.json", "cdk.context.json")


class SynthError(Exception):
    """The CDK app could not be synthesized."""


def _newest_input(repo: Path) -> float:
    newest = 0.0
    for name in _INPUT_FILES:
        p = repo / name
        if p.exists():
            newest = max(newest, p.stat().st_mtime)
    for d in _INPUT_DIRS:
        for dirpath, dirnames, filenames in os.walk(repo / d):
            dirnames[:] = [x for x in dirnames if x != "__pycache__"]
            for f in filenames:
                if f.endswith((".py", ".json")):
                    newest = max(newest, (Path(dirpath) / f).stat().st_mtime)
    return newest


def find_template(outdir: Path, stack: str) -> Path:
    """The template of ``stack`` in a cloud assembly (via its manifest)."""
    manifest = outdir / "manifest.json"
    if manifest.exists():
        artifacts = json.loads(manifest.read_text()).get("artifacts", {})
        for art_id, art in artifacts.items():
            if art.get("type") != "aws:cloudformation:stack":
                continue
            props = art.get("properties", {})
            if stack in (art_id, props.get("stackName"), art.get("displayName")):
                return outdir / props["templateFile"]
    candidate = outdir / f"{stack}.template.json"
    if candidate.exists():
        return candidate
    raise SynthError(f"no template for stack {stack!r} in {outdir}")


def synthesize(repo: Path, outdir: Path, stack: str, *, force: bool = False) -> tuple[Path, bool]:
    """Path of the stack's template, and whether it was (re)synthesized now.

    Holds an exclusive lock on the output directory: two runtimes (or test workers) starting at
    once share one synth instead of writing the same cloud assembly together.
    """
    import fcntl

    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir.parent / f".{outdir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _synthesize(repo, outdir, stack, force=force)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _synthesize(repo: Path, outdir: Path, stack: str, *, force: bool) -> tuple[Path, bool]:
    stamp = outdir / ".local-synth"
    if not force and stamp.exists():
        try:
            template = find_template(outdir, stack)
        except SynthError:
            template = None
        if template is not None and stamp.stat().st_mtime >= _newest_input(repo):
            return template, False
    cdk_json = repo / "cdk.json"
    context: dict[str, object] = {}
    if cdk_json.exists():
        context.update(json.loads(cdk_json.read_text()).get("context", {}))
    ctx_file = repo / "cdk.context.json"
    if ctx_file.exists():
        context.update(json.loads(ctx_file.read_text()))
    context.update(CONTEXT)
    env = dict(os.environ)
    env.update({
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CAIRN_SKIP_LAYER_BUILD": "1",
        "CDK_DEFAULT_ACCOUNT": env.get("CDK_DEFAULT_ACCOUNT", "123456789012"),
        "CDK_DEFAULT_REGION": env.get("CDK_DEFAULT_REGION", "us-east-1"),
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "JSII_DEPRECATED": "quiet",
    })
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    app = repo / "cdk_app" / "app.py"
    if not app.exists():
        raise SynthError(f"{app} does not exist")
    proc = subprocess.run([sys.executable, str(app)], cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SynthError(f"cdk synth failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    stamp.write_text(f"{time.time() - started:.1f}s\n")
    return find_template(outdir, stack), True
