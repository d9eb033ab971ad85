"""The Cairn stack: composes the constructs, names the functions, wires env vars and grants.

Every name here follows docs/architecture.md (function names, handlers, env vars, routes); the
local runtime reads the synthesized template, so this file is the single source of wiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.bundling import LayerBuild, packages_in
from cdk_app.constructs import (
    Alerts,
    CairnFunction,
    Dashboard,
    EventBus,
    EventStore,
    HttpService,
    Integrity,
    OpsAlarms,
    PersonalDataKeys,
    Projection,
    PythonLayer,
    ReadModelTable,
    Realtime,
    Route,
    SnapshotSchedule,
)
from cdk_app.constructs.archive import ArchiveTier
from cdk_app.constructs.processes import SQS_MAX_CONCURRENCY as PROCESS_SQS_MAX_CONCURRENCY
from cdk_app.constructs.processes import payment_intents_key, wire_catalog, wire_payments

__all__ = [
    "CAIRN_LAYER",
    "CairnStack",
    "FUNCTIONS",
    "FunctionSpec",
    "LAYER_CACHE",
    "LAYER_SOURCE",
    "ROUTES",
    "SNAPSHOT_EVERY",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

# The cairn layer: layers/requirements.txt + layers/cairn/python (the cairn package), python3.13/arm64.
CAIRN_LAYER = LayerBuild(
    name="cairn",
    requirements=REPO_ROOT / "layers" / "requirements.txt",
    packages=packages_in(REPO_ROOT / "layers" / "cairn" / "python"),
)
LAYER_CACHE = REPO_ROOT / "layers" / "build"
LAYER_SOURCE = REPO_ROOT / "layers" / "cairn"  # python/cairn only: the layer when the build is skipped

# Snapshotter cadence per aggregate type (also decides which streams it is fed).
SNAPSHOT_EVERY = {"order": 50, "account": 100}


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # construct id and CloudFormation logical id of the function
    handler: str
    service: str  # POWERTOOLS_SERVICE_NAME: the `service` dimension of its metrics
    memory: int
    timeout: int  # seconds
    env: tuple[str, ...]  # which of the stack's resource env vars it gets


_STORE = ("EVENTS_TABLE", "IDEMPOTENCY_TABLE", "SNAPSHOT_BUCKET")
PERSONAL_DATA_KEY_CACHE_SECONDS = 60  # cairn.privacy.DEFAULT_TTL_SECONDS: docs/privacy.md
_ORDER_VIEWS = ("ORDER_VIEW_TABLE", "USER_ORDERS_TABLE", "ANALYTICS_TABLE")
# issue 12: crypto-shredding (the cache bound is how long an erasure takes to reach warm instances)
_PERSONAL_DATA = ("PERSONAL_DATA_KEYS_TABLE", "PERSONAL_DATA_KEY", "PERSONAL_DATA_KEY_CACHE_SECONDS")

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("OrdersCommands", "orders.api.handler", "orders", 1024, 10,
                 (*_STORE, "CATALOG_TABLE", "PAYMENT_INTENTS_TABLE", "PAYMENT_INTENTS_KEY", *_PERSONAL_DATA)),
    FunctionSpec("OrdersQueries", "orders.queries.handler", "orders", 1024, 10,
                 ("EVENTS_TABLE", "SNAPSHOT_BUCKET", *_ORDER_VIEWS, *_PERSONAL_DATA)),
    FunctionSpec("OrdersProjections", "orders.projections.handler", "orders", 1024, 60,
                 ("EVENTS_TABLE", *_ORDER_VIEWS)),
    FunctionSpec("AccountsCommands", "accounts.api.handler", "accounts", 1024, 10, _STORE),
    FunctionSpec("AccountsQueries", "accounts.queries.handler", "accounts", 1024, 10,
                 ("EVENTS_TABLE", "SNAPSHOT_BUCKET", "ACCOUNT_VIEW_TABLE")),
    FunctionSpec("AccountsProjections", "accounts.projections.handler", "accounts", 1024, 60,
                 ("EVENTS_TABLE", "ACCOUNT_VIEW_TABLE")),
    FunctionSpec("InventoryQueries", "inventory.queries.handler", "inventory", 512, 10, ("INVENTORY_TABLE",)),
    FunctionSpec("NotificationsQueries", "notifications.queries.handler", "notifications", 512, 10,
                 ("NOTIFICATIONS_TABLE",)),
    # Ops takes snapshots on demand (POST /ops/snapshots) with the contexts' runtimes.
    FunctionSpec("Ops", "cairn_platform.ops.handler", "platform", 512, 10,
                 (*_ORDER_VIEWS, "ACCOUNT_VIEW_TABLE", "CATALOG_TABLE", "EVENTS_TABLE", "SNAPSHOT_BUCKET")),
    # Unauthenticated routes and $default: no environment, no data permission (issue 17 #6).
    FunctionSpec("Public", "cairn_platform.public.handler", "platform", 512, 10, ()),
    FunctionSpec("Snapshotter", "cairn_platform.snapshotter.handler", "platform", 1024, 60,
                 ("EVENTS_TABLE", "SNAPSHOT_BUCKET", "SNAPSHOT_EVERY")),
    FunctionSpec("ScheduledSnapshots", "cairn_platform.snapshotter.scheduled_handler", "platform", 1024, 900,
                 ("EVENTS_TABLE", "SNAPSHOT_BUCKET", "SNAPSHOT_EVERY")),
    # The publisher folds order streams with the orders runtime (store + snapshots) to translate.
    FunctionSpec("Publisher", "cairn_platform.publisher.handler", "platform", 512, 30,
                 ("EVENTS_TABLE", "SNAPSHOT_BUCKET", "EVENT_BUS_NAME")),
    FunctionSpec("Payments", "payments.handler.handler", "payments", 1024, 30,
                 ("EVENTS_TABLE", "IDEMPOTENCY_TABLE", "PAYMENT_INTENTS_TABLE")),
    FunctionSpec("OrderPayments", "orders.payment_events.handler", "orders", 1024, 30, _STORE),
    FunctionSpec("PaymentTimeouts", "orders.timeouts.handler", "orders", 1024, 60,
                 (*_STORE, "PAYMENT_TIMEOUTS_TABLE", "PAYMENT_TIMEOUT_SECONDS")),
    FunctionSpec("Inventory", "inventory.handler.handler", "inventory", 512, 30, ("INVENTORY_TABLE",)),
    FunctionSpec("Notifications", "notifications.handler.handler", "notifications", 512, 30,
                 ("NOTIFICATIONS_TABLE",)),
    FunctionSpec("Catalog", "catalog.api.handler", "catalog", 512, 10,
                 ("EVENTS_TABLE", "IDEMPOTENCY_TABLE", "CATALOG_TABLE")),
    FunctionSpec("CatalogProjections", "catalog.projections.handler", "catalog", 512, 60,
                 ("EVENTS_TABLE", "CATALOG_TABLE")),
    # The log proves itself (issue 11): MODIFY/REMOVE records of the events table; the digest job.
    FunctionSpec("TamperDetector", "cairn_platform.tamper.handler", "platform", 256, 30, ()),
    # One scan per run within the 60 s every function here keeps; a store too large for that is
    # verified by `make verify` (parallel segments) until the job is split (docs/deploy.md).
    FunctionSpec("DigestJob", "cairn_platform.digest.handler", "platform", 1024, 60, ("EVENTS_TABLE",)),
    # The archive tier (issue 13): old events to verified S3 segments, then removed from the table.
    FunctionSpec("Archiver", "cairn_platform.archiver.handler", "platform", 1024, 900,
                 ("EVENTS_TABLE", "SNAPSHOT_BUCKET")),
)
# The aggregates each writer may append to (dynamodb:LeadingKeys on the events table).
WRITER_STREAMS = {
    "OrdersCommands": ("order-", "erasure-"),  # erasure-<sub>: the audit record of an erasure
    "AccountsCommands": ("account-",),
}

# Reserved concurrency of the HTTP functions (``-c reserved_concurrency=true``; docs/deploy.md).
# Sized for the stage throttle (200 req/s, bursts of 400) at a p99 of ~250 ms warm: ~100 in
# flight across the API, split by expected traffic, with headroom for cold starts. The sum (152)
# is both a floor (the API always has it) and a ceiling (the API never takes more, so stream and
# queue consumers keep the rest). Off by default: Lambda keeps 100 of the account's concurrency
# unreserved, and new accounts may start with a quota of 10, where any reservation fails the deploy.
HTTP_RESERVED_CONCURRENCY: dict[str, int] = {
    "OrdersCommands": 40,
    "OrdersQueries": 40,
    "AccountsCommands": 20,
    "AccountsQueries": 20,
    "InventoryQueries": 10,
    "NotificationsQueries": 10,
    "Catalog": 10,
    "Ops": 2,
    "Public": 10,
}
# Each SQS subscription's poller invokes at most this many copies of its function at once.
SQS_MAX_CONCURRENCY = PROCESS_SQS_MAX_CONCURRENCY

# (method, path, function, public) — exactly the routes of API.md / docs/architecture.md.
ROUTES: tuple[tuple[str, str, str, bool], ...] = (
    ("POST", "/orders", "OrdersCommands", False),
    ("POST", "/orders/{id}/payment", "OrdersCommands", False),
    ("POST", "/orders/{id}/shipment", "OrdersCommands", False),
    ("POST", "/orders/{id}/delivery", "OrdersCommands", False),
    ("POST", "/orders/{id}/cancellation", "OrdersCommands", False),
    ("POST", "/orders/{id}/refund", "OrdersCommands", False),
    ("GET", "/orders/{id}", "OrdersQueries", False),
    ("GET", "/orders/{id}/history", "OrdersQueries", False),
    ("GET", "/orders/{id}/events", "OrdersQueries", False),
    ("GET", "/orders/{id}/verification", "OrdersQueries", False),
    ("GET", "/users/me/orders", "OrdersQueries", False),
    ("GET", "/analytics/daily", "OrdersQueries", False),
    ("DELETE", "/users/me/personal-data", "OrdersCommands", False),
    ("DELETE", "/users/{sub}/personal-data", "OrdersCommands", False),
    ("POST", "/accounts", "AccountsCommands", False),
    ("POST", "/accounts/{id}/deposits", "AccountsCommands", False),
    ("POST", "/accounts/{id}/withdrawals", "AccountsCommands", False),
    ("GET", "/accounts/{id}", "AccountsQueries", False),
    ("GET", "/accounts/{id}/history", "AccountsQueries", False),
    ("GET", "/accounts/{id}/events", "AccountsQueries", False),
    ("GET", "/accounts/{id}/verification", "AccountsQueries", False),
    ("GET", "/inventory/{sku}", "InventoryQueries", False),
    ("GET", "/users/me/notifications", "NotificationsQueries", False),
    ("GET", "/ops/projections", "Ops", False),
    ("PUT", "/catalog/{sku}", "Catalog", False),
    ("GET", "/catalog/{sku}", "Catalog", False),
    ("POST", "/ops/snapshots", "Ops", False),
    ("GET", "/health", "Public", True),
    ("GET", "/openapi.json", "Public", True),
)

# Read-model and service tables: env var -> (construct id, CfnOutput key).
TABLES = {
    "ORDER_VIEW_TABLE": ("OrderView", "OrderViewTableName"),
    "USER_ORDERS_TABLE": ("UserOrders", "UserOrdersTableName"),
    "ANALYTICS_TABLE": ("Analytics", "AnalyticsTableName"),
    "ACCOUNT_VIEW_TABLE": ("AccountView", "AccountViewTableName"),
    "INVENTORY_TABLE": ("InventoryTable", "InventoryTableName"),
    "NOTIFICATIONS_TABLE": ("NotificationsTable", "NotificationsTableName"),
    "CATALOG_TABLE": ("CatalogTable", "CatalogTableName"),
    "PAYMENT_INTENTS_TABLE": ("PaymentIntents", "PaymentIntentsTableName"),
    "PAYMENT_TIMEOUTS_TABLE": ("PaymentTimeoutsTable", "PaymentTimeoutsTableName"),
}
# Tables whose consumers write expiring dedupe records.
TTL_ATTRIBUTES = {"INVENTORY_TABLE": "expires_at", "PAYMENT_INTENTS_TABLE": "expires_at"}
# View tables whose commits are pushed over the WebSocket API: stream prefix -> env var.
PUSHED_VIEWS = {"order-": "ORDER_VIEW_TABLE", "account-": "ACCOUNT_VIEW_TABLE"}

_CODE_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "**/tests",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.mypy_cache",
]


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def _retention(days: int) -> logs.RetentionDays:
    if days not in _RETENTION:
        raise ValueError(f"log_retention_days must be one of {sorted(_RETENTION)}, got {days}")
    return _RETENTION[days]


class CairnStack(Stack):
    """Everything Cairn needs in one account/region."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        skip_layer_build: bool = False,
        log_retention_days: int = 30,
        api_rate_limit: int = 200,
        api_burst_limit: int = 400,
        notifications_email_from: str | None = None,
        payment_timeout_seconds: int = 900,
        reserved_concurrency: bool = False,
        cognito_threat_protection: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, description="Cairn: serverless event sourcing + CQRS", **kwargs)
        log_retention = _retention(log_retention_days)
        # CDK adds DependsOn on a function's role and policy although the GetAtt already orders them.
        self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ["W3005"]}}}

        alerts = Alerts(self, "Alerts")
        store = EventStore(self, "EventStore")
        # issue 12: the KMS key + keys table of crypto-shredding (docs/privacy.md)
        self.personal_data = PersonalDataKeys(self, "PersonalData")
        tables = {
            env: ReadModelTable(
                self, cid, time_to_live_attribute=TTL_ATTRIBUTES.get(env),
                stream=dynamodb.StreamViewType.NEW_IMAGE if env in PUSHED_VIEWS.values() else None,
            ).table
            for env, (cid, _) in TABLES.items()
        }
        bus = EventBus(self, "IntegrationEvents", source="cairn.orders", alerts=alerts)

        layer = PythonLayer(
            self,
            "CairnLayer",
            build=CAIRN_LAYER,
            cache_root=LAYER_CACHE,
            fallback_dir=LAYER_SOURCE,
            skip_build=skip_layer_build,
            description="cairn runtime + Powertools + pydantic (python3.13, arm64)",
        )
        intents_key = payment_intents_key(self)
        code = lambda_.Code.from_asset(str(REPO_ROOT / "functions"), exclude=_CODE_EXCLUDES)

        env_values = {
            "EVENTS_TABLE": store.events_table.table_name,
            "IDEMPOTENCY_TABLE": store.idempotency_table.table_name,
            "SNAPSHOT_BUCKET": store.snapshot_bucket.bucket_name,
            "EVENT_BUS_NAME": bus.bus.event_bus_name,
            "SNAPSHOT_EVERY": ",".join(f"{kind}={every}" for kind, every in SNAPSHOT_EVERY.items()),
            "PAYMENT_INTENTS_KEY": intents_key.key_arn,
            "PAYMENT_TIMEOUT_SECONDS": str(payment_timeout_seconds),
            "PERSONAL_DATA_KEYS_TABLE": self.personal_data.table.table_name,
            "PERSONAL_DATA_KEY": self.personal_data.key.key_arn,
            "PERSONAL_DATA_KEY_CACHE_SECONDS": str(PERSONAL_DATA_KEY_CACHE_SECONDS),
            **{env: table.table_name for env, table in tables.items()},
        }
        fns: dict[str, CairnFunction] = {}
        for spec in FUNCTIONS:
            fn = CairnFunction(
                self,
                spec.name,
                code=code,
                handler=spec.handler,
                service=spec.service,
                memory_size=spec.memory,
                timeout=Duration.seconds(spec.timeout),
                layers=[layer.layer],
                environment={key: env_values[key] for key in spec.env},
                log_retention=log_retention,
                description=f"Cairn {spec.name} ({spec.handler})",
                reserved_concurrent_executions=(
                    HTTP_RESERVED_CONCURRENCY.get(spec.name) if reserved_concurrency else None
                ),
            )
            fn.function.node.default_child.override_logical_id(spec.name)  # type: ignore[union-attr]
            fns[spec.name] = fn
        self.functions = fns

        # -- commands: append events + markers, load snapshots (never write them) ---------------
        for name, prefixes in WRITER_STREAMS.items():
            store.grant_append(fns[name].role, prefixes)
            store.grant_write_markers(fns[name].role)
            store.grant_snapshot_read(fns[name].role)

        # -- personal data: OrdersCommands seals (and erases), OrdersQueries only opens ----------
        self.personal_data.grant_seal(fns["OrdersCommands"].role)
        self.personal_data.grant_open(fns["OrdersQueries"].role)

        # -- queries: read only -----------------------------------------------------------------
        for name, views in (
            ("OrdersQueries", _ORDER_VIEWS),
            ("AccountsQueries", ("ACCOUNT_VIEW_TABLE",)),
        ):
            store.grant_read_events(fns[name].role)
            store.grant_snapshot_read(fns[name].role)
            for env in views:
                tables[env].grant_read_data(fns[name].role)
        tables["INVENTORY_TABLE"].grant_read_data(fns["InventoryQueries"].role)
        tables["NOTIFICATIONS_TABLE"].grant_read_data(fns["NotificationsQueries"].role)
        for env in (*_ORDER_VIEWS, "ACCOUNT_VIEW_TABLE", "CATALOG_TABLE"):
            tables[env].grant_read_data(fns["Ops"].role)

        # -- stream consumers ---------------------------------------------------------------------
        projections = {
            "OrdersProjections": Projection(
                self,
                "OrdersProjection",
                function=fns["OrdersProjections"],
                event_store=store,
                stream_prefixes=["order-"],
                read_models=[tables[env] for env in _ORDER_VIEWS],
                alerts=alerts,
            ),
            "AccountsProjections": Projection(
                self,
                "AccountsProjection",
                function=fns["AccountsProjections"],
                event_store=store,
                stream_prefixes=["account-"],
                read_models=[tables["ACCOUNT_VIEW_TABLE"]],
                alerts=alerts,
            ),
            "Snapshotter": Projection(
                self,
                "SnapshotterConsumer",
                function=fns["Snapshotter"],
                event_store=store,
                stream_prefixes=[f"{kind}-" for kind in SNAPSHOT_EVERY],
                alerts=alerts,
                emits_parked_streams=False,
            ),
            "Publisher": Projection(
                self,
                "PublisherConsumer",
                function=fns["Publisher"],
                event_store=store,
                stream_prefixes=["order-", "payment-"],
                alerts=alerts,
                emits_parked_streams=False,
            ),
        }
        projections["CatalogProjections"] = wire_catalog(
            self, catalog=fns["Catalog"], projections=fns["CatalogProjections"], orders_commands=fns["OrdersCommands"],
            store=store, table=tables["CATALOG_TABLE"], alerts=alerts,
        )
        # Ops: failed batches per projection (GET /ops/projections), snapshots on demand
        for env, consumer in (("ORDERS_FAILED_QUEUE_URL", "OrdersProjections"),
                              ("ACCOUNTS_FAILED_QUEUE_URL", "AccountsProjections")):
            queue = projections[consumer].failed_queue
            fns["Ops"].add_environment(env, queue.queue_url)
            queue.grant(fns["Ops"].role, "sqs:GetQueueAttributes", "sqs:ReceiveMessage")
        store.grant_read_events(fns["Ops"].role)
        store.grant_snapshot_read(fns["Ops"].role)
        store.grant_snapshot_write(fns["Ops"].role)
        SnapshotSchedule(self, "SnapshotSchedule", function=fns["ScheduledSnapshots"], event_store=store, alerts=alerts)
        integrity = Integrity(
            self,
            "Integrity",
            store=store,
            tamper_detector=fns["TamperDetector"],
            digest_job=fns["DigestJob"],
            alerts=alerts,
            deleters=[fns["Archiver"].role],
        )
        archive = ArchiveTier(
            self,
            "Archive",
            store=store,
            archiver=fns["Archiver"],
            # every function that reads events, and the tamper detector (it reads manifests)
            readers=[fns[f.name] for f in FUNCTIONS if f.name != "Archiver" and ("EVENTS_TABLE" in f.env or f.name == "TamperDetector")],
            alerts=alerts,
        )
        store.grant_snapshot_read(fns["Snapshotter"].role)
        store.grant_snapshot_write(fns["Snapshotter"].role)
        store.grant_snapshot_read(fns["Publisher"].role)
        bus.grant_put(fns["Publisher"].role)

        # -- event-driven consumers (EventBridge -> SQS -> Lambda) --------------------------------
        subscriptions = [
            *wire_payments(
                self, fns=fns, store=store, bus=bus, intents=tables["PAYMENT_INTENTS_TABLE"], intents_key=intents_key,
                timeouts_table=tables["PAYMENT_TIMEOUTS_TABLE"],
            ),
            bus.subscribe(
                "InventorySubscription",
                function=fns["Inventory"],
                detail_types=["OrderCreated", "OrderCancelled", "PaymentFailed"],
                max_concurrency=SQS_MAX_CONCURRENCY,
            ),
            bus.subscribe(
                "NotificationsSubscription",
                function=fns["Notifications"],
                detail_types=["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"],
                max_concurrency=SQS_MAX_CONCURRENCY,
            ),
        ]
        tables["INVENTORY_TABLE"].grant_read_write_data(fns["Inventory"].role)
        tables["NOTIFICATIONS_TABLE"].grant_read_write_data(fns["Notifications"].role)

        # -- HTTP ------------------------------------------------------------------------------------
        http = HttpService(
            self,
            "Http",
            routes=[Route(method, path, fns[fn].function, public) for method, path, fn, public in ROUTES],
            rate_limit=api_rate_limit,
            burst_limit=api_burst_limit,
            fallback=fns["Public"].function,
            threat_protection=cognito_threat_protection,
        )
        self.http = http
        if notifications_email_from:
            self._enable_notification_email(fns["Notifications"], http, notifications_email_from)

        # -- real-time updates (WebSocket) ------------------------------------------------------------
        realtime = Realtime(
            self,
            "Realtime",
            code=code,
            layers=[layer.layer],
            user_pool=http.user_pool,
            user_pool_client=http.client,
            view_tables={prefix: tables[env] for prefix, env in PUSHED_VIEWS.items()},
            alerts=alerts,
            log_retention=log_retention,
        )
        self.realtime = realtime

        # -- alarms not owned by a construct, dashboard ---------------------------------------------
        alerts.alarm(
            self,
            "Api5xxAlarm",
            metric=http.api.metric_server_error(statistic="Sum", period=Duration.minutes(5)),
            threshold=5,
            description="The HTTP API answered 5 or more 5xx in 5 minutes",
        )
        alerts.alarm(
            self,
            "EventsWriteThrottlesAlarm",
            metric=store.events_table.metric("WriteThrottleEvents", statistic="Sum", period=Duration.minutes(5)),
            threshold=10,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description="Appends to the events table are being throttled",
        )
        OpsAlarms(self, "OpsAlarms", alerts=alerts, command_services=["orders", "accounts", "payments"],
                  events_table=store.events_table)
        dashboard = Dashboard(
            self,
            "Dashboard",
            api=http.api,
            command_services=["orders", "accounts", "payments"],
            projections=projections,
            subscriptions=subscriptions,
            tables={
                "Events": store.events_table,
                "Idempotency": store.idempotency_table,
                **{cid: tables[env] for env, (cid, _) in TABLES.items()},
                "Connections": realtime.connections,
            },
            functions={**fns, **realtime.functions},
            alarms=list(alerts.alarms),
        )
        dashboard.dashboard.add_widgets(*realtime.widgets())

        # -- outputs (names fixed: docs/deploy.md and the local runtime use them) ----------------
        outputs = {
            "ApiUrl": http.url,
            "WsUrl": realtime.url,
            "ConnectionsTableName": realtime.connections.table_name,
            "UserPoolId": http.user_pool.user_pool_id,
            "UserPoolClientId": http.client.user_pool_client_id,
            "EventsTableName": store.events_table.table_name,
            "IdempotencyTableName": store.idempotency_table.table_name,
            "SnapshotBucketName": store.snapshot_bucket.bucket_name,
            "DigestBucketName": integrity.digest_bucket.bucket_name,
            "ArchiveBucketName": archive.bucket.bucket_name,
            "BreakGlassRoleArn": integrity.break_glass.role_arn,
            "EventBusName": bus.bus.event_bus_name,
            **{output: tables[env].table_name for env, (_, output) in TABLES.items()},
            "AlarmTopicArn": alerts.topic.topic_arn,
            "DashboardName": dashboard.dashboard.dashboard_name,
            # on-failure queues (make redrive, make status): names fixed in cairn_tools/config.py
            **{f"{name}FailedQueueUrl": p.failed_queue.queue_url for name, p in projections.items()},
            **{f"{name}ParkedQueueUrl": p.parked_queue.queue_url for name, p in projections.items()},
        }
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)

    def _enable_notification_email(self, notifications, http, from_address: str) -> None:
        """The SES switch (off by default): ``cdk deploy -c notifications_email_from=no-reply@example.com``.

        The sender must be a verified SES identity in the account; the function looks users' e-mail
        addresses up in the user pool.
        """
        notifications.add_environment("NOTIFICATIONS_SEND_EMAIL", "true")
        notifications.add_environment("NOTIFICATIONS_FROM_ADDRESS", from_address)
        notifications.add_environment("USER_POOL_ID", http.user_pool.user_pool_id)
        domain = from_address.rsplit("@", 1)[-1]
        notifications.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail"],
                resources=[
                    self.format_arn(service="ses", resource="identity", resource_name=from_address),
                    self.format_arn(service="ses", resource="identity", resource_name=domain),
                ],
            )
        )
        notifications.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cognito-idp:ListUsers"], resources=[http.user_pool.user_pool_arn])
        )
        # an order's own e-mail travels sealed on the bus (issue 12): the sender opens it, nothing else
        notifications.add_environment("PERSONAL_DATA_KEYS_TABLE", self.personal_data.table.table_name)
        notifications.add_environment("PERSONAL_DATA_KEY", self.personal_data.key.key_arn)
        notifications.add_environment("PERSONAL_DATA_KEY_CACHE_SECONDS", str(PERSONAL_DATA_KEY_CACHE_SECONDS))
        self.personal_data.grant_open(notifications.role)
