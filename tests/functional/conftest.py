"""Functional tests: the HTTP Lambda handlers, called with real-shaped API Gateway v2 events, on moto.

Events are built from ``tests/events/apigw_http_v2*.json`` (captured shapes of HTTP API payload
format 2.0 with a JWT authorizer): method, paths, route key, path parameters, query string,
headers, body and the authorizer's claims are set exactly as API Gateway would set them.
Environment variables follow docs/architecture.md; the tables are created with the production
key layout.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"

ENV = {
    "EVENTS_TABLE": "cairn-events",
    "IDEMPOTENCY_TABLE": "cairn-idempotency",
    "SNAPSHOT_BUCKET": "cairn-snapshots",
    "ORDER_VIEW_TABLE": "cairn-order-view",
    "USER_ORDERS_TABLE": "cairn-user-orders",
    "ANALYTICS_TABLE": "cairn-analytics",
    "ACCOUNT_VIEW_TABLE": "cairn-account-view",
    "INVENTORY_TABLE": "cairn-inventory",
    "NOTIFICATIONS_TABLE": "cairn-notifications",
    "CATALOG_TABLE": "cairn-catalog",
    "PAYMENT_INTENTS_TABLE": "cairn-payment-intents",
    "PAYMENT_INTENTS_KEY": "alias/cairn-payment-intents",
    "PERSONAL_DATA_KEYS_TABLE": "cairn-personal-data-keys",
    "PERSONAL_DATA_KEY": "alias/cairn-personal-data",
    "POWERTOOLS_METRICS_NAMESPACE": "Cairn",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "SNAPSHOT_EVERY": "order=50,account=100",
}

READ_MODEL_TABLES = ("ORDER_VIEW_TABLE", "USER_ORDERS_TABLE", "ANALYTICS_TABLE", "ACCOUNT_VIEW_TABLE",
                     "INVENTORY_TABLE", "NOTIFICATIONS_TABLE", "CATALOG_TABLE", "PAYMENT_INTENTS_TABLE")

# Every route of API.md, as API Gateway's route keys: used to fill routeKey and pathParameters.
ROUTES = (
    "POST /orders",
    "POST /orders/{id}/payment",
    "POST /orders/{id}/shipment",
    "POST /orders/{id}/delivery",
    "POST /orders/{id}/cancellation",
    "POST /orders/{id}/refund",
    "PUT /catalog/{sku}",
    "GET /catalog/{sku}",
    "GET /orders/{id}",
    "GET /orders/{id}/history",
    "GET /orders/{id}/events",
    "GET /orders/{id}/verification",
    "GET /users/me/orders",
    "DELETE /users/me/personal-data",
    "DELETE /users/{sub}/personal-data",
    "GET /analytics/daily",
    "POST /accounts",
    "POST /accounts/{id}/deposits",
    "POST /accounts/{id}/withdrawals",
    "GET /accounts/{id}",
    "GET /accounts/{id}/history",
    "GET /accounts/{id}/events",
    "GET /accounts/{id}/verification",
    "GET /inventory/{sku}",
    "GET /users/me/notifications",
    "GET /health",
    "GET /openapi.json",
    "GET /ops/projections",
    "POST /ops/snapshots",
)
PUBLIC_ROUTES = frozenset({"GET /health", "GET /openapi.json"})


def _route_regex(template: str) -> re.Pattern[str]:
    method, path = template.split(" ", 1)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{method} {pattern}$")


_ROUTE_PATTERNS = [(t, _route_regex(t)) for t in ROUTES]


def match_route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """(routeKey, pathParameters) as API Gateway resolves them; ``$default`` when no route matches."""
    for template, regex in _ROUTE_PATTERNS:
        found = regex.match(f"{method} {path}")
        if found:
            return template, found.groupdict()
    return "$default", {}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | bytes | None = None,
    user: str | None = "alice",
    groups: Any = (),
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, Any] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event; ``user=None`` means a route without authorizer."""
    event = load_event("apigw_http_v2.json" if user is not None else "apigw_http_v2_public.json")
    route_key, params = match_route(method, path)
    event["routeKey"] = route_key
    event["rawPath"] = path
    ctx = event["requestContext"]
    ctx["routeKey"] = route_key
    ctx["http"]["method"] = method
    ctx["http"]["path"] = path
    ctx["requestId"] = base64.b64encode(uuid.uuid4().bytes[:10]).decode()
    if params:
        event["pathParameters"] = params
    else:
        event.pop("pathParameters", None)
    if query:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
    else:
        event["rawQueryString"] = ""
        event.pop("queryStringParameters", None)
    hdrs = {k: v for k, v in event["headers"].items() if k not in ("content-length", "content-type")}
    if user is None:
        hdrs.pop("authorization", None)
    else:
        claims = ctx["authorizer"]["jwt"]["claims"]
        claims["sub"] = user
        claims["username"] = user
        if isinstance(groups, str) or groups is None:
            value = groups
        else:
            value = f"[{' '.join(groups)}]" if groups else None  # API Gateway's rendering of a list claim
        if value is None:
            claims.pop("cognito:groups", None)
        else:
            claims["cognito:groups"] = value
    payload: str | None
    if raw_body is not None:
        payload = raw_body.decode() if isinstance(raw_body, bytes) else raw_body
    elif body is not None:
        payload = json.dumps(body)
    else:
        payload = None
    if payload is not None:
        hdrs["content-type"] = "application/json"
        hdrs["content-length"] = str(len(payload.encode()))
    for name, value in (headers or {}).items():
        if value is None:
            hdrs.pop(name.lower(), None)
        else:
            hdrs[name.lower()] = value  # API Gateway v2 lower-cases header names
    event["headers"] = hdrs
    if payload is None:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    elif base64_body:
        event["body"] = base64.b64encode(payload.encode()).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = payload
        event["isBase64Encoded"] = False
    return event


@dataclass
class LambdaContext:
    function_name: str = "cairn-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cairn-test"
    log_group_name: str = "/aws/lambda/cairn-test"
    log_stream_name: str = "2026/11/26/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    event: dict[str, Any]

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def is_problem(self, status: int, code: str | None = None) -> bool:
        body = self.json
        return (
            self.status == status
            and self.content_type == "application/problem+json"
            and body["status"] == status
            and {"type", "title", "status", "detail"} <= set(body)
            and (code is None or body["type"] == f"https://cairn.dev/problems/{code}")
        )


def seed_catalog(entries: Mapping[str, tuple[str, str]]) -> None:
    """Products in the catalog's read model ({sku: (unit_price, currency)}), written as the catalog
    projection writes them (checkpoint item of ``product-<sku>`` in the active generation)."""
    import os

    from cairn.projections.codec import to_attr
    from cairn.projections.layout import checkpoint_key
    from cairn.projections.readers import ReadModelTable

    table = os.environ.get("CATALOG_TABLE", ENV["CATALOG_TABLE"])
    ddb = _plain_dynamodb(os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    generation = ReadModelTable(ddb, table).generation()
    for sku, (price, currency) in entries.items():
        entry = {"sku": sku, "name": sku, "unit_price": price, "currency": currency, "version": 1}
        item = {**checkpoint_key(generation, f"product-{sku}"), "version": {"N": "1"}, "state": to_attr(entry)}
        ddb.put_item(TableName=table, Item=item)


def _plain_dynamodb(region: str) -> Any:
    """A plain client, not cairn.aws's: fault injection (tests/reliability) targets the code under
    test, not the fixture. Made once per region and default session (making one per seeded order
    was a quarter of the command fault suite's time)."""
    import boto3
    from botocore.config import Config

    session = boto3.DEFAULT_SESSION
    made = _PLAIN_CLIENTS.get(region)
    if made is None or made[0] is not session or session is None:  # the session held: no id reused
        client = boto3.client("dynamodb", region_name=region, config=Config(account_id_endpoint_mode="disabled"))
        made = _PLAIN_CLIENTS[region] = (boto3.DEFAULT_SESSION, client)
    return made[1]


_PLAIN_CLIENTS: dict[str, tuple[Any, Any]] = {}  # region -> (the default session it was made in, client)


def seed_catalog_for(body: Any) -> None:
    """Seed the catalog with the prices an order body sends (tests written before the catalog
    existed send their own prices; the order service still reads them from the catalog)."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return
    currency = body.get("currency")
    entries = {}
    for line in body["items"]:
        if isinstance(line, dict) and isinstance(line.get("sku"), str) and isinstance(line.get("unit_price"), str):
            entries[line["sku"]] = (line["unit_price"], currency if isinstance(currency, str) else "USD")
    if entries:
        try:
            seed_catalog(entries)
        except Exception:  # noqa: BLE001 - a body the handler will refuse anyway (bad sku, price)
            pass


class Api:
    """Calls one Lambda handler like API Gateway does and checks the integration response shape.

    ``seed_catalog=True``: a ``POST /orders`` first lists its lines' SKUs at the prices it sends
    (see :func:`seed_catalog_for`); pricing tests turn it off.
    """

    def __init__(self, handler: Callable[[dict[str, Any], Any], dict[str, Any]], *, seed_catalog: bool = True):
        self.handler = handler
        self.seed_catalog = seed_catalog

    def __call__(self, method: str, path: str, **kwargs: Any) -> Reply:
        event = api_event(method, path, **kwargs)
        return self.invoke(event)

    def invoke(self, event: dict[str, Any]) -> Reply:
        if self.seed_catalog and event.get("routeKey") == "POST /orders" and event.get("body"):
            try:
                raw = event["body"]
                seed_catalog_for(json.loads(base64.b64decode(raw) if event.get("isBase64Encoded") else raw))
            except (ValueError, RecursionError):
                pass
        response = self.handler(copy.deepcopy(event), LambdaContext())
        assert set(response) >= {"statusCode", "body"}, response
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return Reply(int(response["statusCode"]), headers, body, event)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        if body is None and "raw_body" not in kwargs:
            body = {}
        return self("POST", path, body=body, **kwargs)


def emf_records(output: str) -> list[dict[str, Any]]:
    """EMF blobs (Powertools Metrics prints one JSON line per flush) in captured stdout."""
    records = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def metric_values(output: str, name: str) -> list[float]:
    values: list[float] = []
    for record in emf_records(output):
        if name in record:
            value = record[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


def log_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' not in line:
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


@contextlib.contextmanager
def captured_logs(service: Any) -> Iterator[list[dict[str, Any]]]:
    """The JSON lines ``service.logger`` writes meanwhile (same Powertools formatter)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(service.logger.registered_formatter)
    service.logger.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        service.logger.removeHandler(handler)
        lines.extend(json.loads(line) for line in buffer.getvalue().splitlines() if line.strip())


def create_intents_key() -> None:
    """The payment-intents KMS key, under the alias ``PAYMENT_INTENTS_KEY`` names."""
    from cairn.aws import client

    kms = client("kms")
    key_id = kms.create_key(Description="payment intents")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ENV["PAYMENT_INTENTS_KEY"], TargetKeyId=key_id)


def create_personal_data_keys() -> None:
    """The crypto-shredding KMS key (alias ``PERSONAL_DATA_KEY``) and keys table (issue 12)."""
    from cairn.aws import client
    from cairn.privacy.dynamodb import create_keys_table

    kms = client("kms")
    key_id = kms.create_key(Description="personal data keys")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ENV["PERSONAL_DATA_KEY"], TargetKeyId=key_id)
    create_keys_table(client("dynamodb"), ENV["PERSONAL_DATA_KEYS_TABLE"])


def reset_runtimes() -> None:
    """Forget warm state: runtimes and query clients are per process (per "container")."""
    import accounts.app
    import accounts.queries
    import orders.app
    import orders.queries

    orders.app.runtime.cache_clear()
    orders.app.price_list.cache_clear()
    orders.app.payment_intents.cache_clear()
    orders.app.personal_data.cache_clear()
    import catalog.api
    import catalog.app

    catalog.app.runtime.cache_clear()
    catalog.api._dynamodb.cache_clear()
    accounts.app.runtime.cache_clear()
    orders.queries._dynamodb.cache_clear()
    accounts.queries._dynamodb.cache_clear()
    from cairn.projections.generations import clear_generation_cache

    clear_generation_cache()


@pytest.fixture
def cloud(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Tables and bucket named per the env conventions, fresh runtimes (no warm state)."""
    from cairn.aws import client
    from cairn.store.dynamodb import create_tables

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    ddb = client("dynamodb")
    create_tables(ddb, ENV["EVENTS_TABLE"], ENV["IDEMPOTENCY_TABLE"])
    for var in READ_MODEL_TABLES:
        ddb.create_table(
            TableName=ENV[var],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    client("s3").create_bucket(Bucket=ENV["SNAPSHOT_BUCKET"])
    create_intents_key()
    create_personal_data_keys()
    reset_runtimes()
    yield dict(ENV)
    reset_runtimes()


@pytest.fixture
def orders_api(cloud: dict[str, str]) -> Api:
    from orders.api import handler

    return Api(handler)


@pytest.fixture
def orders_queries(cloud: dict[str, str]) -> Api:
    from orders.queries import handler

    return Api(handler)


@pytest.fixture
def accounts_api(cloud: dict[str, str]) -> Api:
    from accounts.api import handler

    return Api(handler)


@pytest.fixture
def accounts_queries(cloud: dict[str, str]) -> Api:
    from accounts.queries import handler

    return Api(handler)


@pytest.fixture
def ops(cloud: dict[str, str]) -> Api:
    from cairn_platform.ops import handler

    return Api(handler)


@pytest.fixture
def public(cloud: dict[str, str]) -> Api:
    from cairn_platform.public import handler

    return Api(handler)


ORDER_BODY = {
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"}, {"sku": "SKU-2", "quantity": 1, "unit_price": "0.02"}],
    "currency": "USD",
}
ORDER_TOTAL = "20.00"


class Projector:
    """Feeds new records of the events table's stream to a projection Lambda, like its event
    source mapping (filter on the ``stream_id`` prefix). ``kinesis=True`` delivers them the way a
    fan-out reader gets them deployed (Kinesis Data Streams for DynamoDB records); otherwise in
    Lambda's DynamoDB-stream event shape."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], prefix: str, *, kinesis: bool = False):
        from cairn.aws import client

        self.handler = handler
        self.prefix = prefix
        self.kinesis = kinesis
        self.sequence = 0
        self.streams = client("dynamodbstreams")
        table = client("dynamodb").describe_table(TableName=ENV["EVENTS_TABLE"])["Table"]
        self.arn = table["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def records(self) -> list[dict[str, Any]]:
        response = self.streams.get_records(ShardIterator=self.iterator)
        self.iterator = response.get("NextShardIterator")
        out = []
        for record in response.get("Records", []):
            ddb = dict(record["dynamodb"])
            created = ddb.get("ApproximateCreationDateTime")
            if created is not None and not isinstance(created, int | float):
                ddb["ApproximateCreationDateTime"] = int(created.timestamp())
            if not ddb["Keys"]["stream_id"]["S"].startswith(self.prefix):
                continue
            out.append(
                {
                    "eventID": record["eventID"],
                    "eventName": record["eventName"],
                    "eventVersion": record.get("eventVersion", "1.1"),
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "dynamodb": ddb,
                    "eventSourceARN": self.arn,
                }
            )
        return out

    def as_kinesis(self, record: dict[str, Any]) -> dict[str, Any]:
        from cairn.projections.kinesis import kinesis_record

        self.sequence += 1
        return kinesis_record(record, sequence_number=f"{self.sequence:056d}", table_name=ENV["EVENTS_TABLE"],
                              stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/cairn-events")

    def run(self) -> int:
        """Deliver everything new; returns how many records were delivered."""
        records = self.records()
        if records and self.kinesis:
            records = [self.as_kinesis(record) for record in records]
        if records:
            result = self.handler({"Records": records}, LambdaContext())
            assert not (result or {}).get("batchItemFailures"), result
        return len(records)


@pytest.fixture
def order_projector(cloud: dict[str, str]) -> Projector:
    from orders.projections import handler

    return Projector(handler, "order-", kinesis=True)  # deployed, it reads the Kinesis fan-out


@pytest.fixture
def account_projector(cloud: dict[str, str]) -> Projector:
    from accounts.projections import handler

    return Projector(handler, "account-", kinesis=True)
