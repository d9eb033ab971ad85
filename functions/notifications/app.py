"""Composition root of the notifications context."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

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
        opener=order_email_opener() if os.environ.get("PERSONAL_DATA_KEYS_TABLE") else None,
    )


def order_email_opener():
    """(sealed email, order id) -> the plaintext address, or None when the customer was erased
    (``cairn.privacy``: ``PERSONAL_DATA_KEYS_TABLE`` + ``PERSONAL_DATA_KEY``, decrypt only)."""
    from cairn.privacy.compose import codec_from_env

    codec = codec_from_env()

    def open_email(sealed: Any, order_id: str) -> str | None:
        raw = sealed.model_dump() if hasattr(sealed, "model_dump") else sealed
        return codec.open({"email": raw}, stream_id=order_id, fields=("email",)).get("email")

    return open_email
