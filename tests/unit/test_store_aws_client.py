"""cairn.aws.client and the lazy adapter imports that keep handler cold starts cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from botocore.config import Config

from cairn.aws import client, endpoint_url_for

ROOT = Path(__file__).resolve().parents[2]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", raising=False)
    ddb = client("dynamodb")
    config = ddb.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout, config.tcp_keepalive) == (1, 3, True)
    assert config.account_id_endpoint_mode != "disabled"  # botocore default in AWS
    assert ddb.meta.endpoint_url == "https://dynamodb.us-east-1.amazonaws.com"
    assert ddb.meta.region_name == "us-east-1"


def test_local_endpoint_turns_account_endpoints_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.delenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", raising=False)
    ddb = client("dynamodb")
    assert ddb.meta.endpoint_url == "http://127.0.0.1:5000"
    assert ddb.meta.config.account_id_endpoint_mode == "disabled"


def test_explicit_mode_and_service_endpoint_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "preferred")
    assert endpoint_url_for("dynamodb") == "http://127.0.0.1:6000"
    assert endpoint_url_for("s3") == "http://127.0.0.1:5000"
    assert client("dynamodb").meta.config.account_id_endpoint_mode == "preferred"
    assert client("s3", endpoint_url="http://localhost:7000").meta.endpoint_url == "http://localhost:7000"


def test_config_is_merged_over_the_defaults() -> None:
    ddb = client("dynamodb", config=Config(read_timeout=1), region_name="eu-west-1")
    assert ddb.meta.config.read_timeout == 1
    assert ddb.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert ddb.meta.region_name == "eu-west-1"


def test_package_imports_do_not_load_botocore() -> None:
    code = (
        "import sys; import cairn.events, cairn.store, cairn.snapshots, cairn.commands; "
        "assert 'botocore' not in sys.modules, 'botocore imported'; "
        "from cairn.store import DynamoDBEventStore, envelope_from_item; "
        "from cairn.snapshots import S3SnapshotStore; "
        "assert 'botocore' in sys.modules"
    )
    env = {"PYTHONPATH": str(ROOT / "layers" / "cairn" / "python"), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_a_runtime_makes_its_s3_clients_on_the_first_snapshot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold query or a new stream never reads a snapshot: no S3 client on their cold start."""
    import cairn.aws as aws
    from cairn.aws import SNAPSHOT_READ_CONFIG
    from cairn.commands import Decider
    from cairn.commands.compose import runtime_from_env
    from cairn.events import EventRegistry

    made: list[tuple[str, Config | None]] = []
    real = aws.client

    def counting(service_name: str, **kwargs: object) -> object:
        made.append((service_name, kwargs.get("config")))  # type: ignore[arg-type]
        return real(service_name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aws, "client", counting)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing is called here
    monkeypatch.setenv("EVENTS_TABLE", "events")
    monkeypatch.setenv("SNAPSHOT_BUCKET", "snapshots")
    monkeypatch.delenv("ARCHIVE_BUCKET", raising=False)
    decider = Decider(initial_state=lambda: None, decide=lambda c, s: [], evolve=lambda s, e: s,
                      state_schema_version=1, state_to_dict=dict, state_from_dict=dict)
    runtime = runtime_from_env(EventRegistry(), decider)
    assert [service for service, _ in made] == ["dynamodb"]
    snapshots = runtime.snapshots
    assert snapshots is not None
    snapshots.read_client.meta  # noqa: B018 - the first use makes the client
    assert made[1:] == [("s3", SNAPSHOT_READ_CONFIG)]
