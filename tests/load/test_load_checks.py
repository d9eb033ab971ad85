"""The checkers of the load and side-by-side suites catch what they claim to (fast, no runtime)."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest

from bench import imports, load, side_by_side
from bench.load import InvariantError, Outcome, Reply


def _reply(status: int, cid: str, version: int | None = None) -> Reply:
    return Reply(status, {"version": version} if version is not None else {}, 0.01, cid)


def _event(version: int, cid: str) -> dict[str, Any]:
    return {"version": version, "type": "MoneyDeposited", "metadata": {"correlation_id": cid}}


def _history(*cids: str) -> list[dict[str, Any]]:
    return [_event(n, cid) for n, cid in enumerate(cids, start=1)]


CREATED = _reply(201, "c0", 1)


def test_acknowledged_equals_recorded_accepts_a_faithful_history() -> None:
    outcomes = [Outcome("deposit", "s", _reply(200, "c1", 2)), Outcome("deposit", "s", _reply(409, "c2"))]
    assert load._acknowledged_equals_recorded("s", outcomes, _history("c0", "c1"), CREATED) == (0, 0)


def test_an_acknowledged_command_missing_from_the_store_is_caught() -> None:
    outcomes = [Outcome("deposit", "s", _reply(200, "c1", 2)), Outcome("deposit", "s", _reply(200, "c2", 3))]
    with pytest.raises(InvariantError, match="1 acknowledged but not recorded"):
        load._acknowledged_equals_recorded("s", outcomes, _history("c0", "c1"), CREATED)


def test_a_command_recorded_twice_is_caught() -> None:
    outcomes = [Outcome("deposit", "s", _reply(200, "c1", 2))]
    with pytest.raises(InvariantError, match="recorded twice"):
        load._acknowledged_equals_recorded("s", outcomes, _history("c0", "c1", "c1"), CREATED)


def test_a_gap_in_versions_is_caught() -> None:
    events = [_event(1, "c0"), _event(3, "c1")]
    with pytest.raises(InvariantError, match="not contiguous"):
        load._acknowledged_equals_recorded("s", [Outcome("d", "s", _reply(200, "c1", 3))], events, CREATED)


def test_a_refused_command_that_left_an_event_is_caught_but_a_5xx_is_an_unknown_outcome() -> None:
    refused = [Outcome("withdraw", "s", _reply(409, "c1"))]
    with pytest.raises(InvariantError, match="recorded but refused"):
        load._acknowledged_equals_recorded("s", refused, _history("c0", "c1"), CREATED)
    timed_out = [Outcome("deposit", "s", _reply(503, "c1"))]
    assert load._acknowledged_equals_recorded("s", timed_out, _history("c0", "c1"), CREATED) == (0, 1)


def test_an_acknowledged_version_that_differs_from_the_stored_one_is_caught() -> None:
    outcomes = [Outcome("deposit", "s", _reply(200, "c1", 5))]
    with pytest.raises(InvariantError, match="acknowledged version 5"):
        load._acknowledged_equals_recorded("s", outcomes, _history("c0", "c1"), CREATED)


def test_unexpected_statuses_are_caught() -> None:
    with pytest.raises(InvariantError, match="unexpected"):
        load._unexpected([Outcome("deposit", "s", _reply(500, "c1"))], {200, 409})


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) == 50.0
    assert load.percentile(values, 99) == 99.0
    assert load.percentile(values, 100) == 100.0
    assert load.percentile([7.0], 99) == 7.0


class _LosingBank:
    """Acknowledges every deposit, stores only the last one per slot (a blind overwrite)."""

    def __init__(self, slots: list[str], lock: threading.Lock):
        self.slots, self.lock = slots, lock

    def deposit(self, account_id: Any, amount: Decimal, ref: str) -> None:
        with self.lock:
            if len(self.slots) < 5:
                self.slots.append(ref)
            else:
                self.slots[len(self.slots) % 5] = ref


def test_concurrent_writers_counts_lost_writes() -> None:
    slots: list[str] = []
    lock = threading.Lock()
    figures = side_by_side.concurrent_writers([_LosingBank(slots, lock) for _ in range(4)], "a", lambda: list(slots))
    total = 4 * side_by_side.PER_WRITER
    assert figures["acknowledged"] == total
    assert figures["recorded"] == 5
    assert figures["lost"] == total - 5
    assert figures["duplicated"] == 0


def test_importtime_parsing_keeps_depth_and_cumulative_time() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   _io\n"
        "import time:       250 |       1350 | boto3\n"
    )
    assert imports.parse_importtime(stderr) == [(100, 100, 1, "_io"), (250, 1350, 0, "boto3")]


def test_every_handler_of_the_conventions_page_is_measured() -> None:
    modules = imports.handler_modules()
    assert {"orders.api", "orders.queries", "orders.projections", "accounts.api", "payments.handler",
            "cairn_platform.ops", "cairn_platform.public", "cairn_platform.snapshotter", "cairn_platform.publisher",
            "realtime.authorizer", "realtime.pusher", "cairn_platform.digest", "cairn_platform.tamper",
            "catalog.api", "catalog.projections", "orders.payment_events", "orders.timeouts",
            "cairn_platform.archiver"} <= set(modules)
    assert len(modules) == 24


def test_import_measurements_see_only_what_a_deployed_function_sees(tmp_path) -> None:
    import subprocess
    import sys

    env = imports.lambda_env(str(tmp_path / "pyc"), imports.lambda_site(tmp_path / "site"))
    probe = "import accounts.api, payments.handler, boto3, pydantic\n"
    probe += "for name in ('requests', 'moto', 'aws_cdk', 'pytest', 'aws_xray_sdk', 'opentelemetry'):\n"
    probe += "    try:\n        __import__(name)\n    except ImportError:\n        continue\n"
    probe += "    raise SystemExit(name + ' should not be importable')\n"
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_handler_imports_a_tracing_sdk(tmp_path) -> None:
    """Tracing is Lambda's active tracing, with no SDK in the function (issue 17, cold start):
    every handler imports, as deployed (tracing on, the layer's packages only), without the X-Ray
    SDK or OpenTelemetry, and answers a first request without them either."""
    import subprocess
    import sys

    env = imports.lambda_env(str(tmp_path / "pyc"), imports.lambda_site(tmp_path / "site"))
    env["POWERTOOLS_TRACE_DISABLED"] = "false"
    modules = imports.handler_modules()
    probe = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    from bench.cold_start import api_event

    event = api_event("GET", "/health", "GET /health", None, False)
    probe += f"import json, cairn_platform.public as p\nr = p.handler(json.loads({json.dumps(event)!r}), None)\n"
    probe += "assert r['statusCode'] == 200, r\n"
    probe += "found = sorted(m for m in sys.modules if m.split('.')[0] in ('aws_xray_sdk', 'opentelemetry'))\n"
    probe += "assert not found, found\n"
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
