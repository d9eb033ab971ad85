"""Identity and abuse (issue 17 defect 7): sign-in needs SRP and a second factor, the cdk-nag
reasons about Cognito are true, one queue cannot take the account's concurrency, and the HTTP
functions' concurrency can be reserved (and capped) per deployment."""

from __future__ import annotations

import pytest

from cdk_app.app import build_app
from cdk_app.stacks.cairn_stack import HTTP_RESERVED_CONCURRENCY, ROUTES, SQS_MAX_CONCURRENCY
from tests.infrastructure.cdk_helpers import Synth
from tests.infrastructure.test_cdk_nag import _acknowledgements

ACCOUNT_DEFAULT_CONCURRENCY = 1000  # Lambda's default regional quota
UNRESERVED_MINIMUM = 100  # Lambda always keeps this much of the quota unreserved
HTTP_FUNCTIONS = {function for _, _, function, _ in ROUTES}


def _pool(template: dict) -> dict:
    (pool,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Cognito::UserPool"]
    return pool["Properties"]


def test_every_user_signs_in_with_totp_mfa(synth: Synth) -> None:
    props = _pool(synth.template)
    assert props["MfaConfiguration"] == "ON"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]


def test_no_public_flow_sends_the_password(synth: Synth) -> None:
    (client,) = synth.of_type("AWS::Cognito::UserPoolClient").values()
    flows = set(client["Properties"]["ExplicitAuthFlows"])
    assert "ALLOW_USER_PASSWORD_AUTH" not in flows
    # SRP for apps; the admin flow needs IAM credentials (cognito-idp:AdminInitiateAuth)
    assert flows == {"ALLOW_USER_SRP_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}


def test_cognito_acknowledgements_are_true(synth: Synth) -> None:
    rules = {rule: reason for path, rule, reason in _acknowledgements(synth) if "/Http/Users" in path}
    assert "AwsSolutions-COG2" not in rules  # MFA is required: nothing to acknowledge
    reason = rules["AwsSolutions-COG8"]
    assert "no public sign-in surface" not in reason
    assert "public" in reason and "SRP" in reason and "MFA required" in reason


def test_sqs_subscriptions_have_a_maximum_concurrency(synth: Synth) -> None:
    mappings = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if "Fn::GetAtt" in m["Properties"].get("EventSourceArn", {})
        and "Queue" in m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    ]
    # payments, order payments, payment timeouts (issue 15), inventory, notifications
    assert len(mappings) == 5
    for mapping in mappings:
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": SQS_MAX_CONCURRENCY}
    assert 2 <= SQS_MAX_CONCURRENCY <= 1000  # Lambda's allowed range


def test_no_reservation_by_default(synth: Synth) -> None:
    for name, fn in synth.of_type("AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in fn["Properties"], name


@pytest.fixture(scope="module")
def switched_on() -> dict:
    """The stack with both switches on (cdk-nag attached: the synth fails on a finding)."""
    app, stack = build_app(
        context={"reserved_concurrency": "true", "cognito_threat_protection": "true"}, skip_layer=True, nag=True
    )
    return app.synth().get_stack_by_name(stack.stack_name).template


def test_reserved_concurrency_caps_every_http_function_and_only_them(switched_on: dict) -> None:
    reserved = {
        name: r["Properties"]["ReservedConcurrentExecutions"]
        for name, r in switched_on["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and "ReservedConcurrentExecutions" in r["Properties"]
    }
    assert reserved == HTTP_RESERVED_CONCURRENCY
    assert set(reserved) == HTTP_FUNCTIONS
    assert sum(reserved.values()) + UNRESERVED_MINIMUM <= ACCOUNT_DEFAULT_CONCURRENCY


def test_threat_protection_switch(switched_on: dict) -> None:
    props = _pool(switched_on)
    assert props["UserPoolTier"] == "PLUS"
    assert props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert props["MfaConfiguration"] == "ON"
