"""The synthesized Cairn stack matches docs/architecture.md and the deployment requirements."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from tests.infrastructure.cdk_helpers import (
    Synth,
    architecture_functions,
    architecture_routes,
    as_list,
    flatten_join,
    get_att,
    ref,
)

EVENTS = "Cairn/EventStore/Events"
FAN_OUT = "Cairn/EventStore/FanOut"
IDEMPOTENCY = "Cairn/EventStore/Idempotency"
SNAPSHOTS = "Cairn/EventStore/Snapshots"
READ_MODELS = {
    "ORDER_VIEW_TABLE": "Cairn/OrderView/Table",
    "USER_ORDERS_TABLE": "Cairn/UserOrders/Table",
    "ANALYTICS_TABLE": "Cairn/Analytics/Table",
    "ACCOUNT_VIEW_TABLE": "Cairn/AccountView/Table",
    "INVENTORY_TABLE": "Cairn/InventoryTable/Table",
    "NOTIFICATIONS_TABLE": "Cairn/NotificationsTable/Table",
}
PUBLIC_ROUTES = {"GET /health", "GET /openapi.json"}
PUSHED_VIEWS = {"ORDER_VIEW_TABLE", "ACCOUNT_VIEW_TABLE"}


# -- event store -----------------------------------------------------------------------------------


def test_events_table_is_the_append_only_log(synth: Synth) -> None:
    table = synth.resources[synth.logical_id(EVENTS)]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "stream_id", "KeyType": "HASH"},
        {"AttributeName": "version", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "stream_id", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert {"AttributeName": "version", "AttributeType": "N"} in props["AttributeDefinitions"]
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert "TimeToLiveSpecification" not in props  # events never expire
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_idempotency_table_has_ttl_and_is_retained(synth: Synth) -> None:
    table = synth.resources[synth.logical_id(IDEMPOTENCY)]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "idempotency_key", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "idempotency_key", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("env", sorted(READ_MODELS))
def test_read_model_tables(synth: Synth, env: str) -> None:
    props = synth.resources[synth.logical_id(READ_MODELS[env])]["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    if env in PUSHED_VIEWS:  # the WebSocket pusher reads their checkpoint commits (docs/realtime.md)
        assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    else:
        assert "StreamSpecification" not in props


def test_snapshot_bucket(synth: Synth) -> None:
    bucket_id = synth.logical_id(SNAPSHOTS)
    bucket = synth.resources[bucket_id]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"
    ] in {"AES256", "aws:kms"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    logs_bucket = props["LoggingConfiguration"]["DestinationBucketName"]
    assert logs_bucket == ref(synth.logical_id("Cairn/EventStore/AccessLogs"))

    policies = [
        p for p in synth.of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == ref(bucket_id)
    ]
    (policy,) = policies
    ssl_only = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert ssl_only and ssl_only[0]["Action"] == "s3:*"


def test_access_log_bucket_accepts_only_s3_log_delivery(synth: Synth) -> None:
    bucket_id = synth.logical_id("Cairn/EventStore/AccessLogs")
    assert synth.resources[bucket_id]["DeletionPolicy"] == "Retain"
    (policy,) = [
        p for p in synth.of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == ref(bucket_id)
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert allow and all(s["Principal"] == {"Service": "logging.s3.amazonaws.com"} for s in allow)
    assert all(s["Action"] == "s3:PutObject" for s in allow)


# -- functions -------------------------------------------------------------------------------------


def test_every_function_of_the_architecture_exists_with_its_handler(synth: Synth) -> None:
    expected = architecture_functions()
    functions = synth.of_type("AWS::Lambda::Function")
    assert set(functions) == set(expected)  # logical ids are the architecture's function names
    for name, handler in expected.items():
        assert functions[name]["Properties"]["Handler"] == handler, name


def test_function_runtime_settings(synth: Synth) -> None:
    layer_id = next(iter(synth.of_type("AWS::Lambda::LayerVersion")))
    log_groups = synth.of_type("AWS::Logs::LogGroup")
    code_keys = set()
    for name, fn in synth.of_type("AWS::Lambda::Function").items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert 128 <= props["MemorySize"] <= 3008, name
        # the daily snapshot sweep scans the store: the one long-running function
        # the daily archiver too (a run that stops early is continued by the next one)
        assert 3 < props["Timeout"] <= (900 if name in ("ScheduledSnapshots", "Archiver") else 60), name
        assert props["Layers"] == [ref(layer_id)], name
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Cairn", name
        assert env["POWERTOOLS_SERVICE_NAME"], name
        assert env["LOG_LEVEL"] == "INFO", name
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[group]["Properties"]["RetentionInDays"] == 30, name
        assert fn["Metadata"]["aws:asset:property"] == "Code"
        code_keys.add(json.dumps(props["Code"], sort_keys=True))
    assert len(code_keys) == 1  # one code asset: the functions/ directory


def test_code_asset_is_the_functions_directory(synth: Synth) -> None:
    fn = synth.resources["OrdersCommands"]
    asset = synth.outdir / fn["Metadata"]["aws:asset:path"]
    assert (asset / "orders").is_dir()
    assert not list(asset.rglob("__pycache__")) and not list(asset.rglob("*.pyc"))
    assert not [p for p in asset.rglob("tests") if p.is_dir()]


def test_layer_is_for_python313_arm64(synth: Synth) -> None:
    (layer,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


ENV_BY_FUNCTION = {
    "OrdersCommands": {"EVENTS_TABLE", "IDEMPOTENCY_TABLE", "SNAPSHOT_BUCKET", "CATALOG_TABLE",
                       "PAYMENT_INTENTS_TABLE", "PAYMENT_INTENTS_KEY", "PERSONAL_DATA_KEYS_TABLE", "PERSONAL_DATA_KEY",
                       "PERSONAL_DATA_KEY_CACHE_SECONDS"},
    "AccountsCommands": {"EVENTS_TABLE", "IDEMPOTENCY_TABLE", "SNAPSHOT_BUCKET"},
    "Payments": {"EVENTS_TABLE", "IDEMPOTENCY_TABLE", "PAYMENT_INTENTS_TABLE"},
    "OrderPayments": {"EVENTS_TABLE", "IDEMPOTENCY_TABLE", "SNAPSHOT_BUCKET"},
    "PaymentTimeouts": {"EVENTS_TABLE", "IDEMPOTENCY_TABLE", "SNAPSHOT_BUCKET", "PAYMENT_TIMEOUTS_TABLE",
                        "PAYMENT_TIMEOUT_SECONDS"},
    "Catalog": {"EVENTS_TABLE", "IDEMPOTENCY_TABLE", "CATALOG_TABLE"},
    "CatalogProjections": {"EVENTS_TABLE", "CATALOG_TABLE", "PARKED_QUEUE_URL", "CAIRN_CONSUMER"},
    "OrdersQueries": {"EVENTS_TABLE", "SNAPSHOT_BUCKET", "ORDER_VIEW_TABLE", "USER_ORDERS_TABLE", "ANALYTICS_TABLE",
                      "PERSONAL_DATA_KEYS_TABLE", "PERSONAL_DATA_KEY", "PERSONAL_DATA_KEY_CACHE_SECONDS"},
    "AccountsQueries": {"EVENTS_TABLE", "SNAPSHOT_BUCKET", "ACCOUNT_VIEW_TABLE"},
    "OrdersProjections": {
        "EVENTS_TABLE", "ORDER_VIEW_TABLE", "USER_ORDERS_TABLE", "ANALYTICS_TABLE", "PARKED_QUEUE_URL",
        "CAIRN_CONSUMER",
    },
    "AccountsProjections": {"EVENTS_TABLE", "ACCOUNT_VIEW_TABLE", "PARKED_QUEUE_URL", "CAIRN_CONSUMER"},
    "Snapshotter": {"EVENTS_TABLE", "SNAPSHOT_BUCKET", "SNAPSHOT_EVERY", "PARKED_QUEUE_URL", "CAIRN_CONSUMER"},
    "Publisher": {"EVENTS_TABLE", "SNAPSHOT_BUCKET", "EVENT_BUS_NAME", "PARKED_QUEUE_URL", "CAIRN_CONSUMER"},
    "ScheduledSnapshots": {"EVENTS_TABLE", "SNAPSHOT_BUCKET", "SNAPSHOT_EVERY"},
    "InventoryQueries": {"INVENTORY_TABLE"},
    "Inventory": {"INVENTORY_TABLE"},
    "NotificationsQueries": {"NOTIFICATIONS_TABLE"},
    "Notifications": {"NOTIFICATIONS_TABLE"},
    "Ops": {
        "ORDER_VIEW_TABLE", "USER_ORDERS_TABLE", "ANALYTICS_TABLE", "ACCOUNT_VIEW_TABLE", "CATALOG_TABLE", "EVENTS_TABLE",
        "SNAPSHOT_BUCKET", "ORDERS_FAILED_QUEUE_URL", "ACCOUNTS_FAILED_QUEUE_URL",
    },
    "Public": set(),
    "Archiver": {"EVENTS_TABLE", "SNAPSHOT_BUCKET"},
}
# Every function that reads events reads archived ranges too (issue 13; docs/archive.md).
for _env in ENV_BY_FUNCTION.values():
    if "EVENTS_TABLE" in _env:
        _env.add("ARCHIVE_BUCKET")
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


@pytest.mark.parametrize("name", sorted(ENV_BY_FUNCTION))
def test_function_environment_names_resources(synth: Synth, name: str) -> None:
    env = synth.resources[name]["Properties"]["Environment"]["Variables"]
    assert set(env) - POWERTOOLS_ENV == ENV_BY_FUNCTION[name]
    expected = {
        "EVENTS_TABLE": ref(synth.logical_id(EVENTS)),
        "IDEMPOTENCY_TABLE": ref(synth.logical_id(IDEMPOTENCY)),
        "SNAPSHOT_BUCKET": ref(synth.logical_id(SNAPSHOTS)),
        "EVENT_BUS_NAME": ref(synth.logical_id("Cairn/IntegrationEvents/Bus")),
        "SNAPSHOT_EVERY": "order=50,account=100",
        "ARCHIVE_BUCKET": ref(synth.logical_id("Cairn/Archive/Bucket")),
        **{key: ref(synth.logical_id(path)) for key, path in READ_MODELS.items()},
    }
    for key, value in env.items():
        if key in expected:
            assert value == expected[key], (name, key)


def test_service_names_give_each_projection_its_own_metric_dimension(synth: Synth) -> None:
    def service(fn: str) -> str:
        return synth.resources[fn]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]

    assert service("OrdersProjections") != service("AccountsProjections")
    assert service("OrdersCommands") == service("OrdersProjections") == "orders"
    assert service("AccountsCommands") == "accounts" and service("Payments") == "payments"


# -- stream consumers ------------------------------------------------------------------------------


def _mappings(synth: Synth) -> dict[str, dict]:
    """Function name -> its event source mapping properties."""
    return {m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
            for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()}


STREAM_CONSUMERS = {
    "OrdersProjections": ["order-"],
    "AccountsProjections": ["account-"],
    "Snapshotter": ["order-", "account-"],
    "Publisher": ["order-", "payment-"],
    "CatalogProjections": ["product-"],
}
# Readers kept on the table's own DynamoDB stream (at most two, issue 18)
DDB_STREAM_CONSUMERS = {
    "TamperDetector": [],  # MODIFY / REMOVE of any stream (tests/infrastructure/test_cdk_integrity.py)
}


def test_the_tamper_detector_reads_the_tables_own_stream(synth: Synth) -> None:
    props = _mappings(synth)["TamperDetector"]
    assert props["EventSourceArn"] == get_att(synth.logical_id(EVENTS), "StreamArn")
    assert [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]] == [
        {"eventName": ["MODIFY", "REMOVE"]}
    ]


@pytest.mark.parametrize("name", sorted(STREAM_CONSUMERS))
def test_stream_event_source_mappings(synth: Synth, name: str) -> None:
    props = _mappings(synth)[name]
    # Kinesis Data Streams for DynamoDB through the consumer's own enhanced fan-out consumer
    consumer_id = props["EventSourceArn"]["Fn::GetAtt"][0]
    assert props["EventSourceArn"] == get_att(consumer_id, "ConsumerARN")
    consumer = synth.resources[consumer_id]
    assert consumer["Type"] == "AWS::Kinesis::StreamConsumer"
    assert consumer["Properties"]["StreamARN"] == get_att(synth.logical_id(FAN_OUT))
    assert consumer["Properties"]["ConsumerName"] == name
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= props["BatchSize"] <= 1000
    assert 0 <= props["MaximumBatchingWindowInSeconds"] <= 5
    assert 0 <= props["MaximumRetryAttempts"] <= 100  # bounded (-1 would retry until expiry)
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 86400
    # on failure: the consumer's own failed-batches queue (make redrive finds it in the outputs);
    # parking notices go to another queue, whose URL the function gets
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    queue_id = destination["Fn::GetAtt"][0]
    assert synth.resources[queue_id]["Type"] == "AWS::SQS::Queue"
    env = synth.resources[name]["Properties"]["Environment"]["Variables"]
    assert env["PARKED_QUEUE_URL"] != ref(queue_id)
    assert synth.template["Outputs"][f"{name}FailedQueueUrl"]["Value"] == ref(queue_id)
    assert env["CAIRN_CONSUMER"] == name
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert patterns == [  # Lambda filters a Kinesis record on its decoded data
        {"data": {"eventName": ["INSERT"], "dynamodb": {"Keys": {"stream_id": {"S": [{"prefix": prefix}]}}}}}
        for prefix in STREAM_CONSUMERS[name]
    ]


def test_fan_out_past_two_readers(synth: Synth) -> None:
    """AWS advises at most two readers per DynamoDB stream shard: the events table's stream keeps
    at most two mappings, and every stream consumer reads the table's Kinesis data stream through
    an enhanced fan-out consumer of its own (issue 18)."""
    events = synth.resources[synth.logical_id(EVENTS)]["Properties"]
    stream_id = synth.logical_id(FAN_OUT)
    assert events["KinesisStreamSpecification"]["StreamArn"] == get_att(stream_id)
    mappings = list(synth.of_type("AWS::Lambda::EventSourceMapping").values())
    on_ddb_stream = [m for m in mappings if m["Properties"]["EventSourceArn"] == get_att(synth.logical_id(EVENTS), "StreamArn")]
    assert len(on_ddb_stream) <= 2
    consumers = [m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings
                 if m["Properties"]["FunctionName"]["Ref"] in STREAM_CONSUMERS]
    assert len(consumers) == len(STREAM_CONSUMERS) == len(set(consumers))  # one EFO consumer each
    assert set(synth.of_type("AWS::Kinesis::StreamConsumer")) == set(consumers)
    stream = synth.resources[stream_id]["Properties"]
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"


def test_parked_queues_are_encrypted_and_ssl_only(synth: Synth) -> None:
    parked = {
        m["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        for m in _mappings(synth).values()
        if "DestinationConfig" in m
    }
    assert len(parked) == len(STREAM_CONSUMERS) + len(DDB_STREAM_CONSUMERS)
    _assert_queues_encrypted_and_ssl_only(synth, parked)


def _assert_queues_encrypted_and_ssl_only(synth: Synth, queue_ids: set[str]) -> None:
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    for queue_id in queue_ids:
        assert synth.resources[queue_id]["Properties"].get("SqsManagedSseEnabled") is True, queue_id
        denies = [
            s
            for p in policies
            if ref(queue_id) in p["Properties"]["Queues"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies, f"{queue_id} accepts plain HTTP"


# -- event-driven consumers ------------------------------------------------------------------------

SUBSCRIPTIONS = {
    "Payments": ("PaymentsSubscription", ["OrderCreated", "OrderCancelled", "PaymentFailed", "PaymentProcessed"]),
    "OrderPayments": ("OrderPaymentsSubscription", ["PaymentCaptured", "PaymentDeclined", "PaymentRefunded"]),
    "PaymentTimeouts": (
        "PaymentTimeoutsSubscription", ["OrderCreated", "PaymentProcessed", "PaymentFailed", "OrderCancelled"]
    ),
    "Inventory": ("InventorySubscription", ["OrderCreated", "OrderCancelled", "PaymentFailed"]),
    "Notifications": (
        "NotificationsSubscription",
        ["OrderCreated", "PaymentProcessed", "OrderShipped", "OrderDelivered"],
    ),
}


@pytest.mark.parametrize("name", sorted(SUBSCRIPTIONS))
def test_eda_consumers_read_their_queue_with_a_dlq(synth: Synth, name: str) -> None:
    subscription, detail_types = SUBSCRIPTIONS[name]
    base = f"Cairn/IntegrationEvents/{subscription}"
    queue_id = synth.logical_id(f"{base}/Queue")
    dlq_id = synth.logical_id(f"{base}/DeadLetters")
    props = _mappings(synth)[name]
    assert props["EventSourceArn"] == get_att(queue_id)
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = synth.resources[queue_id]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == get_att(dlq_id)
    assert 1 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    timeout = synth.resources[name]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    _assert_queues_encrypted_and_ssl_only(synth, {queue_id, dlq_id})

    rule = synth.resources[synth.logical_id(f"{base}/Rule")]["Properties"]
    assert rule["EventBusName"] == ref(synth.logical_id("Cairn/IntegrationEvents/Bus"))
    assert rule["EventPattern"]["source"] == ["cairn.payments" if name == "OrderPayments" else "cairn.orders"]
    assert rule["EventPattern"]["detail-type"] == detail_types
    (target,) = rule["Targets"]
    assert target["Arn"] == get_att(queue_id)
    assert target["DeadLetterConfig"]["Arn"] == get_att(dlq_id)


def test_no_rule_routes_on_a_payment_token(synth: Synth) -> None:
    """The bus never carries a token (only a payment intent id), so nothing may filter on one."""
    for rule in synth.of_type("AWS::Events::Rule").values():
        assert "payment_token" not in json.dumps(rule["Properties"].get("EventPattern", {}))


def test_payment_timeouts_are_swept_on_a_schedule(synth: Synth) -> None:
    (rule,) = [
        r for r in synth.of_type("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and any(t["Arn"] == get_att("PaymentTimeouts") for t in r["Properties"].get("Targets", []))
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == get_att("PaymentTimeouts")
    assert "DeadLetterConfig" in target
    env = synth.resources["PaymentTimeouts"]["Properties"]["Environment"]["Variables"]
    assert env["PAYMENT_TIMEOUT_SECONDS"] == "900"


def test_payment_intents_key_rotates_and_orders_may_only_encrypt(synth: Synth) -> None:
    key = synth.resources[synth.logical_id("Cairn/PaymentIntentsKey")]
    assert key["Properties"]["EnableKeyRotation"] is True
    table = synth.resources[synth.logical_id("Cairn/PaymentIntents/Table")]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_event_bus_is_archived(synth: Synth) -> None:
    (archive,) = synth.of_type("AWS::Events::Archive").values()
    assert archive["Properties"]["SourceArn"] == get_att(synth.logical_id("Cairn/IntegrationEvents/Bus"))
    assert archive["Properties"]["RetentionDays"] >= 30


# -- HTTP API --------------------------------------------------------------------------------------


def _http_api_id(synth: Synth) -> str:
    (api_id,) = [k for k, v in synth.of_type("AWS::ApiGatewayV2::Api").items()
                 if v["Properties"].get("ProtocolType") == "HTTP"]
    return api_id


def _routes(synth: Synth) -> dict[str, dict]:
    """The HTTP API's routes (the WebSocket API's are tested in test_cdk_realtime.py)."""
    api = ref(_http_api_id(synth))
    return {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()
            if r["Properties"]["ApiId"] == api}


def _integration_function(synth: Synth, route: dict) -> str:
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    uri = synth.resources[integration_id]["Properties"]["IntegrationUri"]
    return uri["Fn::GetAtt"][0]


def test_routes_are_exactly_the_contract(synth: Synth) -> None:
    routes = _routes(synth)
    expected = architecture_routes()
    assert set(routes) - {"$default"} == {f"{method} {path}" for method, path in expected}
    # unknown routes reach Public (no data permission), which answers 404/405 problem+json
    assert _integration_function(synth, routes["$default"]) == "Public"
    assert routes["$default"].get("AuthorizationType", "NONE") == "NONE"
    for (method, path), (function, _handler) in expected.items():
        assert _integration_function(synth, routes[f"{method} {path}"]) == function, (method, path)


def test_jwt_authorizer_on_every_route_but_the_public_ones(synth: Synth, template) -> None:
    (authorizer_id, authorizer), = [(k, v) for k, v in synth.of_type("AWS::ApiGatewayV2::Authorizer").items()
                                    if v["Properties"]["ApiId"] == ref(_http_api_id(synth))]
    pool_id = synth.logical_id("Cairn/Http/Users")
    client_id = synth.logical_id("Cairn/Http/Users/ApiClient")
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert props["JwtConfiguration"]["Audience"] == [ref(client_id)]
    assert flatten_join(props["JwtConfiguration"]["Issuer"]) == "https://cognito-idp.TOKEN.amazonaws.com/TOKEN"
    assert props["JwtConfiguration"]["Issuer"]["Fn::Join"][1][-1] == ref(pool_id)

    for key, route in _routes(synth).items():
        if key in PUBLIC_ROUTES or key == "$default":
            assert route.get("AuthorizationType", "NONE") == "NONE", key
            assert "AuthorizerId" not in route, key
        else:
            assert route["AuthorizationType"] == "JWT", key
            assert route["AuthorizerId"] == ref(authorizer_id), key
    assert len(_routes(synth)) == len(architecture_routes()) + 1  # + $default


def test_stage_throttles_and_logs_json(synth: Synth) -> None:
    (stage,) = [v for v in synth.of_type("AWS::ApiGatewayV2::Stage").values()
                if v["Properties"]["ApiId"] == ref(_http_api_id(synth))]
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] >= props["DefaultRouteSettings"]["ThrottlingRateLimit"]
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "status", "routeKey", "ip", "responseLatency"} <= set(log_format)
    group_id = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.resources[group_id]["Properties"]["RetentionInDays"] > 0


def test_lambda_permissions_are_scoped_to_the_api(synth: Synth) -> None:
    apis = [ref(api_id) for api_id in synth.of_type("AWS::ApiGatewayV2::Api")]
    permissions = synth.of_type("AWS::Lambda::Permission").values()
    assert permissions
    for permission in permissions:
        props = permission["Properties"]
        if props["Principal"] == "events.amazonaws.com":  # the snapshot, digest, payment-timeout, archive schedules
            assert props["FunctionName"] in (
                get_att("ScheduledSnapshots", "Arn"), get_att("DigestJob"), get_att("PaymentTimeouts"), get_att("Archiver"))
            assert synth.resources[props["SourceArn"]["Fn::GetAtt"][0]]["Type"] == "AWS::Events::Rule"
            continue
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert sum(api in props["SourceArn"]["Fn::Join"][1] for api in apis) == 1


def test_user_pool_and_client(synth: Synth, template) -> None:
    pool = synth.resources[synth.logical_id("Cairn/Http/Users")]
    assert pool["DeletionPolicy"] == "Retain"  # users' `sub`s are in the events
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12 and policy["RequireSymbols"] and policy["RequireNumbers"]
    template.has_resource_properties("AWS::Cognito::UserPoolGroup", {"GroupName": "staff"})
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": False,
            "ExplicitAuthFlows": Match.array_with(["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]),
            "AllowedOAuthFlowsUserPoolClient": False,
        },
    )


# -- outputs ---------------------------------------------------------------------------------------


def test_outputs(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    expected = {
        "UserPoolId": ref(synth.logical_id("Cairn/Http/Users")),
        "UserPoolClientId": ref(synth.logical_id("Cairn/Http/Users/ApiClient")),
        "EventsTableName": ref(synth.logical_id(EVENTS)),
        "IdempotencyTableName": ref(synth.logical_id(IDEMPOTENCY)),
        "SnapshotBucketName": ref(synth.logical_id(SNAPSHOTS)),
        "EventBusName": ref(synth.logical_id("Cairn/IntegrationEvents/Bus")),
        "OrderViewTableName": ref(synth.logical_id(READ_MODELS["ORDER_VIEW_TABLE"])),
        "UserOrdersTableName": ref(synth.logical_id(READ_MODELS["USER_ORDERS_TABLE"])),
        "AnalyticsTableName": ref(synth.logical_id(READ_MODELS["ANALYTICS_TABLE"])),
        "AccountViewTableName": ref(synth.logical_id(READ_MODELS["ACCOUNT_VIEW_TABLE"])),
        "InventoryTableName": ref(synth.logical_id(READ_MODELS["INVENTORY_TABLE"])),
        "NotificationsTableName": ref(synth.logical_id(READ_MODELS["NOTIFICATIONS_TABLE"])),
    }
    for key, value in expected.items():
        assert outputs[key]["Value"] == value, key
    api_id = _http_api_id(synth)
    assert flatten_join(outputs["ApiUrl"]["Value"]) == "https://TOKEN.execute-api.TOKEN.TOKEN/"
    assert ref(api_id) in outputs["ApiUrl"]["Value"]["Fn::Join"][1]


# -- alarms ----------------------------------------------------------------------------------------


def test_alarms_notify_an_encrypted_topic(synth: Synth) -> None:
    (topic_id, topic), = synth.of_type("AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [ref(topic_id)], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


def test_alarms_cover_what_needs_a_human(synth: Synth) -> None:
    metrics = {
        (a["Properties"].get("Namespace"), a["Properties"].get("MetricName"))
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert ("AWS/Lambda", "IteratorAge") in metrics
    assert ("AWS/Lambda", "Errors") in metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics  # parked + EDA dead letters
    assert ("Cairn", "StreamsParked") in metrics
    assert ("AWS/ApiGateway", "5xx") in metrics
    by_path = [path for path, entries in synth.metadata.items()
               for e in entries if e["type"] == "aws:cdk:logicalId" and path.endswith("Alarm/Resource")]
    for consumer in ("OrdersProjection", "AccountsProjection", "SnapshotterConsumer", "PublisherConsumer"):
        for alarm in ("IteratorAgeAlarm", "ErrorsAlarm", "FailedBatchesAlarm"):
            assert f"/Cairn/{consumer}/{alarm}/Resource" in by_path
    for projection in ("OrdersProjection", "AccountsProjection"):
        assert f"/Cairn/{projection}/StreamsParkedAlarm/Resource" in by_path
    for subscription in ("PaymentsSubscription", "InventorySubscription", "NotificationsSubscription"):
        assert f"/Cairn/IntegrationEvents/{subscription}/DeadLettersAlarm/Resource" in by_path


def test_resources_are_tagged(synth: Synth) -> None:
    for name, fn in synth.of_type("AWS::Lambda::Function").items():
        assert {"Key": "project", "Value": "cairn"} in as_list(fn["Properties"]["Tags"]), name


def test_a_synth_without_the_layer_build_says_not_to_deploy_it(synth: Synth) -> None:
    warnings = [
        entry["data"]
        for entries in synth.metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:warning"
    ]
    assert any("do not deploy" in str(w) for w in warnings)
