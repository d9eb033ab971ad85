"""A local runtime running the hand-made fixture template (tests/local/fixture), in-process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parent / "fixture" / "Fixture.template.json"


@dataclass
class Client:
    base: str

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any, bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, method=method, data=data)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any) -> tuple[int, Any]:
        status, _, data = self.call(method, path, body, token, **kw)
        return status, json.loads(data) if data else None

    def token(self, sub: str = "alice", groups: list[str] | None = None, **extra: Any) -> str:
        status, body = self.json("POST", "/_local/token", {"sub": sub, "groups": groups or [], **extra})
        assert status == 200, body
        return body["token"]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Iterator[Any]:
    from local.esm import Timing
    from local.runtime import LocalRuntime, RuntimeOptions
    from local.template import Template

    opts = RuntimeOptions(
        port=0, state_dir=tmp_path_factory.mktemp("local-state"), echo_function_logs=False,
        access_log=False, max_concurrency=6,
        timing=Timing(poll_interval=0.1, retry_base=0.05, retry_max=0.3, sqs_retry_visibility=1),
    )
    rt = LocalRuntime(Template.load(FIXTURE, "Fixture"), opts).start()
    yield rt
    # moto's backends are per process: the next module's runtime in this worker (the Kinesis
    # fixture names the same event bus) must not find this one's resources
    urllib.request.urlopen(urllib.request.Request(f"{rt.moto.endpoint}/moto-api/reset", method="POST"), timeout=30)
    rt.stop()


@pytest.fixture(scope="module")
def client(runtime) -> Client:
    return Client(runtime.base_url)
