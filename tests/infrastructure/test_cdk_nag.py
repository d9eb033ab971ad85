"""cdk-nag (AwsSolutions + Serverless) gates the synth; every acknowledgement is real and needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs

from cdk_app.app import attach_nag, build_app
from cdk_app.constructs.nag import MIN_REASON_LENGTH
from tests.infrastructure.cdk_helpers import Synth

ACK = "aws:cdk:acknowledged-rules"


def _acknowledgements(synth: Synth) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) recorded in the cloud assembly."""
    found = []
    for path, entries in synth.metadata.items():
        for entry in entries:
            if entry["type"] == ACK:
                for rule, reason in entry["data"].items():
                    found.append((path, re.sub(r"^annotation::", "", rule, flags=re.I), reason))
    return found


def test_synth_passes_the_nag_gate(synth: Synth) -> None:
    violations = [v for report in synth.report["pluginReports"] for v in report.get("violations", [])]
    assert violations == []
    assert _acknowledgements(synth), "no acknowledgement recorded: is cdk-nag attached?"


def test_every_acknowledgement_says_why(synth: Synth) -> None:
    for path, rule, reason in _acknowledgements(synth):
        assert rule.startswith(("AwsSolutions-", "Serverless-")), (path, rule)
        assert len(reason) >= MIN_REASON_LENGTH, (path, rule, reason)
        assert not re.fullmatch(r"(?i)(n/?a|todo|tbd|ok|fine|suppressed?|ignored?)\W*", reason.strip())


def test_no_blanket_stack_level_acknowledgement(synth: Synth) -> None:
    """Acknowledgements sit on the construct that has the finding, never on the stack or app."""
    for path, rule, _ in _acknowledgements(synth):
        assert path.count("/") >= 2, (path, rule)


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe")
    sqs.Queue(stack, "PlainQueue")  # no DLQ, no SSL enforcement: AwsSolutions-SQS3/SQS4
    attach_nag(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4", "Serverless-SQSRedrivePolicy"} <= rules


@pytest.mark.slow
def test_every_acknowledgement_is_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthesize with acknowledgements recorded but not applied: each one must match a finding
    under its construct, and every finding must be acknowledged (no stale or missing reasons)."""
    recorded: list[tuple[str, str]] = []
    real_of = cdk.Validations.of

    class Recorder:
        def __init__(self, scope):
            self._scope = scope
            self._real = real_of(scope)

        def acknowledge(self, *acks):
            recorded.extend((self._scope.node.path, a.id) for a in acks)

        def add_plugins(self, *plugins):
            self._real.add_plugins(*plugins)

    monkeypatch.setattr(cdk.Validations, "of", staticmethod(Recorder))
    app, _ = build_app(outdir=str(tmp_path), skip_layer=True)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = {
        (v["ruleName"], c["constructPath"])
        for r in report["pluginReports"]
        for v in r["violations"]
        for c in v["violatingConstructs"]
    }
    covered = set()
    for scope, rule in recorded:
        hits = {(r, p) for r, p in findings if r == rule and (p == scope or p.startswith(scope + "/"))}
        assert hits, f"stale acknowledgement {rule} on {scope}"
        covered |= hits
    assert findings - covered == set()
