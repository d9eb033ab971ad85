"""The notifications e-mail switch: off by default, least-privilege grants when on."""

from __future__ import annotations

import json

from cdk_app.app import build_app


def _synth(context: dict) -> dict:
    app, stack = build_app(context=context, skip_layer=True, nag=True)
    return app.synth().get_stack_by_name(stack.stack_name).template


def _notifications(template: dict) -> tuple[dict, list[dict]]:
    resources = template["Resources"]
    fn = resources["Notifications"]["Properties"]
    role = fn["Role"]["Fn::GetAtt"][0]
    statements = [
        st
        for res in resources.values()
        if res["Type"] == "AWS::IAM::Policy" and {"Ref": role} in res["Properties"].get("Roles", [])
        for st in res["Properties"]["PolicyDocument"]["Statement"]
    ]
    return fn["Environment"]["Variables"], statements


def _actions(statements: list[dict]) -> set[str]:
    found: set[str] = set()
    for st in statements:
        actions = st["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def test_email_is_off_by_default_with_no_ses_permission() -> None:
    env, statements = _notifications(_synth({}))
    assert "NOTIFICATIONS_SEND_EMAIL" not in env
    assert not {"ses:SendEmail", "cognito-idp:ListUsers", "kms:Decrypt"} & _actions(statements)
    assert "PERSONAL_DATA_KEY" not in env


def test_switching_email_on_sets_env_and_grants_only_what_sending_needs() -> None:
    env, statements = _notifications(_synth({"notifications_email_from": "no-reply@example.com"}))
    assert env["NOTIFICATIONS_SEND_EMAIL"] == "true"
    assert env["NOTIFICATIONS_FROM_ADDRESS"] == "no-reply@example.com"
    assert "USER_POOL_ID" in env
    ses = [st for st in statements if st["Action"] == "ses:SendEmail"]
    assert ses and all("*" not in json.dumps(st["Resource"]).replace("${AWS::", "") for st in ses)
    assert "cognito-idp:ListUsers" in _actions(statements)
    # opens the order's sealed e-mail: read the subject's key item and Decrypt under its context
    assert {"PERSONAL_DATA_KEYS_TABLE", "PERSONAL_DATA_KEY"} <= set(env)
    (decrypt,) = [st for st in statements if st["Action"] == "kms:Decrypt"]
    assert decrypt["Condition"] == {"Null": {"kms:EncryptionContext:subject": "false"}}
    assert not {"kms:GenerateDataKey", "dynamodb:PutItem"} & {
        a for st in statements if "PersonalData" in json.dumps(st["Resource"]) for a in _actions([st])
    }
