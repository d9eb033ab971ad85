"""One synthesis of the Cairn app per session (synth takes seconds), shared by every test here.

The synth runs ``cdk_app/app.py`` as a script with ``CDK_OUTDIR`` — exactly what ``make synth``
(through ``npx cdk synth``) and the local runtime run — so it also proves the entry point and the
cdk-nag gate (the script exits non-zero on any unacknowledged finding). The layer's pip build is
skipped here; tests/infrastructure/test_cdk_layer.py builds and inspects it separately.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.infrastructure.cdk_helpers import Synth, run_synth

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    result = run_synth(outdir)
    assert result.returncode == 0, f"synth failed:\n{result.stdout[-5000:]}\n{result.stderr[-10000:]}"
    template = json.loads((outdir / "Cairn.template.json").read_text())
    metadata = json.loads((outdir / "Cairn.metadata.json").read_text())
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"pluginReports": []}
    return Synth(outdir, template, metadata, report)


@pytest.fixture(scope="session")
def template(synth: Synth):
    """``aws_cdk.assertions.Template`` of the synthesized stack."""
    from aws_cdk.assertions import Template

    return Template.from_json(synth.template)
