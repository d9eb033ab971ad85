"""CDK entry point: ``npx cdk synth`` or ``CDK_OUTDIR=cdk.out .venv/bin/python cdk_app/app.py``.

Builds the stack ``Cairn`` and attaches cdk-nag (AwsSolutions + Serverless) as validation plugins:
synthesis fails on any finding that is not acknowledged with a reason.

Options (context ``-c key=value`` or environment):
  bundle=false / CAIRN_SKIP_LAYER_BUILD=1   skip the pip layer build (tests, local runtime)
  log_retention_days=30, api_rate_limit=200, api_burst_limit=400
  payment_timeout_seconds=900   a payment outcome not in by then fails the order (PAYMENT_FAILED)
  reserved_concurrency=false      reserve (and cap) the HTTP functions' concurrency (docs/deploy.md)
  cognito_threat_protection=false Cognito Plus plan with threat protection (billed per MAU)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Running as a script puts cdk_app/ first on sys.path, where cdk_app/constructs would shadow the
# `constructs` library that aws_cdk imports. Put the repository root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks, ServerlessChecks  # noqa: E402

from cdk_app.bundling import skip_layer_build  # noqa: E402
from cdk_app.stacks import CairnStack  # noqa: E402

__all__ = ["FEATURE_FLAGS", "STACK_NAME", "attach_nag", "build_app", "main"]

STACK_NAME = "Cairn"

# Context set whether synthesized by the CLI or by running this file.
FEATURE_FLAGS = {
    # What `cdk synth` sets by default, so `python cdk_app/app.py` writes the same template: every
    # asset-backed resource names its asset directory (aws:asset:path) — the local runtime uses it
    # to find a function's code — and every resource its construct path (aws:cdk:path).
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:enable-path-metadata": True,
}


def attach_nag(app: cdk.App) -> None:
    """cdk-nag 3 packs as validation plugins: ``app.synth()`` fails on an unacknowledged finding."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def build_app(
    *,
    outdir: str | None = None,
    context: dict | None = None,
    skip_layer: bool | None = None,
    nag: bool = True,
) -> tuple[cdk.App, CairnStack]:
    """The app with stack ``Cairn`` (and cdk-nag attached unless ``nag=False``)."""
    app = cdk.App(outdir=outdir, context={**FEATURE_FLAGS, **(context or {})})
    if skip_layer is None:
        skip_layer = skip_layer_build(app.node.try_get_context("bundle"))

    def number(key: str, default: int) -> int:
        value = app.node.try_get_context(key)
        return default if value is None else int(value)

    def flag(key: str) -> bool:
        value = app.node.try_get_context(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        if str(value).lower() not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
            raise ValueError(f"context {key}={value!r}: use true or false")
        return str(value).lower() in ("true", "1", "on", "yes")

    stack = CairnStack(
        app,
        STACK_NAME,
        skip_layer_build=skip_layer,
        log_retention_days=number("log_retention_days", 30),
        api_rate_limit=number("api_rate_limit", 200),
        api_burst_limit=number("api_burst_limit", 400),
        notifications_email_from=app.node.try_get_context("notifications_email_from") or None,
        payment_timeout_seconds=number("payment_timeout_seconds", 900),
        reserved_concurrency=flag("reserved_concurrency"),
        cognito_threat_protection=flag("cognito_threat_protection"),
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
        ),
    )
    cdk.Tags.of(app).add("project", "cairn")
    if nag:
        attach_nag(app)
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
