"""cfn-lint finds nothing wrong with the synthesized template."""

from __future__ import annotations

from cfnlint.api import lint_file

from tests.infrastructure.cdk_helpers import Synth


def test_cfn_lint_reports_no_errors_or_warnings(synth: Synth) -> None:
    matches = lint_file(synth.outdir / "Cairn.template.json")
    problems = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def test_cfn_lint_catches_a_broken_template(synth: Synth, tmp_path) -> None:
    """The gate can fail: a function with an invalid runtime is an error."""
    import json

    broken = json.loads(json.dumps(synth.template))
    broken["Resources"]["OrdersCommands"]["Properties"]["Runtime"] = "python2.0"
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(broken))
    assert any(m.rule.id.startswith("E") for m in lint_file(path))
