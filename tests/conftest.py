"""Shared fixtures: fake AWS credentials, in-process moto, tables and a bucket.

Kept generic and small; suites add their own fixtures in their directory's conftest.py.
The environment is fixed at import so module-level clients built by code under test never see
real credentials or a stray endpoint.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # botocore >= 1.40 vs moto
    }
)


# Property tests: derandomized under CI (a submission never fails by chance), random locally,
# and a deep random exploration with `make test-deep` (HYPOTHESIS_PROFILE=deep).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _ci else "dev"))


class _RunningTestsStdout(io.TextIOBase):
    """Writes to whatever ``sys.stdout`` is when a line is written: the capture of the test running."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_RUNNING_TESTS_STDOUT = _RunningTestsStdout()


@pytest.fixture(autouse=True)
def _powertools_logs_reach_the_running_test() -> None:
    """A Powertools Logger binds ``sys.stdout`` when a service's logger is first built; under pytest
    that is the capture of whichever test imported the handler first, so later tests (``capsys``)
    would never see its lines. Every Powertools handler writes to the running test's stdout instead."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if (
                type(handler) is logging.StreamHandler
                and type(handler.formatter).__module__.startswith("aws_lambda_powertools")
                and handler.stream is not _RUNNING_TESTS_STDOUT
            ):
                handler.stream = _RUNNING_TESTS_STDOUT  # not setStream: it flushes the old one, maybe closed


def pytest_configure(config: pytest.Config) -> None:
    """moto serializes DynamoDB attribute values through a generic, slow path and recomputes pure
    lookups on every request; the local runtime and every in-process test use the equivalent fast
    paths (local/attribute_values.py, local/moto_memo.py and their tests)."""
    from local import attribute_values, moto_memo

    attribute_values.install()
    moto_memo.install()
    _symmetric_kms_keys_share_one_signing_key()


def _symmetric_kms_keys_share_one_signing_key() -> None:
    """moto makes an RSA-2048 private key (~45 ms) for every KMS key, symmetric ones included,
    where it serves only Sign/Verify — which KMS refuses for a symmetric key. Every World of the
    fault suites creates one; symmetric keys here share one generated once. Asymmetric specs are
    unchanged."""
    import moto.kms.models as kms_models

    original = kms_models.generate_private_key
    shared: list[Any] = []

    def generate_private_key(key_spec: str) -> Any:
        if key_spec not in ("SYMMETRIC_DEFAULT", None):
            return original(key_spec)
        if not shared:
            shared.append(original(key_spec))
        return shared[0]

    kms_models.generate_private_key = generate_private_key


@dataclass(frozen=True)
class EventTables:
    events: str
    idempotency: str


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto for every AWS service, reset after the test.

    moto's S3 backend reloads its URL module (``importlib.reload``) on every request, in case
    ``MOTO_S3_CUSTOM_ENDPOINTS`` changed; no test changes it. With threads the reload's import
    lock stalled a race test for 10-100 s at random (tests/unit/test_archive.py): loaded once here.
    Likewise moto.awslambda, which a table's first stream record imports: imported in a thread
    racing two others it took seconds, so it is imported before any test starts threads.

    Transactions roll back from an undo log and queries start from their partition, as in the
    local runtime (``local.cloud.flat_in_process``): moto's own deep-copies every table a
    transaction touches once per item, which made building a few hundred events take seconds.
    tests/unit/test_store_moto_atomicity.py pins moto's own behaviour and opts out."""
    import moto.awslambda.utils  # noqa: F401
    import moto.s3.urls
    from moto import mock_aws
    from moto.s3.models import S3Backend

    from local.cloud import flat_in_process

    monkeypatch.setattr(S3Backend, "_url_module", property(lambda self: moto.s3.urls))
    with flat_in_process(), mock_aws():
        yield


@pytest.fixture
def dynamodb_client(aws: None) -> Any:
    from cairn.aws import client

    return client("dynamodb")


@pytest.fixture
def s3_client(aws: None) -> Any:
    from cairn.aws import client

    return client("s3")


@pytest.fixture
def event_tables(dynamodb_client: Any) -> EventTables:
    """Events table (stream on) + idempotency table, with the production key layout."""
    from cairn.store.dynamodb import create_tables

    tables = EventTables(events="cairn-events", idempotency="cairn-idempotency")
    create_tables(dynamodb_client, tables.events, tables.idempotency)
    return tables


@pytest.fixture
def snapshot_bucket(s3_client: Any) -> str:
    s3_client.create_bucket(Bucket="cairn-snapshots")
    return "cairn-snapshots"


class CallLog:
    """AWS API calls made through the clients it is attached to (botocore event hooks)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def attach(self, *clients: Any) -> CallLog:
        for c in clients:
            service = c.meta.service_model.service_name
            c.meta.events.register(f"before-call.{service}.*", self._record)
        return self

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def clear(self) -> None:
        self.calls.clear()

    def __len__(self) -> int:
        return len(self.calls)


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


SHARED_SUITES = ("infrastructure", "e2e")  # one CDK synth, one local runtime: never paid twice
OWN_RUNTIME = ("tests/e2e/test_e2e_endurance.py",)  # e2e modules that start a runtime of their own


def suite_of(nodeid: str) -> str:
    """The unit ``make test`` hands to one worker: a module (its module fixtures are built once), or
    a whole suite whose tests share a session fixture (tests/infrastructure, tests/e2e)."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if path in OWN_RUNTIME:  # shares nothing with its suite: free to run beside it
        return path
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in SHARED_SUITES:
        return parts[1]
    return path


# The units that take longest (worker-seconds, `--durations=0`), longest first: handed out
# before the many short ones, so no worker starts a two-minute unit while the other has nothing
# left to do (longest-processing-time-first; the order is the only thing it changes).
LONGEST_UNITS = (
    "e2e",
    "tests/reliability/test_fuzz.py",
    "tests/reliability/test_command_faults.py",
    "tests/reliability/test_shuffle_10k.py",
    "tests/e2e/test_e2e_endurance.py",
    "tests/reliability/test_consumer_faults.py",
    "tests/load/test_load_http.py",
    "tests/reliability/test_projection_faults.py",
    "tests/load/test_bench_suites.py",
    "infrastructure",
    "tests/reliability/test_stateful_accounts.py",
    "tests/reliability/test_publisher_faults.py",
    "tests/reliability/test_stateful_orders.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest units first, then the rest by size (xdist's own order); stable, so every worker
    collects the same order."""
    units = [suite_of(item.nodeid) for item in items]
    sizes: dict[str, int] = {}
    for unit in units:
        sizes[unit] = sizes.get(unit, 0) + 1
    rank = {unit: i for i, unit in enumerate(LONGEST_UNITS)}
    order = sorted(range(len(items)), key=lambda i: (rank.get(units[i], len(rank)), -sizes[units[i]], units[i], i))
    items[:] = [items[i] for i in order]


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` schedules by :func:`suite_of`, longest units first (``LONGEST_UNITS``).
    Not ``--dist loadgroup`` with ``xdist_group`` marks: pytest-xdist 3.8 writes the group into
    ``item._nodeid``, which pytest 9 no longer reads, so every test was its own group and each
    worker built its own synth and runtime."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # the collection's order (pytest_collection_modifyitems)

    class SuiteScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return suite_of(nodeid)

    return SuiteScheduling(config, log)
