"""Build the Python Lambda layer without Docker, for the Lambda architecture, with a content cache.

``pip install --platform manylinux2014_aarch64 --only-binary=:all: --python-version 3.13`` fetches
the wheels Lambda will load (pydantic_core's ``.so`` must be aarch64/cp313, not this machine's), and
the ``cairn`` package is copied next to them. Boto3/botocore are shipped, pinned (layers/requirements.txt,
the same versions the tests run): the runtime's own SDK lags releases and the snapshot store's S3
conditional writes (``IfMatch``/``IfNoneMatch`` on PutObject) need a recent botocore — see
docs/decisions.md. ``exclude`` can still drop distributions a runtime provides. The result lives in ``layers/build/<name>-<hash>/python`` where the hash covers every
input, so a repeated synth reuses it in milliseconds; the pip part is cached on its own
(``layers/build/.deps-<name>-<hash>``, keyed by the requirements), so editing the ``cairn`` package
costs a copy, not a pip run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = [
    "BUNDLING_RECIPE",
    "packages_in",
    "LayerBuild",
    "LayerBuildError",
    "RUNTIME_PROVIDED",
    "build_layer",
    "dependencies_dir",
    "dependencies_hash",
    "layer_inputs_hash",
    "skip_layer_build",
]

# Bump when the recipe below changes in a way that alters the output (invalidates every cache).
BUNDLING_RECIPE = "4"

# Distributions the Lambda Python runtime already ships (boto3 and its dependency closure): what a
# layer relying on the runtime's SDK would exclude. Cairn's layer ships its own pinned SDK instead.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six"})

# A replaced build is deleted only after this long: a concurrent synth may still be copying it.
STALE_AFTER_SECONDS = 15 * 60

_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class LayerBuildError(RuntimeError):
    """pip could not produce the layer (network, an unavailable wheel for the platform, ...)."""


@dataclass(frozen=True)
class LayerBuild:
    """What goes into a layer: pinned requirements + local packages, for one platform/runtime."""

    name: str
    requirements: Path
    packages: tuple[Path, ...]  # packages (directories) or modules (files) copied into python/
    platform: str = "manylinux2014_aarch64"
    python_version: str = "3.13"
    exclude: frozenset[str] = field(default=frozenset())


def skip_layer_build(context_value: object = None) -> bool:
    """True when the caller asked for a synth without the pip build (tests, the local runtime).

    ``CAIRN_SKIP_LAYER_BUILD=1`` or ``--context bundle=false``; the default builds the layer.
    """
    if os.environ.get("CAIRN_SKIP_LAYER_BUILD", "").strip().lower() in {"1", "true", "yes"}:
        return True
    return str(context_value).strip().lower() in {"false", "0", "no"}


def _source_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (_IGNORED_PARTS & set(path.parts)) and path.suffix != ".pyc":
            files.append(path)
    return files


def dependencies_hash(build: LayerBuild) -> str:
    """Hash of what pip installs: requirements, platform, Python version, pruning, recipe."""
    digest = hashlib.sha256()
    for part in (BUNDLING_RECIPE, build.name, build.platform, build.python_version, *sorted(build.exclude)):
        digest.update(part.encode() + b"\0")
    digest.update(build.requirements.read_bytes())
    return digest.hexdigest()


def layer_inputs_hash(build: LayerBuild) -> str:
    """Hash of everything that determines the layer's bytes (inputs, not outputs: cheap to compute)."""
    digest = hashlib.sha256(dependencies_hash(build).encode())
    for package in build.packages:
        for path in _source_files(package):
            digest.update(str(path.relative_to(package.parent)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def packages_in(directory: Path) -> tuple[Path, ...]:
    """Everything importable at the top of ``directory`` (what a layer's ``python/`` should hold)."""
    return tuple(
        sorted(
            p for p in directory.iterdir()
            if p.name not in _IGNORED_PARTS and not p.name.endswith((".egg-info", ".dist-info", ".pyc"))
            and (p.is_dir() or p.suffix == ".py")
        )
    )


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _prune_runtime_provided(target: Path, exclude: frozenset[str]) -> list[str]:
    """Delete the files of the excluded distributions (read from their RECORD) from ``target``."""
    removed = []
    excluded = {_normalize(name) for name in exclude}
    for dist in metadata.distributions(path=[str(target)]):
        if _normalize(dist.metadata["Name"]) not in excluded:
            continue
        removed.append(dist.metadata["Name"])
        for file in dist.files or ():
            path = (target / file).resolve()
            if target.resolve() in path.parents and path.is_file():
                path.unlink()
        info_dir = Path(str(dist._path))  # type: ignore[attr-defined]  # the .dist-info directory
        shutil.rmtree(info_dir, ignore_errors=True)
    # Drop directories the deletions emptied (e.g. botocore/, dateutil/).
    for directory in sorted((p for p in target.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(directory.iterdir()):
            directory.rmdir()
    return removed


def _pip_install(build: LayerBuild, target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--platform", build.platform,
        "--only-binary=:all:",
        "--python-version", build.python_version,
        "--implementation", "cp",
        "--target", str(target),
        "--requirement", str(build.requirements),
        "--no-compile",  # .pyc for this interpreter would be useless on Lambda's
        "--quiet",
        "--disable-pip-version-check",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LayerBuildError(
            f"pip could not build layer {build.name!r} for {build.platform}/cp{build.python_version}:\n"
            f"{result.stderr.strip()[-4000:]}"
        )


def _publish(staging: Path, final: Path) -> None:
    """Atomically move a finished build into place (a concurrent identical build may win)."""
    try:
        staging.rename(final)
    except OSError:
        if not final.is_dir():  # lost a race only if the winner finished
            raise


def _remove_stale(cache_root: Path, pattern: str, keep: Path) -> None:
    """Delete other builds matching ``pattern`` once they are old enough not to be in use."""
    horizon = time.time() - STALE_AFTER_SECONDS
    for stale in cache_root.glob(pattern):
        if stale != keep and stale.is_dir() and stale.stat().st_mtime < horizon:
            shutil.rmtree(stale, ignore_errors=True)


def dependencies_dir(build: LayerBuild, cache_root: Path) -> Path:
    """Where the pip-installed (and pruned) dependencies of ``build`` are cached."""
    return cache_root / f".deps-{build.name}-{dependencies_hash(build)[:16]}"


def _build_dependencies(build: LayerBuild, cache_root: Path) -> Path:
    deps = dependencies_dir(build, cache_root)
    if deps.is_dir():
        return deps
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{build.name}-", dir=cache_root))
    try:
        _pip_install(build, staging / "python")
        _prune_runtime_provided(staging / "python", build.exclude)
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)  # console scripts: not importable
        _publish(staging, deps)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_stale(cache_root, f".deps-{build.name}-{'?' * 16}", deps)
    return deps


def build_layer(build: LayerBuild, cache_root: Path) -> tuple[Path, str]:
    """Return ``(asset_dir, inputs_hash)``; ``asset_dir/python`` is the layer content.

    Two cache levels: pip runs only when the requirements (or platform) change; a change to the
    local packages only re-copies them over the cached dependencies. Builds happen in temporary
    sibling directories renamed into place, so concurrent synths never see a half-built layer.
    """
    inputs_hash = layer_inputs_hash(build)
    final = cache_root / f"{build.name}-{inputs_hash[:16]}"
    if (final / "python").is_dir():
        return final, inputs_hash

    cache_root.mkdir(parents=True, exist_ok=True)
    deps = _build_dependencies(build, cache_root)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{build.name}-", dir=cache_root))
    try:
        site = staging / "python"
        shutil.copytree(deps / "python", site)
        for package in build.packages:
            if package.is_file():
                shutil.copy2(package, site / package.name)
            else:
                shutil.copytree(
                    package,
                    site / package.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", *_IGNORED_PARTS),
                )
        staging.chmod(0o755)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_stale(cache_root, f"{build.name}-{'?' * 16}", final)
    return final, inputs_hash
