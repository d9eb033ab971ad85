"""The Lambda layer of a Python package + its pinned dependencies, built for arm64 without Docker."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Annotations, AssetHashType, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_app.bundling import LayerBuild, build_layer
from cdk_app.constructs.function import RUNTIME

__all__ = ["PythonLayer"]


class PythonLayer(Construct):
    """``build`` is pip-installed for the build's platform (cached); with ``skip_build`` the layer
    is just ``fallback_dir`` (a directory holding ``python/``) — enough for a synth whose layer is
    never deployed (tests, the local runtime, which runs the code from the repository)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        build: LayerBuild,
        cache_root: Path,
        fallback_dir: Path,
        skip_build: bool = False,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.built = not skip_build
        if skip_build:
            Annotations.of(self).add_warning_v2(
                "cairn:layer-not-built",
                f"Layer {build.name!r} is not built (bundle=false / CAIRN_SKIP_LAYER_BUILD): it holds only "
                f"{fallback_dir.name}/ without dependencies. Fine for tests and the local runtime; "
                "do not deploy this assembly.",
            )
            self.asset_dir = fallback_dir
            code = lambda_.Code.from_asset(
                str(fallback_dir), exclude=["**/__pycache__", "**/*.pyc"]
            )
        else:
            self.asset_dir, inputs_hash = build_layer(build, cache_root)
            # The inputs hash identifies the content: CDK need not re-hash ~30 MB on every synth.
            code = lambda_.Code.from_asset(
                str(self.asset_dir), asset_hash=inputs_hash, asset_hash_type=AssetHashType.CUSTOM
            )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description=description or f"{build.name}: {build.requirements.name} + local packages",
            removal_policy=RemovalPolicy.DESTROY,
        )
