"""Composition root of the notifications context."""

from __future__ import annotations

import os
from functools import cache

from notifications.sender import EmailSender
from notifications.store import NotificationStore

TRUE = {"1", "true", "yes", "on"}


@cache
def store() -> NotificationStore:
    from cairn.aws import client

    return NotificationStore(client("dynamodb"), os.environ["NOTIFICATIONS_TABLE"])


def send_email_enabled() -> bool:
    return os.environ.get("NOTIFICATIONS_SEND_EMAIL", "false").strip().lower() in TRUE


@cache
def sender() -> EmailSender | None:
    """SES sender when ``NOTIFICATIONS_SEND_EMAIL`` is true (off by default), else None.

    Needs ``NOTIFICATIONS_FROM_ADDRESS`` (a verified SES identity) and ``USER_POOL_ID``.
    """
    if not send_email_enabled():
        return None
    from cairn.aws import client
    from notifications.sender import CognitoDirectory, SesEmailSender

    return SesEmailSender(
        client("ses"),
        os.environ["NOTIFICATIONS_FROM_ADDRESS"],
        CognitoDirectory(client("cognito-idp"), os.environ["USER_POOL_ID"]),
    )
