"""The layer is built for Lambda (python3.13 / arm64), with its own pinned boto3, cached by its inputs."""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import pytest

from cdk_app import bundling
from cdk_app.bundling import LayerBuild, build_layer, layer_inputs_hash, skip_layer_build
from cdk_app.stacks.cairn_stack import CAIRN_LAYER, LAYER_CACHE

EM_AARCH64 = 183


@pytest.fixture(scope="module")
def layer_site() -> Path:
    """The real layer build (pip reaches PyPI / the wheel cache; cached across runs)."""
    asset_dir, _ = build_layer(CAIRN_LAYER, LAYER_CACHE)
    return asset_dir / "python"


def _wheel_tags(site: Path, distribution: str) -> list[str]:
    (info,) = site.glob(f"{distribution}-*.dist-info")
    return [line.split(":", 1)[1].strip() for line in (info / "WHEEL").read_text().splitlines()
            if line.startswith("Tag:")]


def test_pydantic_core_wheel_is_for_cp313_aarch64(layer_site: Path) -> None:
    tags = _wheel_tags(layer_site, "pydantic_core")
    assert tags and all(t.startswith("cp313-cp313-") and t.endswith("aarch64") for t in tags), tags
    assert any("manylinux" in t for t in tags)


def test_native_extensions_are_aarch64_elf(layer_site: Path) -> None:
    shared = list(layer_site.rglob("*.so"))
    assert any(p.name == "_pydantic_core.cpython-313-aarch64-linux-gnu.so" for p in shared), shared
    for so in shared:
        header = so.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", so
        assert header[4] == 2, f"{so} is not 64-bit"
        (machine,) = struct.unpack("<H", header[18:20])
        assert machine == EM_AARCH64, f"{so} is for e_machine {machine}, not aarch64"
        assert "x86_64" not in so.name, so


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.split("[", 1)[0].strip().lower()] = version.strip()
    return pins


def _shipped_version(site: Path, distribution: str) -> str:
    (info,) = site.glob(f"{distribution}-*.dist-info")
    return next(line.split(":", 1)[1].strip() for line in (info / "METADATA").read_text().splitlines()
                if line.startswith("Version:"))


def test_the_sdk_the_functions_run_with_is_the_one_the_tests_pin(layer_site: Path) -> None:
    """The layer ships boto3/botocore (it shadows the runtime's), at the versions every test uses."""
    repo = Path(__file__).resolve().parents[2]
    tested = _pins(repo / "requirements.txt")
    for distribution in ("boto3", "botocore"):
        assert (layer_site / distribution / "__init__.py").is_file(), distribution
        assert _shipped_version(layer_site, distribution) == tested[distribution], distribution
        assert _pins(repo / "layers" / "requirements.txt")[distribution] == tested[distribution]
    for module in ("aws_lambda_powertools", "pydantic", "pydantic_core", "jmespath", "s3transfer"):
        assert (layer_site / module).is_dir(), module
    assert not (layer_site / "aws_xray_sdk").exists()  # tracing is Lambda's (docs/decisions.md)


# (service, operation, request members) the code calls (the store, snapshots, projections, tools)
CALLS = [
    ("s3", "PutObject", {"IfMatch", "IfNoneMatch", "Metadata"}),  # snapshot compare-and-swap
    ("s3", "HeadObject", set()),
    ("dynamodb", "TransactWriteItems", set()),
    ("dynamodb", "BatchGetItem", set()),
    ("dynamodb", "Query", {"ConsistentRead"}),
    ("dynamodbstreams", "GetShardIterator", {"SequenceNumber"}),
    ("events", "PutEvents", set()),
    ("sqs", "ChangeMessageVisibility", set()),
]


@pytest.mark.parametrize(("service", "operation", "members"), CALLS)
def test_the_shipped_botocore_knows_every_call(layer_site: Path, service: str, operation: str,
                                               members: set[str]) -> None:
    import gzip
    import json

    versions = sorted((layer_site / "botocore" / "data" / service).iterdir())
    model_file = versions[-1] / "service-2.json.gz"
    model = json.loads(gzip.decompress(model_file.read_bytes())) if model_file.exists() else json.loads(
        (versions[-1] / "service-2.json").read_text())
    assert operation in model["operations"], (service, operation)
    shape = model["operations"][operation]["input"]["shape"]
    assert members <= set(model["shapes"][shape]["members"]), (service, operation)


def test_layer_holds_layers_cairn_python_as_in_the_repository(layer_site: Path) -> None:
    python_dir = Path(__file__).resolve().parents[2] / "layers" / "cairn" / "python"
    assert (python_dir / "cairn") in CAIRN_LAYER.packages
    for source in CAIRN_LAYER.packages:
        expected = {p.relative_to(python_dir) for p in bundling._source_files(source)}
        target = layer_site / source.name
        shipped = {p.relative_to(layer_site) for p in ([target] if target.is_file() else target.rglob("*"))
                   if p.is_file()}
        assert shipped == expected, source
        for relative in expected:
            assert (layer_site / relative).read_bytes() == (python_dir / relative).read_bytes()
    assert not list(layer_site.rglob("__pycache__"))


def test_repeated_build_is_a_cache_hit(layer_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*_args, **_kwargs):
        raise AssertionError("pip ran although the inputs did not change")

    monkeypatch.setattr(bundling, "_pip_install", no_pip)
    started = time.perf_counter()
    asset_dir, _ = build_layer(CAIRN_LAYER, LAYER_CACHE)
    assert asset_dir / "python" == layer_site
    assert time.perf_counter() - started < 2.0


def test_inputs_hash_covers_requirements_package_and_platform(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / "cairn"
    source = next(p for p in CAIRN_LAYER.packages if p.name == "cairn")
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(CAIRN_LAYER.requirements.read_text())
    build = LayerBuild("cairn", requirements, (package,))
    base = layer_inputs_hash(build)
    assert layer_inputs_hash(build) == base

    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert layer_inputs_hash(build) == base  # bytecode is not an input

    (package / "__init__.py").write_text((package / "__init__.py").read_text() + "\n# changed\n")
    changed_package = layer_inputs_hash(build)
    assert changed_package != base

    requirements.write_text(requirements.read_text() + "\n# changed\n")
    assert layer_inputs_hash(build) not in {base, changed_package}
    assert layer_inputs_hash(LayerBuild("cairn", requirements, (package,), platform="manylinux2014_x86_64")) \
        != layer_inputs_hash(build)


def test_pruning_removes_a_distribution_by_its_record(tmp_path: Path) -> None:
    site = tmp_path / "python"
    (site / "botocore" / "data").mkdir(parents=True)
    (site / "botocore" / "__init__.py").write_text("")
    (site / "botocore" / "data" / "x.json").write_text("{}")
    (site / "keepme").mkdir()
    (site / "keepme" / "__init__.py").write_text("")
    info = site / "botocore-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: botocore\nVersion: 1.0\n")
    (info / "RECORD").write_text(
        "botocore/__init__.py,,\nbotocore/data/x.json,,\nbotocore-1.0.dist-info/METADATA,,\n"
        "botocore-1.0.dist-info/RECORD,,\n"
    )
    removed = bundling._prune_runtime_provided(site, bundling.RUNTIME_PROVIDED)  # still possible
    assert removed == ["botocore"]
    assert sorted(p.name for p in site.iterdir()) == ["keepme"]


@pytest.mark.parametrize(
    ("env", "context", "skip"),
    [("", None, False), ("1", None, True), ("true", None, True), ("", "false", True), ("", "true", False),
     ("0", None, False)],
)
def test_skip_switch(monkeypatch: pytest.MonkeyPatch, env: str, context: object, skip: bool) -> None:
    monkeypatch.setenv("CAIRN_SKIP_LAYER_BUILD", env)
    assert skip_layer_build(context) is skip


def test_default_synth_deploys_the_built_layer(tmp_path: Path, layer_site: Path) -> None:
    """Without the skip switch the stack's layer asset is the pip build, not the bare sources."""
    import aws_cdk as cdk

    from cdk_app.constructs import PythonLayer
    from cdk_app.stacks.cairn_stack import LAYER_SOURCE

    app = cdk.App(outdir=str(tmp_path), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, "LayerOnly")
    PythonLayer(stack, "Cairn", build=CAIRN_LAYER, cache_root=LAYER_CACHE, fallback_dir=LAYER_SOURCE)
    assembly = app.synth()
    template = assembly.get_stack_by_name("LayerOnly").template
    (layer,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    staged = tmp_path / layer["Metadata"]["aws:asset:path"]
    assert (staged / "python" / "pydantic_core").is_dir()
    assert (staged / "python" / "cairn" / "__init__.py").is_file()
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_a_package_change_reuses_the_cached_dependencies(
    layer_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing cairn re-copies it over the cached pip install: no pip run."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copytree(
        bundling.dependencies_dir(CAIRN_LAYER, LAYER_CACHE), bundling.dependencies_dir(CAIRN_LAYER, cache)
    )
    package = tmp_path / "src" / "cairn"
    source = next(p for p in CAIRN_LAYER.packages if p.name == "cairn")
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "edited.py").write_text("EDITED = True\n")

    def no_pip(*_args, **_kwargs):
        raise AssertionError("pip ran although only the cairn package changed")

    monkeypatch.setattr(bundling, "_pip_install", no_pip)
    build = LayerBuild("cairn", CAIRN_LAYER.requirements, (package,))
    asset_dir, inputs_hash = build_layer(build, cache)
    assert inputs_hash != layer_inputs_hash(CAIRN_LAYER)
    assert (asset_dir / "python" / "cairn" / "edited.py").read_text() == "EDITED = True\n"
    assert (asset_dir / "python" / "pydantic_core").is_dir()
