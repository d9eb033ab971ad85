"""Inventory table adapter: reservations, SKU levels and dedupe records (PK ``pk``, SK ``sk``).

Key layout:

- ``sku#<sku>`` / ``level``: ``reserved`` (units held by open orders), ``version`` (changes so far)
- ``order#<order_id>`` / ``reservation#<chunk>``: ``status``, ``quantities`` (what it holds)
- ``dedupe#<integration event id>`` / ``chunk#<chunk>``: the event was applied (TTL ``expires_at``)

Every effect is ONE ``TransactWriteItems``: the dedupe record (condition: absent), the
reservation change (condition: the state the decision was made on) and the SKU counter
updates. A duplicate fails the first condition, a concurrent change the second (re-decide).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inventory.domain import Action, Reservation, ReservationStatus

DEDUPE_TTL_SECONDS = 35 * 24 * 3600  # longer than SQS retention (14 days) + a replay window


class InventoryStoreError(Exception):
    """The inventory table refused a write for a reason other than a known condition."""


class ReservationChangedError(InventoryStoreError):
    """The reservation moved since it was read (a concurrent event): re-read and re-decide."""


@dataclass(frozen=True, slots=True)
class SkuLevel:
    sku: str
    reserved: int
    version: int


def sku_key(sku: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"sku#{sku}"}, "sk": {"S": "level"}}


def reservation_key(order_id: str, chunk: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"order#{order_id}"}, "sk": {"S": f"reservation#{chunk:04d}"}}


def dedupe_key(event_id: str, chunk: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"dedupe#{event_id}"}, "sk": {"S": f"chunk#{chunk:04d}"}}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class InventoryStore:
    def __init__(self, client: Any, table: str, *, dedupe_ttl_seconds: int = DEDUPE_TTL_SECONDS):
        self.client = client
        self.table = table
        self.dedupe_ttl_seconds = dedupe_ttl_seconds

    # -- reads --------------------------------------------------------------------------------
    def reservation(self, order_id: str, chunk: int) -> Reservation | None:
        item = self.client.get_item(
            TableName=self.table, Key=reservation_key(order_id, chunk), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        quantities = {sku: int(v["N"]) for sku, v in item.get("quantities", {}).get("M", {}).items()}
        return Reservation(order_id, chunk, ReservationStatus(item["status"]["S"]), quantities)

    def sku_level(self, sku: str, *, consistent: bool = False) -> SkuLevel:
        item = self.client.get_item(TableName=self.table, Key=sku_key(sku), ConsistentRead=consistent).get("Item")
        if item is None:
            return SkuLevel(sku, 0, 0)
        return SkuLevel(sku, int(item["reserved"]["N"]), int(item["version"]["N"]))

    # -- the effect ---------------------------------------------------------------------------
    def apply(
        self,
        *,
        event_id: str,
        event_type: str,
        order_id: str,
        chunk: int,
        action: Action,
        quantities: Mapping[str, int],
        current: Reservation | None,
    ) -> bool:
        """Apply ``action`` for one chunk atomically with the event's dedupe record.

        Returns False when the event was already applied (duplicate), True otherwise. Raises
        ReservationChangedError when the reservation is no longer ``current``.
        """
        now = _now()
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        **dedupe_key(event_id, chunk),
                        "event_type": {"S": event_type},
                        "order_id": {"S": order_id},
                        "action": {"S": action.value},
                        "processed_at": {"S": now},
                        "expires_at": {"N": str(int(time.time()) + self.dedupe_ttl_seconds)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if action in (Action.RESERVE, Action.TOMBSTONE):
            status = ReservationStatus.RESERVED if action is Action.RESERVE else ReservationStatus.RELEASED
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **reservation_key(order_id, chunk),
                            "status": {"S": status.value},
                            "quantities": {"M": {sku: {"N": str(q)} for sku, q in quantities.items()}},
                            "order_id": {"S": order_id},
                            "event_id": {"S": event_id},
                            "updated_at": {"S": now},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        elif action is Action.RELEASE:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": reservation_key(order_id, chunk),
                        "UpdateExpression": "SET #s = :released, released_by = :event, updated_at = :now",
                        "ConditionExpression": "#s = :reserved",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {
                            ":released": {"S": ReservationStatus.RELEASED.value},
                            ":reserved": {"S": ReservationStatus.RESERVED.value},
                            ":event": {"S": event_id},
                            ":now": {"S": now},
                        },
                    }
                }
            )
        else:  # NOOP: the decision rests on the state read; make the write conditional on it
            items.append(self._state_check(order_id, chunk, current))
        sign = {Action.RESERVE: 1, Action.RELEASE: -1}.get(action, 0)
        if sign:
            for sku, quantity in sorted(quantities.items()):
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": sku_key(sku),
                            "UpdateExpression": "ADD reserved :q, version :one SET updated_at = :now",
                            "ExpressionAttributeValues": {
                                ":q": {"N": str(sign * quantity)},
                                ":one": {"N": "1"},
                                ":now": {"S": now},
                            },
                        }
                    }
                )
        return self._transact(items)

    def _state_check(self, order_id: str, chunk: int, current: Reservation | None) -> dict[str, Any]:
        check: dict[str, Any] = {"TableName": self.table, "Key": reservation_key(order_id, chunk)}
        if current is None:
            check["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            check["ConditionExpression"] = "#s = :s"
            check["ExpressionAttributeNames"] = {"#s": "status"}
            check["ExpressionAttributeValues"] = {":s": {"S": current.status.value}}
        return {"ConditionCheck": check}

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.transact_write_items(TransactItems=items)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False  # the dedupe record exists: already applied
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise ReservationChangedError("reservation changed concurrently") from exc
            raise InventoryStoreError(f"inventory transaction cancelled: {reasons or exc}") from exc
