"""``python -m local.token``, the synth cache, and code reload of warm environments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt

from local.auth import Authorizer, JwtIssuer
from local.lambdas import LambdaService
from local.synth import SynthError, find_template

REPO = Path(__file__).resolve().parents[2]


def test_token_cli_signs_like_the_server(tmp_path):
    issuer = JwtIssuer(tmp_path, "https://issuer.example/pool", "client-1")
    out = subprocess.run(
        [sys.executable, "-m", "local.token", "--user", "alice", "--groups", "staff,ops", "--state-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()
    claims = Authorizer("c", issuer.issuer, (issuer.audience,)).authorize({"authorization": out}, issuer)
    assert claims["sub"] == "alice" and claims["cognito:groups"] == ["staff", "ops"]
    assert jwt.get_unverified_header(out)["kid"] == issuer.kid


def test_token_cli_explains_when_the_runtime_never_ran(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "local.token", "--state-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "make dev" in proc.stderr


def test_find_template_reads_the_cloud_assembly_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {
        "Cairn": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "Cairn.template.json"}},
        "Tree": {"type": "cdk:tree"},
    }}))
    assert find_template(tmp_path, "Cairn") == tmp_path / "Cairn.template.json"
    try:
        find_template(tmp_path, "Other")
    except SynthError:
        pass
    else:
        raise AssertionError("an unknown stack must be an error")


def test_editing_source_retires_warm_environments(tmp_path):
    src = tmp_path / "code"
    src.mkdir()
    (src / "mod.py").write_text("X = 1\n")
    service = LambdaService([], watch_paths=[src])
    service.start()
    try:
        before = service.code_generation
        time.sleep(1.2)
        (src / "mod.py").write_text("X = 2\n")
        os.utime(src / "mod.py", (time.time() + 5, time.time() + 5))
        deadline = time.time() + 5
        while service.code_generation == before and time.time() < deadline:
            time.sleep(0.1)
        assert service.code_generation == before + 1
    finally:
        service.shutdown()


def test_a_signal_delivered_to_another_thread_still_stops_the_runtime():
    """``make dev`` waits in its main thread for SIGINT/SIGTERM; the kernel may deliver the signal
    to any of the runtime's threads. Here it is sent to a helper thread (``pthread_kill``): the
    main thread must still run the handler and stop within a poll, not wait until woken."""
    import signal
    import threading

    from local.__main__ import wait_until_stopped

    stop, returned = threading.Event(), threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda *_: stop.set())

    def deliver_elsewhere() -> None:
        time.sleep(0.3)  # the main thread is waiting by now
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        if not returned.wait(5):
            stop.set()  # rescue: an untimed wait would never have returned

    helper = threading.Thread(target=deliver_elsewhere)
    started = time.monotonic()
    helper.start()
    try:
        wait_until_stopped(stop)
        elapsed = time.monotonic() - started
        returned.set()
    finally:
        helper.join()
        signal.signal(signal.SIGUSR1, previous)
    assert elapsed < 3, f"the main thread ran the handler only after {elapsed:.1f} s"


def test_a_stopping_runtime_refuses_new_invocations_and_releases_waiters(tmp_path):
    """``begin_stop`` (the first thing ``LocalRuntime.stop`` does): a caller waiting for an
    environment at the concurrency cap leaves at once with ``Runtime.Stopping``, and so does any
    later invocation; the one already running finishes. Without it the mappings' threads kept
    invoking (and waiting) while the runtime stopped them one by one."""
    import threading

    from local.lambdas import FunctionError, FunctionSpec

    code = tmp_path / "code"
    code.mkdir()
    (code / "fn.py").write_text("import time\n\ndef handler(event, context):\n"
                                "    time.sleep(event.get('sleep', 0))\n    return {'ok': True}\n")
    spec = FunctionSpec(logical_id="Fn", name="fn", arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
                        handler="fn.handler", runtime="python3.13", code_dir=str(code), layers=(),
                        environment={}, timeout=20.0, memory=128)
    service = LambdaService([spec], max_concurrency=1, echo_logs=False)
    service.start()
    pool = service.pools["Fn"]
    outcomes: dict[str, object] = {}

    def call(name: str, seconds: float) -> None:
        try:
            outcomes[name] = pool.invoke({"sleep": seconds}).payload
        except FunctionError as exc:
            outcomes[name] = exc.error["errorType"]

    try:
        busy = threading.Thread(target=call, args=("busy", 2.0))
        busy.start()
        deadline = time.time() + 30
        while pool._busy == 0 and time.time() < deadline:
            time.sleep(0.05)
        waiter = threading.Thread(target=call, args=("waiter", 0.0))
        waiter.start()
        time.sleep(0.3)  # the waiter is at the cap, in _acquire
        started = time.monotonic()
        service.begin_stop()
        waiter.join(5)
        assert not waiter.is_alive() and time.monotonic() - started < 1.0
        call("later", 0.0)
        busy.join(30)
    finally:
        service.shutdown()
    assert outcomes == {"busy": {"ok": True}, "waiter": "Runtime.Stopping", "later": "Runtime.Stopping"}
