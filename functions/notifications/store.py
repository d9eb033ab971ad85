"""Notifications table adapter (PK ``pk``, SK ``sk``).

Key layout:

- ``user#<user_id>`` / ``notification#<created_at>#<notification_id>``: the notification
  (a Query on the user's partition, newest first, is the inbox)
- ``dedupe#<notification_id>`` / ``notification``: the milestone was notified; points at the
  notification item. Written in the same ``TransactWriteItems`` as the notification, with the
  condition that it does not exist: a repeat inserts nothing, whatever its delivery.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifications.domain import Notification


class InvalidCursorError(ValueError):
    """A pagination cursor that this service did not produce."""


class EmailStatus:
    DISABLED = "DISABLED"  # sending is switched off (NOTIFICATIONS_SEND_EMAIL=false)
    PENDING = "PENDING"  # stored, not yet sent (a redelivery finishes the send)
    SENT = "SENT"
    NO_ADDRESS = "NO_ADDRESS"  # the user has no known email address


@dataclass(frozen=True, slots=True)
class StoredNotification:
    notification_id: str
    order_id: str
    kind: str
    created_at: str
    subject: str
    email_status: str

    def to_dict(self) -> dict[str, str]:
        return {
            "notification_id": self.notification_id,
            "order_id": self.order_id,
            "kind": self.kind,
            "created_at": self.created_at,
            "subject": self.subject,
        }


def _user_key(n: Notification) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"user#{n.user_id}"}, "sk": {"S": f"notification#{n.created_at}#{n.notification_id}"}}


def _dedupe_key(notification_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"dedupe#{notification_id}"}, "sk": {"S": "notification"}}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class NotificationStore:
    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    def insert(self, n: Notification, email_status: str) -> bool:
        """Store ``n`` unless this milestone was already notified. True if it was inserted."""
        from botocore.exceptions import ClientError

        key = _user_key(n)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **_dedupe_key(n.notification_id),
                                "event_id": {"S": n.event_id},
                                "target_pk": key["pk"],
                                "target_sk": key["sk"],
                                "recorded_at": {"S": _now()},
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **key,
                                "notification_id": {"S": n.notification_id},
                                "order_id": {"S": n.order_id},
                                "kind": {"S": n.kind},
                                "created_at": {"S": n.created_at},
                                "event_id": {"S": n.event_id},
                                "subject": {"S": n.subject},
                                "email_status": {"S": email_status},
                            },
                        }
                    },
                ]
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            raise

    def email_status(self, n: Notification) -> str | None:
        item = self.client.get_item(TableName=self.table, Key=_user_key(n), ConsistentRead=True).get("Item")
        return item["email_status"]["S"] if item else None

    def mark_email(self, n: Notification, status: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=_user_key(n),
            UpdateExpression="SET email_status = :s, emailed_at = :now",
            ExpressionAttributeValues={":s": {"S": status}, ":now": {"S": _now()}},
        )

    def list_for_user(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[StoredNotification], str | None]:
        """The user's notifications, newest first, and the cursor of the next page (or None)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"user#{user_id}"}, ":prefix": {"S": "notification#"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = _decode_cursor(cursor, user_id)
        response = self.client.query(**request)
        items = [
            StoredNotification(
                notification_id=i["notification_id"]["S"],
                order_id=i["order_id"]["S"],
                kind=i["kind"]["S"],
                created_at=i["created_at"]["S"],
                subject=i.get("subject", {}).get("S", ""),
                email_status=i.get("email_status", {}).get("S", EmailStatus.DISABLED),
            )
            for i in response.get("Items", [])
        ]
        last = response.get("LastEvaluatedKey")
        return items, (_encode_cursor(last) if last else None)


def _encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps({"sk": key["sk"]["S"]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, user_id: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sk = json.loads(base64.urlsafe_b64decode(padded.encode()))["sk"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursorError("invalid cursor") from exc
    if not isinstance(sk, str) or not sk.startswith("notification#"):
        raise InvalidCursorError("invalid cursor")
    return {"pk": {"S": f"user#{user_id}"}, "sk": {"S": sk}}
