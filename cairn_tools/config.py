"""Where the tables are: flags, else environment variables, else ``.local/outputs.json``.

``.local/outputs.json`` is written by the local runtime in the format of
``cdk deploy --outputs-file`` (``{"<Stack>": {"<OutputKey>": "<value>"}}``); a deployed stack's
``cdk-outputs.json`` works the same way with ``--outputs cdk-outputs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn_tools import ROOT

__all__ = [
    "PROJECTIONS",
    "ProjectionSpec",
    "Settings",
    "add_common_arguments",
    "build_engine",
    "failed_queue_output",
    "load_outputs",
    "resolve",
]


@dataclass(frozen=True)
class ProjectionSpec:
    context: str  # the context package: <context>.projections, <context>.app
    table_env: str
    output_key: str
    consumer: str  # the stream consumer (function) that runs it: its on-failure queue

    @property
    def failed_queue_output(self) -> str:
        return failed_queue_output(self.consumer)


def failed_queue_output(consumer: str) -> str:
    """The stack output naming a stream consumer's on-failure queue."""
    return f"{consumer}FailedQueueUrl"


PROJECTIONS = {
    "order_view": ProjectionSpec("orders", "ORDER_VIEW_TABLE", "OrderViewTableName", "OrdersProjections"),
    "user_orders": ProjectionSpec("orders", "USER_ORDERS_TABLE", "UserOrdersTableName", "OrdersProjections"),
    "analytics": ProjectionSpec("orders", "ANALYTICS_TABLE", "AnalyticsTableName", "OrdersProjections"),
    "account_view": ProjectionSpec("accounts", "ACCOUNT_VIEW_TABLE", "AccountViewTableName", "AccountsProjections"),
}


class ConfigError(SystemExit):
    """A setting is missing or unknown: exits with a message, not a traceback."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


@dataclass(frozen=True)
class Settings:
    projection: str
    table: str
    events_table: str
    endpoint_url: str | None
    parked_queue_url: str | None
    failed_queue_url: str | None = None
    archive_bucket: str | None = None  # the archive tier: rebuilds repair archived prefixes from it


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="read-model table (default: env var or outputs file)")
    parser.add_argument("--events-table", help="events table (default: EVENTS_TABLE or outputs file)")
    parser.add_argument("--endpoint-url", help="AWS endpoint (default: AWS_ENDPOINT_URL or outputs file)")
    parser.add_argument("--parked-queue-url", help="on-failure queue for parked streams (default: PARKED_QUEUE_URL)")
    parser.add_argument(
        "--failed-queue-url", help="the consumer's on-failure queue of failed batches (default: outputs file)"
    )
    parser.add_argument(
        "--outputs",
        default=str(ROOT / ".local" / "outputs.json"),
        help="stack outputs file (cdk --outputs-file format; default .local/outputs.json)",
    )


def projection_names(name: str | None) -> list[str]:
    if not name:
        raise ConfigError(f"name a projection: one of {', '.join(PROJECTIONS)} or 'all'")
    normalized = name.strip().lower().replace("-", "_")
    if normalized == "all":
        return list(PROJECTIONS)
    if normalized not in PROJECTIONS:
        raise ConfigError(f"unknown projection {name!r}; known: {', '.join(PROJECTIONS)}")
    return [normalized]


def load_outputs(path: str | Path) -> dict[str, str]:
    """All stacks' outputs merged into one {OutputKey: value} map (empty if no file)."""
    file = Path(path)
    if not file.is_file():
        return {}
    try:
        raw = json.loads(file.read_text())
    except ValueError as exc:
        raise ConfigError(f"{file} is not JSON: {exc}") from exc
    merged: dict[str, str] = {}
    for outputs in raw.values() if isinstance(raw, dict) else ():
        if isinstance(outputs, dict):
            merged.update({k: str(v) for k, v in outputs.items()})
    return merged


def resolve(projection: str, args: argparse.Namespace) -> Settings:
    spec = PROJECTIONS[projection]
    outputs = load_outputs(args.outputs)
    table = args.table or os.environ.get(spec.table_env)
    events = args.events_table or os.environ.get("EVENTS_TABLE")
    # the outputs file describes one deployment: its endpoint goes with its table names only
    from_outputs = not (table and events)
    table = table or outputs.get(spec.output_key)
    events = events or outputs.get("EventsTableName")
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint and from_outputs:
        endpoint = outputs.get("AwsEndpointUrl")
    queue = args.parked_queue_url or os.environ.get("PARKED_QUEUE_URL") or outputs.get(f"{spec.consumer}ParkedQueueUrl")
    if not table:
        raise ConfigError(f"no table for {projection}: pass --table, set {spec.table_env}, or run `make dev`")
    if not events:
        raise ConfigError("no events table: pass --events-table, set EVENTS_TABLE, or run `make dev`")
    failed = getattr(args, "failed_queue_url", None) or outputs.get(spec.failed_queue_output)
    archive = os.environ.get("ARCHIVE_BUCKET") or (outputs.get("ArchiveBucketName") if from_outputs else None)
    return Settings(projection, table, events, endpoint, queue, failed, archive)


def _prepare_environment(settings: Settings) -> None:
    if settings.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = settings.endpoint_url
        os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
        # a local endpoint (moto) accepts any credentials; never reach for real ones
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"


def build_engine(settings: Settings, *, client: Any = None) -> Any:
    """The projection's engine, wired exactly like the Lambda's (same projection object)."""
    import importlib

    from cairn.projections import Parking, ProjectionEngine
    from cairn.store.dynamodb import DynamoDBEventStore

    _prepare_environment(settings)
    if client is None:
        from cairn.aws import client as make_client

        client = make_client("dynamodb")
    spec = PROJECTIONS[settings.projection]
    module = importlib.import_module(f"{spec.context}.projections")
    app = importlib.import_module(f"{spec.context}.app")
    projection = next(p for p in module.PROJECTIONS if p.name == settings.projection)
    store = DynamoDBEventStore(app.registry, client, events_table=settings.events_table)
    if settings.archive_bucket:  # archived prefixes are gaps the engine repairs from the archive
        from cairn.archive.s3 import S3ArchiveStore
        from cairn.archive.store import ArchivedEventStore
        from cairn.aws import client as make_client

        archive = S3ArchiveStore(make_client("s3"), settings.archive_bucket)
        store = ArchivedEventStore(app.registry, client, settings.events_table, archive=archive)
    parking = Parking(client, settings.table, projection.name, queue_url=settings.parked_queue_url)
    max_attempts = int(os.environ.get("PROJECTION_MAX_ATTEMPTS", "3"))
    return ProjectionEngine(projection, client, settings.table, store, parking=parking, max_attempts=max_attempts)
