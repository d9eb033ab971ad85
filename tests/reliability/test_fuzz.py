"""``make fuzz`` in the suite: schemathesis against a local runtime, and the check it adds.

The e2e test starts ``python -m local`` in a subprocess (as the e2e suite does), then runs
``local.fuzz`` against it with a fixed seed and a few examples per operation: every phase, no
5xx, every response as documented, every error problem+json. ``make fuzz`` runs the same with
30 examples.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from local.fuzz import gateway_answer, problem_details_on_errors

REPO = Path(__file__).resolve().parents[2]


def response(status: int, content_type: str, body: object) -> SimpleNamespace:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return SimpleNamespace(status_code=status, headers={"content-type": [content_type]}, content=raw)


PROBLEM = {"type": "https://cairn.dev/problems/not-found", "title": "Not found", "status": 404, "detail": "x"}


def test_the_problem_check_accepts_problems_and_api_gateways_own_answers():
    assert problem_details_on_errors(None, response(200, "application/json", {"ok": 1}), None) is None
    assert problem_details_on_errors(None, response(404, "application/problem+json", PROBLEM), None) is True
    for status in (401, 403, 404, 413, 429):
        message = response(status, "application/json", {"message": "Unauthorized"})
        assert problem_details_on_errors(None, message, None) is None
    assert gateway_answer(401, "application/json; charset=utf-8", {"message": "Unauthorized"})


@pytest.mark.parametrize(
    "bad",
    [
        response(422, "application/json", {"detail": "validation"}),  # a function's error, not problem+json
        response(500, "application/json", {"message": "Internal Server Error"}),  # 5xx is never the gateway's excuse
        response(409, "application/problem+json", {"type": "x", "title": "t", "status": 409}),  # no detail
        response(409, "application/problem+json", {**PROBLEM, "status": 400}),  # status disagrees
        response(404, "application/problem+json", {**PROBLEM, "type": "not-found"}),  # type is not a URI
        response(400, "text/html", b"<h1>Bad</h1>"),
        response(404, "application/json", {"message": "Not Found", "extra": 1}),  # not the gateway's shape
    ],
)
def test_the_problem_check_fails_anything_else(bad):
    with pytest.raises(AssertionError):
        problem_details_on_errors(None, bad, None)


@pytest.fixture
def runtime(tmp_path: Path):
    """``python -m local`` on a free port, its state in ``tmp_path``."""
    log = open(tmp_path / "runtime.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--state-dir", str(tmp_path), "--quiet", "--no-access-log"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "PYTHONDONTWRITEBYTECODE": "1"},
        start_new_session=True,
    )
    try:
        outputs = tmp_path / "outputs.json"
        deadline = time.time() + 600
        while not outputs.exists():
            assert process.poll() is None, (tmp_path / "runtime.log").read_text()[-4000:]
            assert time.time() < deadline, "the local runtime did not start"
            time.sleep(0.25)
        yield next(iter(json.loads(outputs.read_text()).values()))["ApiUrl"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_schemathesis_finds_nothing(runtime, tmp_path, capfd):
    from local import fuzz

    argv = ["--url", runtime, "--max-examples", "5", "--seed", "20261126", "--report-dir", str(tmp_path / "report")]
    status = fuzz.main(argv)
    out = capfd.readouterr().out
    assert status == 0, out[-6000:]
    assert "Coverage" in out and "Fuzzing" in out and "Stateful" in out
    assert " failed" not in out.split("SUMMARY")[-1], out[-3000:]
