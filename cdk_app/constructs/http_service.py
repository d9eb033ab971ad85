"""HTTP API with a Cognito user pool and a JWT authorizer on every route but the public ones.

An optional ``$default`` route (``fallback``) sends requests that match no route to a function,
so they get the contract's problem+json 404/405 instead of API Gateway's bare ``{"message"}``. The ``$default`` *stage* carries the throttling and the JSON access logs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.constructs.nag import acknowledge

__all__ = ["ACCESS_LOG_FIELDS", "HttpService", "Route"]

# JSON access log line (HTTP API $context variables).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "error": "$context.error.message",
    "sub": "$context.authorizer.claims.sub",
}


@dataclass(frozen=True)
class Route:
    """``method path`` served by ``function``; ``public`` routes have no authorizer."""

    method: str
    path: str
    function: lambda_.IFunction
    public: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, destination: apigw.IAccessLogDestination, format: apigw_v1.AccessLogFormat) -> None:
        self._destination = destination
        self._format = format

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return self._format


class HttpService(Construct):
    """User pool (+ ``staff`` group, app client) -> JWT authorizer -> HTTP API routes -> functions."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        routes: Sequence[Route],
        rate_limit: int = 200,
        burst_limit: int = 400,
        log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS,
        staff_group: str = "staff",
        token_validity: Duration = Duration.hours(1),
        user_pool_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        fallback: lambda_.IFunction | None = None,
        threat_protection: bool = False,
    ) -> None:
        """``threat_protection``: Cognito's Plus plan with threat protection enforced (adaptive
        authentication, compromised-credential checks; billed per monthly active user)."""
        super().__init__(scope, id)
        keys = [route.key for route in routes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate routes: {sorted(k for k in keys if keys.count(k) > 1)}")

        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,  # users are created by an administrator (docs/deploy.md)
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.LITE,
            standard_threat_protection_mode=(
                cognito.StandardThreatProtectionMode.FULL_FUNCTION if threat_protection else None
            ),
            # Every user may act on money (customers pay, staff record payments): a second factor
            # for all. TOTP only: SMS costs per message and is the weaker factor.
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            deletion_protection=user_pool_removal_policy == RemovalPolicy.RETAIN,
            removal_policy=user_pool_removal_policy,
        )
        if not threat_protection:
            acknowledge(
                self.user_pool,
                {
                    "AwsSolutions-COG8": (
                        "The sign-in endpoint is public (anyone can call InitiateAuth with the client id). "
                        "Without the Plus plan it is guarded by: SRP only (the password never crosses the "
                        "wire), TOTP MFA required for every user, no self sign-up, no user-existence errors, "
                        "Cognito's lockout after failed attempts, and the API's throttling. Adaptive "
                        "authentication and compromised-credential checks are one switch away "
                        "(-c cognito_threat_protection=true, docs/deploy.md), billed per monthly active user."
                    ),
                },
            )
        self.staff_group = cognito.UserPoolGroup(
            self,
            "Staff",
            user_pool=self.user_pool,
            group_name=staff_group,
            description="May ship, deliver, record payments, read analytics, inventory and ops",
        )
        # Public flows: SRP only (USER_PASSWORD_AUTH would send the password itself). The admin
        # flow needs IAM credentials (cognito-idp:AdminInitiateAuth): operators' CLI tokens.
        self.client = self.user_pool.add_client(
            "ApiClient",
            auth_flows=cognito.AuthFlow(user_password=False, user_srp=True, admin_user_password=True),
            generate_secret=False,
            disable_o_auth=True,  # tokens come from InitiateAuth, no hosted UI / redirects
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=token_validity,
            id_token_validity=token_validity,
            refresh_token_validity=Duration.days(30),
        )
        self.authorizer = authorizers.HttpUserPoolAuthorizer(
            "CognitoJwt",
            self.user_pool,
            user_pool_clients=[self.client],
            identity_source=["$request.header.Authorization"],
        )

        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=f"{Stack.of(self).stack_name}-{id}",
            description="Cairn HTTP API",
            create_default_stage=False,
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            access_log_settings=_AccessLogSettings(
                apigw.LogGroupLogDestination(self.access_logs),
                apigw_v1.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))),
            ),
        )

        self.routes: dict[str, apigw.HttpRoute] = {}
        integrations_by_function: dict[str, integrations.HttpLambdaIntegration] = {}
        public = apigw.HttpNoneAuthorizer()
        for route in routes:
            fn_path = route.function.node.path
            integration = integrations_by_function.get(fn_path)
            if integration is None:
                integration = integrations.HttpLambdaIntegration(
                    f"{route.function.node.id}Integration", route.function
                )
                integrations_by_function[fn_path] = integration
            (http_route,) = self.api.add_routes(
                path=route.path,
                methods=[apigw.HttpMethod(route.method)],
                integration=integration,
                authorizer=public if route.public else self.authorizer,
            )
            self.routes[route.key] = http_route
            if route.public:
                acknowledge(
                    http_route,
                    {
                        "AwsSolutions-APIG4": (
                            f"{route.key} is public by contract (API.md): a health probe / the API "
                            "description, no user data and no side effects."
                        ),
                    },
                )

        self.fallback_route: apigw.HttpRoute | None = None
        if fallback is not None:
            integration = integrations_by_function.get(fallback.node.path) or integrations.HttpLambdaIntegration(
                f"{fallback.node.id}FallbackIntegration", fallback
            )
            self.fallback_route = apigw.HttpRoute(
                self,
                "DefaultRoute",
                http_api=self.api,
                route_key=apigw.HttpRouteKey.DEFAULT,
                integration=integration,
                authorizer=public,
            )
            acknowledge(
                self.fallback_route,
                {
                    "AwsSolutions-APIG4": (
                        "$default only answers requests that match no route: the function replies 404/405 "
                        "problem+json and touches no data; every real route keeps the JWT authorizer."
                    ),
                },
            )

    @property
    def url(self) -> str:
        """Base URL of the API (``https://{api-id}.execute-api.{region}.amazonaws.com/``)."""
        return self.stage.url
