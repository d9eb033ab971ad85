"""Real-time updates: WebSocket API + Lambda authorizer + connections table + pusher.

``$connect`` runs a REQUEST authorizer on ``?token=`` (browsers cannot set headers on a
WebSocket) that verifies the Cognito JWT against the pool's JWKS; ``$default`` is two-way (its
function's answer goes back on the socket). The pusher reads the view tables' streams (the
checkpoint items: a record exists only once the projection's transaction committed) and posts
to connections through the stage's management API. docs/realtime.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.function import METRICS_NAMESPACE, CairnFunction
from cdk_app.constructs.http_service import _AccessLogSettings
from cdk_app.constructs.nag import acknowledge

__all__ = ["PUSH_METRICS", "Realtime", "WS_ACCESS_LOG_FIELDS"]

SERVICE = "realtime"
PUSH_METRICS = ("PushesSent", "PushesFailed", "ConnectionsGone", "PushDelay")
WS_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "connectionId": "$context.connectionId",
    "status": "$context.status",
    "integrationLatency": "$context.integrationLatency",
    "authorizerError": "$context.authorizer.error",
    "error": "$context.error.message",
    "sub": "$context.authorizer.principalId",
}
_MINUTE = Duration.minutes(1)


def _push_metric(name: str, statistic: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE},
        statistic=statistic,
        period=_MINUTE,
        label=label,
    )


class Realtime(Construct):
    """The WebSocket API of API.md "Real-time updates" and everything behind it.

    ``view_tables``: stream prefix (``order-``) -> the read-model table (with a NEW_IMAGE stream)
    whose checkpoint items hold that stream's view.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code: lambda_.Code,
        layers: list[lambda_.ILayerVersion],
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        view_tables: Mapping[str, dynamodb.ITable],
        alerts: Alerts,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        stage_name: str = "live",
        rate_limit: int = 100,
        burst_limit: int = 200,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)

        self.connections = dynamodb.Table(
            self,
            "Connections",
            partition_key=dynamodb.Attribute(name="connection_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,  # connections die with the API anyway
        )
        for index, attribute in (("by_user", "user"), ("by_stream", "stream")):
            self.connections.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=attribute, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="connection_id", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.KEYS_ONLY,
            )

        def function(name: str, handler: str, memory: int, timeout: int, env: Mapping[str, str]) -> CairnFunction:
            fn = CairnFunction(
                self,
                name,
                code=code,
                handler=handler,
                service=SERVICE,
                memory_size=memory,
                timeout=Duration.seconds(timeout),
                layers=layers,
                environment=dict(env),
                log_retention=log_retention,
                description=f"Cairn {name} ({handler})",
            )
            fn.function.node.default_child.override_logical_id(name)  # type: ignore[union-attr]
            return fn

        table_env = {"CONNECTIONS_TABLE": self.connections.table_name}
        view_env = {
            {"order-": "ORDER_VIEW_TABLE", "account-": "ACCOUNT_VIEW_TABLE"}[prefix]: table.table_name
            for prefix, table in view_tables.items()
        }
        issuer = user_pool.user_pool_provider_url
        self.functions: dict[str, CairnFunction] = {
            "WsAuthorizer": function(
                "WsAuthorizer", "realtime.authorizer.handler", 512, 10,
                {
                    "USER_POOL_ISSUER": issuer,
                    "USER_POOL_CLIENT_IDS": user_pool_client.user_pool_client_id,
                    "JWKS_URL": f"{issuer}/.well-known/jwks.json",
                },
            ),
            "WsConnect": function("WsConnect", "realtime.handlers.connect", 512, 10, table_env),
            "WsDisconnect": function("WsDisconnect", "realtime.handlers.disconnect", 512, 10, table_env),
            "WsDefault": function("WsDefault", "realtime.handlers.default", 512, 10, {**table_env, **view_env}),
            "WsPusher": function("WsPusher", "realtime.pusher.handler", 512, 30, table_env),
        }
        fns = self.functions

        # -- the API -----------------------------------------------------------------------------
        authorizer = authorizers.WebSocketLambdaAuthorizer(
            "TokenAuthorizer",
            fns["WsAuthorizer"].function,
            identity_source=["route.request.querystring.token"],
        )
        self.api = apigw.WebSocketApi(
            self,
            "Api",
            api_name=f"{stack.stack_name}-{id}",
            description="Cairn real-time updates (WebSocket)",
            connect_route_options=apigw.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("ConnectIntegration", fns["WsConnect"].function),
                authorizer=authorizer,
            ),
            disconnect_route_options=apigw.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("DisconnectIntegration", fns["WsDisconnect"].function),
            ),
            default_route_options=apigw.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("DefaultIntegration", fns["WsDefault"].function),
                return_response=True,
            ),
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigw.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=stage_name,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            access_log_settings=_AccessLogSettings(
                apigw.LogGroupLogDestination(self.access_logs),
                apigw_v1.AccessLogFormat.custom(json.dumps(WS_ACCESS_LOG_FIELDS, separators=(",", ":"))),
            ),
        )
        for route_id in ("$disconnect-Route", "$default-Route"):
            route = self.api.node.try_find_child(route_id)
            if route is not None:
                acknowledge(
                    route,
                    {
                        "AwsSolutions-APIG4": (
                            "WebSocket APIs authorize once, on $connect (Lambda authorizer verifying the "
                            "Cognito JWT); API Gateway does not allow an authorizer on other routes, and "
                            "they only run for connections that passed it."
                        ),
                    },
                )

        # -- grants (each function only what it calls) -------------------------------------------
        table_arn = self.connections.table_arn
        fns["WsConnect"].role.add_to_policy(iam.PolicyStatement(
            sid="RecordConnection", actions=["dynamodb:PutItem"], resources=[table_arn]))
        fns["WsDisconnect"].role.add_to_policy(iam.PolicyStatement(
            sid="ForgetConnection", actions=["dynamodb:Query", "dynamodb:DeleteItem"], resources=[table_arn]))
        fns["WsDefault"].role.add_to_policy(iam.PolicyStatement(
            sid="RecordSubscription", actions=["dynamodb:PutItem"], resources=[table_arn]))
        fns["WsPusher"].role.add_to_policy(iam.PolicyStatement(
            sid="PushMarksAndGoneConnections",
            actions=["dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:DeleteItem"],
            resources=[table_arn],
        ))
        fns["WsPusher"].role.add_to_policy(iam.PolicyStatement(
            sid="FindFollowers",
            actions=["dynamodb:Query"],
            resources=[f"{table_arn}/index/by_user", f"{table_arn}/index/by_stream"],
        ))
        for table in view_tables.values():
            # GetItem: a stream's view (subscribe) and the table's active generation (both).
            for name in ("WsDefault", "WsPusher"):
                fns[name].role.add_to_policy(iam.PolicyStatement(
                    actions=["dynamodb:GetItem"], resources=[table.table_arn]))
        # PostToConnection only: a gone connection is forgotten in the table, never deleted by us.
        api_id = self.api.api_id
        # pseudo parameters (not format_arn): the same ARN text with or without an env, for cdk-nag
        self.manage_connections_arn = (
            f"arn:{Aws.PARTITION}:execute-api:{Aws.REGION}:{Aws.ACCOUNT_ID}:{api_id}/{stage_name}/POST/@connections/*"
        )
        fns["WsPusher"].role.add_to_policy(iam.PolicyStatement(
            sid="PostToConnections", actions=["execute-api:ManageConnections"],
            resources=[self.manage_connections_arn],
        ))
        fns["WsPusher"].add_environment("WS_MANAGEMENT_ENDPOINT", self.stage.callback_url)
        api_logical_id = stack.get_logical_id(self.api.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            fns["WsPusher"],
            {
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{api_logical_id}>/{stage_name}/POST/@connections/*]": (
                    "execute-api:ManageConnections is scoped to POST on this API's stage @connections path; "
                    "the trailing '*' is the connection id, known only at run time."
                ),
            },
        )

        # -- the pusher's feed: checkpoint commits of the view tables ------------------------------
        self.event_sources = []
        for table in view_tables.values():
            source = sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.LATEST,  # history is not news
                batch_size=100,
                max_batching_window=Duration.seconds(0),
                retry_attempts=2,
                max_record_age=Duration.minutes(5),  # a stale push is worth nothing
                bisect_batch_on_error=False,
                filters=[lambda_.FilterCriteria.filter({
                    "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
                    "dynamodb": {"Keys": {"sk": {"S": lambda_.FilterRule.is_equal("cp")}}},
                })],
            )
            fns["WsPusher"].function.add_event_source(source)
            self.event_sources.append(source)
        acknowledge(
            fns["WsPusher"],
            {
                "Serverless-LambdaEventSourceMappingDestination": (
                    "Pushes are notifications of state a client can always re-read (GET ?min_version); "
                    "a batch that still fails after 2 retries or 5 minutes is dropped on purpose: "
                    "replaying stale pushes later would only mislead clients."
                ),
            },
        )

        # -- metrics and alarms ----------------------------------------------------------------------
        self.pushes_sent = _push_metric("PushesSent", "Sum", "pushes sent")
        self.pushes_failed = _push_metric("PushesFailed", "Sum", "pushes failed")
        self.connections_gone = _push_metric("ConnectionsGone", "Sum", "gone (410)")
        self.push_delay = [_push_metric("PushDelay", stat, f"event -> push {stat}") for stat in ("p50", "p99")]
        self.connects = self.api.metric("ConnectCount", statistic="Sum", period=_MINUTE, label="connects")
        self.messages = self.api.metric("MessageCount", statistic="Sum", period=_MINUTE, label="messages")
        self.iterator_age = fns["WsPusher"].function.metric("IteratorAge", statistic="Maximum", period=_MINUTE)
        alerts.alarm(
            self,
            "PushesFailedAlarm",
            metric=_push_metric("PushesFailed", "Sum", "pushes failed").with_(period=Duration.minutes(5)),
            threshold=50,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description="WebSocket pushes keep failing (not 410s: the management API refuses or times out)",
        )
        alerts.alarm(
            self,
            "PusherIteratorAgeAlarm",
            metric=self.iterator_age,
            threshold=Duration.minutes(1).to_milliseconds(),
            evaluation_periods=5,
            datapoints_to_alarm=3,
            description="The pusher lags the read-model commits by more than a minute",
        )

    @property
    def url(self) -> str:
        """``wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}``."""
        return self.stage.url

    def widgets(self) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.TextWidget(markdown="## Real-time updates (WebSocket)", width=24, height=1),
            cloudwatch.GraphWidget(title="WebSocket connections and messages",
                                   left=[self.connects, self.messages], width=8, height=6),
            cloudwatch.GraphWidget(title="Pushes", left=[self.pushes_sent, self.pushes_failed,
                                                         self.connections_gone], width=8, height=6),
            cloudwatch.GraphWidget(title="Event -> push delay (ms)", left=self.push_delay,
                                   right=[self.iterator_age.with_(label="pusher iterator age")],
                                   width=8, height=6),
        ]
