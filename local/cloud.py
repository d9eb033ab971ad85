"""The local cloud: a moto server in this process, and the template's resources created on it.

Why a middleware around moto: DynamoDB guarantees per-item atomicity of conditional writes;
moto checks a condition and then stores the item without a lock, so two concurrent requests can
both pass ``attribute_not_exists`` and one event silently overwrites the other. The local runtime
serializes every DynamoDB and DynamoDB Streams request (they are in-memory operations of a
millisecond), which gives DynamoDB's guarantee; ``tests/local/test_cloud.py`` shows the race
without the lock and its absence with it. The same middleware injects throttling for chaos tests.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local.template import REGION, Resource, Template

__all__ = [
    "LocalCloud",
    "MotoServer",
    "RUNTIME_USER_AGENT",
    "aws_client",
]

log = logging.getLogger("cairn.local")

RUNTIME_USER_AGENT = "cairn-local-runtime"  # marks the runtime's own calls (exempt from chaos)

_DYNAMO_PREFIXES = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")
_THROTTLE_BODY = {
    "DynamoDB_20120810": (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded (local chaos)",
    ),
}


def aws_client(service: str, endpoint_url: str, **config: Any) -> Any:
    """A boto3 client for the local cloud, tagged as the runtime's own (never throttled by chaos)."""
    cfg = Config(
        user_agent_extra=RUNTIME_USER_AGENT,
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=32,
        **config,
    )
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=cfg,
    )


@dataclass
class MotoChaos:
    """Fault injection at the AWS API: ``throttle`` is the probability a DynamoDB call is refused."""

    throttle: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    throttled: int = 0


class _SerializingMiddleware:
    """WSGI middleware: one lock around DynamoDB (+ Streams); optional throttling chaos."""

    def __init__(self, app: Callable[..., Any], chaos: MotoChaos, serialize: bool = True):
        self.app = app
        self.chaos = chaos
        self.serialize = serialize
        self.lock = threading.RLock()
        self.put_events_observers: list[Callable[[dict[str, Any]], None]] = []

    def _put_events(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Let moto deliver (it knows SQS targets) and tell observers (Lambda targets) afterwards."""
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        status: list[str] = []

        def capture(s: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(s)
            return start_response(s, headers, exc_info) if exc_info else start_response(s, headers)

        body = list(self.app(environ, capture))
        if status and status[0].startswith("200"):
            try:
                request = json.loads(raw or b"{}")
            except ValueError:
                request = {}
            for observer in self.put_events_observers:
                try:
                    observer(request)
                except Exception:
                    log.exception("EventBridge observer failed")
        return body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == "AWSEvents.PutEvents" and self.put_events_observers:
            return self._put_events(environ, start_response)
        if not target.startswith(_DYNAMO_PREFIXES):
            return self.app(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT", "")
        if (
            self.chaos.throttle > 0
            and RUNTIME_USER_AGENT not in agent
            and target.startswith("DynamoDB_20120810.")
            and self.chaos.rng.random() < self.chaos.throttle
        ):
            self.chaos.throttled += 1
            kind, message = _THROTTLE_BODY["DynamoDB_20120810"]
            body = json.dumps({"__type": kind, "message": message}).encode()
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if not self.serialize:
            return self.app(environ, start_response)
        with self.lock:
            # The whole response is produced under the lock (moto builds it eagerly).
            return list(self.app(environ, start_response))


_PATCHED = False
_PATCHED_TX = False


def _keep_tables_in_place_on_cancelled_transactions() -> None:
    """moto rolls a cancelled TransactWriteItems back by swapping each table for a deep copy
    taken before it. The stream shard goes with the copy, so every open shard iterator keeps
    reading the discarded object: it sees the cancelled write as a phantom record and never
    sees a later one. Here the rollback is redone in place: the table object (and its shard)
    stays, its items come back from the copy and the shard loses the cancelled records."""
    global _PATCHED_TX
    if _PATCHED_TX:
        return
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        tables = dict(self.tables)
        shard_lengths = {
            name: len(t.stream_shard.items) for name, t in tables.items() if t.stream_shard is not None
        }
        try:
            original(self, transact_items)
        finally:
            for name, table in tables.items():
                restored = self.tables.get(name)
                if restored is None or restored is table:
                    continue
                shard = table.stream_shard
                table.__dict__.update({k: v for k, v in restored.__dict__.items() if k != "stream_shard"})
                table.stream_shard = shard
                if shard is not None and name in shard_lengths:
                    del shard.items[shard_lengths[name]:]
                self.tables[name] = table

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _PATCHED_TX = True


def _let_moto_skip_lambda_targets() -> None:
    """moto raises NotImplementedError for a rule's Lambda target, failing the whole PutEvents.
    The runtime delivers those (``local.bus``), so moto is told to skip them; the targets stay
    registered and visible through ListTargetsByRule."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        targets = self.targets
        self.targets = [t for t in targets if ":lambda:" not in str(t.get("Arn", ""))]
        try:
            original(self, original_event, transform_input)
        finally:
            self.targets = targets

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    _PATCHED = True


class MotoServer:
    """moto's server app on 127.0.0.1:<port> in a daemon thread, behind the middleware."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, serialize: bool = True,
                 chaos: MotoChaos | None = None):
        self.host = host
        self.port = port
        self.chaos = chaos or MotoChaos()
        self.serialize = serialize
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.middleware: _SerializingMiddleware | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class _QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # moto access log is noise
                pass

        _let_moto_skip_lambda_targets()
        _keep_tables_in_place_on_cancelled_transactions()
        self.middleware = _SerializingMiddleware(
            DomainDispatcherApplication(create_backend_app), self.chaos, self.serialize
        )
        self._server = make_server(
            self.host, self.port, self.middleware, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def prune_stream_iterators(keep: int = 5000) -> None:
    """Forget old shard iterators: AWS expires them after 15 minutes, moto keeps every one."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for _account, regions in dynamodbstreams_backends.items():
        for _region, backend in regions.items():
            its = backend.shard_iterators
            excess = len(its) - keep
            if excess > 0:
                for key in list(its)[:excess]:
                    its.pop(key, None)


def _str_attrs(attrs: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (dict, list)):
            out[k] = json.dumps(v)
        else:
            out[k] = str(v)
    return out


class LocalCloud:
    """Creates the template's tables, buckets, queues, topics, buses and rules on the moto server."""

    TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")

    def __init__(self, template: Template, endpoint: str):
        self.template = template
        self.endpoint = endpoint
        self.created: list[tuple[str, str, str]] = []  # (type, logical id, physical name)
        self.skipped: dict[str, int] = {}

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint)

    def provision(self) -> None:
        t = self.template
        for res in t.of_type(*self.TABLE_TYPES):
            self._table(res)
        for res in t.of_type("AWS::KMS::Key"):
            self._kms_key(res)
        for res in t.of_type("AWS::S3::Bucket"):
            self._bucket(res)
        for res in t.dependency_order(t.of_type("AWS::SQS::Queue")):
            self._queue(res)
        for res in t.of_type("AWS::SNS::Topic"):
            self._topic(res)
        for res in t.of_type("AWS::SQS::QueuePolicy"):
            self._queue_policy(res)
        for res in t.of_type("AWS::SNS::Subscription"):
            self._subscription(res)
        for res in t.of_type("AWS::Events::EventBus"):
            self._bus(res)
        for res in t.of_type("AWS::Events::Rule"):
            self._rule(res)
        handled = set(self.HANDLED_TYPES)
        for res in t.resources.values():
            if res.type not in handled:
                self.skipped[res.type] = self.skipped.get(res.type, 0) + 1

    HANDLED_TYPES: tuple[str, ...] = (
        *TABLE_TYPES,
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        # Served by the runtime itself rather than created on moto:
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::EventSourceMapping",
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Route",
        "AWS::ApiGatewayV2::Integration",
        "AWS::ApiGatewayV2::Authorizer",
        "AWS::ApiGatewayV2::Stage",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
    )

    # -- DynamoDB --------------------------------------------------------------------------

    def _table(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.ref
        assert name
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
        }
        provisioned = p.get("BillingMode") == "PROVISIONED" and "ProvisionedThroughput" in p
        if provisioned:
            kwargs["BillingMode"] = "PROVISIONED"
            kwargs["ProvisionedThroughput"] = {
                k: int(v) for k, v in p["ProvisionedThroughput"].items()
            }
        else:
            kwargs["BillingMode"] = "PAY_PER_REQUEST"

        def index(spec: dict[str, Any]) -> dict[str, Any]:
            out = {k: spec[k] for k in ("IndexName", "KeySchema", "Projection") if k in spec}
            if provisioned:
                out["ProvisionedThroughput"] = spec.get(
                    "ProvisionedThroughput", kwargs["ProvisionedThroughput"]
                )
            return out

        if p.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [index(i) for i in p["GlobalSecondaryIndexes"]]
        if p.get("LocalSecondaryIndexes"):
            kwargs["LocalSecondaryIndexes"] = [
                {k: i[k] for k in ("IndexName", "KeySchema", "Projection")}
                for i in p["LocalSecondaryIndexes"]
            ]
        stream = p.get("StreamSpecification")
        if stream and stream.get("StreamViewType"):
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        tags = p.get("Tags") or []
        if tags:
            kwargs["Tags"] = [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]
        ddb = self.client("dynamodb")
        desc = ddb.create_table(**kwargs)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and str(ttl.get("Enabled", False)).lower() == "true":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = p.get("PointInTimeRecoverySpecification") or next(
            (r.get("PointInTimeRecoverySpecification") for r in p.get("Replicas") or []
             if r.get("PointInTimeRecoverySpecification")),
            None,
        )
        if pitr and str(pitr.get("PointInTimeRecoveryEnabled", False)).lower() == "true":
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        res.attributes["Arn"] = desc["TableArn"]
        if desc.get("LatestStreamArn"):
            res.attributes["StreamArn"] = desc["LatestStreamArn"]
        self.created.append((res.type, res.logical_id, name))

    # -- KMS -------------------------------------------------------------------------------

    def _kms_key(self, res: Resource) -> None:
        """A symmetric key on moto; Ref is its key id, GetAtt Arn its ARN (as CloudFormation)."""
        p = self.template.resolve(res.properties)
        meta = self.client("kms").create_key(
            Description=str(p.get("Description") or res.logical_id), KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]
        res.ref = meta["KeyId"]
        res.attributes["Arn"] = meta["Arn"]
        res.attributes["KeyId"] = meta["KeyId"]
        self.created.append((res.type, res.logical_id, meta["KeyId"]))

    # -- S3 --------------------------------------------------------------------------------

    def _bucket(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.ref
        assert name
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        extras: list[tuple[str, Callable[[], Any]]] = []
        enc = (p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
        if enc:
            rules = []
            for r in enc:
                rule: dict[str, Any] = {}
                if r.get("ServerSideEncryptionByDefault"):
                    rule["ApplyServerSideEncryptionByDefault"] = r["ServerSideEncryptionByDefault"]
                if "BucketKeyEnabled" in r:
                    rule["BucketKeyEnabled"] = str(r["BucketKeyEnabled"]).lower() == "true"
                rules.append(rule)
            extras.append(("encryption", lambda: s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})))
        block = p.get("PublicAccessBlockConfiguration")
        if block:
            extras.append(("public access block", lambda: s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={k: str(v).lower() == "true" for k, v in block.items()})))
        lifecycle = (p.get("LifecycleConfiguration") or {}).get("Rules")
        if lifecycle:
            extras.append(("lifecycle", lambda: s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle]})))
        tags = p.get("Tags") or []
        if tags:
            extras.append(("tags", lambda: s3.put_bucket_tagging(
                Bucket=name,
                Tagging={"TagSet": [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]})))
        for what, apply in extras:
            try:
                apply()
            except Exception as exc:  # settings that only matter deployed never block start-up
                log.warning("bucket %s: %s not applied locally (%s)", name, what, exc)
        self.created.append((res.type, res.logical_id, name))

    # -- SQS / SNS -------------------------------------------------------------------------

    _QUEUE_ATTRS = (
        "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "FifoQueue",
        "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
        "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
    )

    def _queue(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.attributes["QueueName"]
        attrs = _str_attrs({k: p[k] for k in self._QUEUE_ATTRS if k in p})
        if "RedrivePolicy" in p:
            rp = dict(p["RedrivePolicy"])
            rp["maxReceiveCount"] = int(rp["maxReceiveCount"])
            attrs["RedrivePolicy"] = json.dumps(rp)
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        res.ref = url
        res.attributes.update(QueueUrl=url, Arn=arn)
        self.created.append((res.type, res.logical_id, url))

    def _queue_policy(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        for url in p.get("Queues") or []:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
            )

    def _topic(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = res.attributes["TopicName"]
        attrs = {}
        if p.get("FifoTopic"):
            attrs["FifoTopic"] = "true"
        arn = self.client("sns").create_topic(Name=name, Attributes=attrs)["TopicArn"]
        res.ref = arn
        res.attributes["TopicArn"] = arn
        self.created.append((res.type, res.logical_id, arn))

    def _subscription(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        if p.get("Protocol") not in ("sqs",):
            log.warning("SNS subscription %s (%s) is not delivered locally", res.logical_id, p.get("Protocol"))
            return
        attrs = {}
        if p.get("RawMessageDelivery") is not None:
            attrs["RawMessageDelivery"] = str(p["RawMessageDelivery"]).lower()
        if p.get("FilterPolicy"):
            attrs["FilterPolicy"] = json.dumps(p["FilterPolicy"])
        self.client("sns").subscribe(
            TopicArn=p["TopicArn"], Protocol="sqs", Endpoint=p["Endpoint"], Attributes=attrs
        )

    # -- EventBridge -----------------------------------------------------------------------

    def _bus(self, res: Resource) -> None:
        name = res.ref
        assert name
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        res.attributes.update(Arn=arn, Name=name)
        self.created.append((res.type, res.logical_id, name))

    def _rule(self, res: Resource) -> None:
        p = self.template.resolve(res.properties)
        name = self.template.physical_name(res)
        bus = str(p.get("EventBusName") or "default").rsplit("/", 1)[-1]
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": p.get("State", "ENABLED")}
        if p.get("EventPattern") is not None:
            kwargs["EventPattern"] = json.dumps(p["EventPattern"])
        if p.get("ScheduleExpression"):
            kwargs["ScheduleExpression"] = p["ScheduleExpression"]
        if p.get("Description"):
            kwargs["Description"] = p["Description"]
        events = self.client("events")
        arn = events.put_rule(**kwargs)["RuleArn"]
        res.attributes["Arn"] = arn
        targets = []
        for target in p.get("Targets") or []:
            spec = {k: v for k, v in target.items() if k in (
                "Id", "Arn", "Input", "InputPath", "InputTransformer", "SqsParameters",
                "DeadLetterConfig", "RetryPolicy", "RoleArn")}
            if "InputTransformer" in spec:
                it = dict(spec["InputTransformer"])
                if isinstance(it.get("InputTemplate"), dict):
                    it["InputTemplate"] = json.dumps(it["InputTemplate"])
                spec["InputTransformer"] = it
            targets.append(spec)
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.created.append((res.type, res.logical_id, name))


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if rule.get("Id"):
        out["ID"] = rule["Id"]
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        n = rule["NoncurrentVersionExpiration"]
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(n["NoncurrentDays"])}
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    transitions: Iterable[dict[str, Any]] = rule.get("Transitions") or []
    if transitions:
        out["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in transitions
        ]
    return out
