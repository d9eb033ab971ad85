"""Order read models: item shapes and key layout, shared by the projections (writers) and the
query handlers (readers). Keys are generation-free here; ``cairn.projections`` scopes them.

- **Order View** (``ORDER_VIEW_TABLE``): the view is the projection's per-stream state, kept in
  the stream's checkpoint item, so view and checkpoint are one item and can never disagree.
- **User Orders** (``USER_ORDERS_TABLE``): ``pk = u#<customer_id>``, ``sk = <created_at>#<order_id>``
  — a Query with ``ScanIndexForward=False`` lists a customer's orders newest first.
- **Daily Analytics** (``ANALYTICS_TABLE``): ``pk = m#<YYYY-MM>``, ``sk = <date>#<currency>#<shard>``;
  counters are ADDed in the checkpoint's transaction and write-sharded by stream so concurrent
  consumers rarely conflict; readers sum the shards. Creations and cancellations count on their
  own day, revenue (and ``orders_paid``) on the day of the payment.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from cairn.events import EventEnvelope
from cairn.projections.codec import from_item
from cairn.projections.layout import gen_pk
from cairn.projections.readers import ReadModelTable

__all__ = [
    "ANALYTICS",
    "ANALYTICS_SHARDS",
    "ORDER_VIEW",
    "USER_ORDERS",
    "DailyAnalytics",
    "InvalidCursorError",
    "OrderViews",
    "UserOrders",
    "analytics_key",
    "analytics_row",
    "order_stream_id",
    "order_view_evolve",
    "order_view_from_events",
    "user_order_entry",
    "user_order_evolve",
    "user_orders_key",
]

ORDER_VIEW = "order_view"
USER_ORDERS = "user_orders"
ANALYTICS = "analytics"
STREAM_PREFIX = "order-"
ANALYTICS_SHARDS = 4
CENT = Decimal("0.01")

_STATUS_BY_EVENT = {
    "PaymentProcessed": "PAID",
    "PaymentFailed": "PAYMENT_FAILED",
    "OrderShipped": "SHIPPED",
    "OrderDelivered": "DELIVERED",
    "OrderCancelled": "CANCELLED",
    "PaymentRefunded": "REFUNDED",
}


# the payment outcome, or a cancellation (after which no outcome is applied to the order)
_PAYMENT_OUTCOMES = frozenset({"PaymentProcessed", "PaymentFailed", "OrderCancelled"})


class InvalidCursorError(ValueError):
    """A paging cursor that this service did not issue (or that was altered)."""


def order_stream_id(order_id: str) -> str:
    """Order ids are their stream ids (``order-<uuid>``); a bare uuid gets the prefix."""
    return order_id if order_id.startswith(STREAM_PREFIX) else STREAM_PREFIX + order_id


def money(value: Decimal | int | str) -> str:
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN))


# -- Order View: the pure fold (the projection and read-your-writes both use it) -------------
def order_view_evolve(view: dict[str, Any] | None, event: EventEnvelope) -> dict[str, Any] | None:
    """The view after ``event``. Never mutates ``view``. Events before OrderCreated are ignored."""
    data = event.data
    step = {"type": event.type, "version": event.version, "occurred_at": event.occurred_at}
    if event.type == "OrderCreated":
        view = {
            "order_id": data.order_id,
            "customer_id": data.customer_id,
            "status": "CREATED",
            "currency": data.currency,
            "items": [
                {"sku": line.sku, "quantity": line.quantity, "unit_price": money(line.unit_price)}
                for line in data.items
            ],
            "total": money(data.total),
            "version": event.version,
            "created_at": event.occurred_at,
            "updated_at": event.occurred_at,
            "tracking": None,
            "refund": None,
            # asynchronous work started by the order and not yet applied (API.md: "pending")
            "pending": ["payment"] if data.payment_intent else [],
            "timeline": [step],
        }
        # personal data (issue 12) stays sealed here: the read model never holds the plaintext;
        # the query handler opens it per answer (absent keys: the order has none)
        for field in ("email", "shipping_address"):
            sealed = getattr(data, field, None)
            if sealed is not None:
                view[field] = sealed.model_dump()
        return view
    if view is None:
        return None
    new = dict(view)
    new["timeline"] = [*view["timeline"], step]
    new["version"] = event.version
    new["updated_at"] = event.occurred_at
    status = _STATUS_BY_EVENT.get(event.type)
    if status is not None:
        new["status"] = status
    if event.type == "OrderShipped":
        new["tracking"] = data.tracking
    elif event.type == "PaymentRefunded":
        new["refund"] = {"amount": money(data.amount), "refunded_at": event.occurred_at}
    if event.type in _PAYMENT_OUTCOMES:
        new["pending"] = [p for p in view.get("pending", ()) if p != "payment"]
    return new


def order_view_from_events(envelopes: Iterable[EventEnvelope]) -> dict[str, Any] | None:
    """The Order View of a stream from its events in version order (None: no order)."""
    view = None
    for event in envelopes:
        view = order_view_evolve(view, event)
    return view


# -- User Orders ---------------------------------------------------------------------------------
def user_order_entry(view: dict[str, Any]) -> dict[str, Any]:
    """The list entry of an order (API: order_id, status, total, currency, created_at, version)."""
    return {
        "order_id": view["order_id"],
        "status": view["status"],
        "total": view["total"],
        "currency": view["currency"],
        "created_at": view["created_at"],
        "version": view["version"],
    }


def user_order_evolve(entry: dict[str, Any] | None, event: EventEnvelope) -> dict[str, Any] | None:
    """The list entry (plus ``customer_id``, its key) after ``event``; the small sibling of the view fold."""
    if event.type == "OrderCreated":
        data = event.data
        return {
            "order_id": data.order_id,
            "customer_id": data.customer_id,
            "status": "CREATED",
            "total": money(data.total),
            "currency": data.currency,
            "created_at": event.occurred_at,
            "version": event.version,
        }
    if entry is None:
        return None
    return {**entry, "status": _STATUS_BY_EVENT.get(event.type, entry["status"]), "version": event.version}


def user_orders_key(customer_id: str, created_at: str, order_id: str) -> tuple[str, str]:
    return f"u#{customer_id}", f"{created_at}#{order_id}"


_CURSOR_SK = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.]+Z#[A-Za-z0-9-]{1,100}$")


def _encode_cursor(sk: str) -> str:
    raw = json.dumps({"v": 1, "after": sk}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 512:
        raise InvalidCursorError("cursor is malformed")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursorError("cursor is malformed") from None
    if not isinstance(body, dict) or body.get("v") != 1 or not isinstance(body.get("after"), str):
        raise InvalidCursorError("cursor is malformed")
    if not _CURSOR_SK.match(body["after"]):
        raise InvalidCursorError("cursor is malformed")
    return body["after"]


# -- Daily Analytics -------------------------------------------------------------------------------
def analytics_key(day: str, currency: str, shard: int) -> tuple[str, str]:
    return f"m#{day[:7]}", f"{day}#{currency}#{shard:02d}"


def analytics_row(
    day: str, currency: str, created: int, paid: int, cancelled: int, revenue: Decimal | int,
    refunded: int = 0, refunds: Decimal | int = 0,
) -> dict[str, Any]:
    """The API shape of one (day, currency): revenue, refunds, net revenue and average as money strings."""
    revenue, refunds = Decimal(revenue), Decimal(refunds)
    average = (revenue / paid) if paid else Decimal(0)
    return {
        "date": day,
        "currency": currency,
        "orders_created": int(created),
        "orders_paid": int(paid),
        "orders_cancelled": int(cancelled),
        "revenue": money(revenue),
        "average_order_value": money(average),
        "orders_refunded": int(refunded),
        "refunds": money(refunds),
        "net_revenue": money(revenue - refunds),
    }


def _as_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _months(first: date, last: date) -> list[str]:
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return months


# -- readers -----------------------------------------------------------------------------------------
class OrderViews(ReadModelTable):
    """``get(order_id)`` -> the Order View (API.md) from the active generation, or None."""

    def get(self, order_id: str) -> dict[str, Any] | None:
        found = self.stream_state(order_stream_id(order_id))
        if found is None or found[1] is None:
            return None
        view = found[1]
        view.setdefault("pending", [])  # views committed before the field existed
        return view


class UserOrders(ReadModelTable):
    """A customer's orders, newest first, with an opaque cursor."""

    max_limit = 1000

    def list(
        self, customer_id: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        if not 1 <= int(limit) <= self.max_limit:
            raise ValueError(f"limit must be between 1 and {self.max_limit}")
        generation = self.generation()
        pk = gen_pk(generation, f"u#{customer_id}")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": pk}},
            "ScanIndexForward": False,
            "ConsistentRead": self.consistent,
            "Limit": int(limit) + 1,  # one extra: a next page exists only if it is there
        }
        if cursor:
            request["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": _decode_cursor(cursor)}}
        items: list[dict[str, Any]] = []
        while len(items) <= limit:
            page = self.client.query(**request)
            items.extend(page.get("Items", ()))
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        orders = [_entry(item) for item in items[:limit]]
        next_cursor = _encode_cursor(items[limit - 1]["sk"]["S"]) if len(items) > limit else None
        return orders, next_cursor


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    plain = from_item(item)
    return {name: plain.get(name) for name in ("order_id", "status", "total", "currency", "created_at", "version")}


class DailyAnalytics(ReadModelTable):
    """Per (date, currency) counters for a date range, oldest first."""

    def days(self, from_date: date | str, to_date: date | str) -> list[dict[str, Any]]:
        first, last = _as_date(from_date), _as_date(to_date)
        if first > last:
            raise ValueError("from_date is after to_date")
        generation = self.generation()
        lo, hi = first.isoformat(), last.isoformat() + "$"  # '$' sorts after the '#' that follows a date
        totals: dict[tuple[str, str], list[Any]] = {}
        for month in _months(first, last):
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {
                    ":p": {"S": gen_pk(generation, f"m#{month}")},
                    ":lo": {"S": lo},
                    ":hi": {"S": hi},
                },
                "ConsistentRead": self.consistent,
            }
            while True:
                page = self.client.query(**request)
                for item in page.get("Items", ()):
                    row = from_item(item)
                    slot = totals.setdefault((row["date"], row["currency"]), [0, 0, 0, Decimal(0), 0, Decimal(0)])
                    slot[0] += row.get("orders_created", 0)
                    slot[1] += row.get("orders_paid", 0)
                    slot[2] += row.get("orders_cancelled", 0)
                    slot[3] += Decimal(row.get("revenue", 0))
                    slot[4] += row.get("orders_refunded", 0)
                    slot[5] += Decimal(row.get("refunds", 0))
                if not page.get("LastEvaluatedKey"):
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [analytics_row(d, c, *totals[(d, c)]) for d, c in sorted(totals)]

