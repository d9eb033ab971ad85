"""OrdersProjections Lambda: the order stream -> Order View, User Orders, Daily Analytics.

Three projections in one function, each with its own table and checkpoints: a stream failing in
one of them is retried for that one only (the others see duplicates and skip them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from cairn.events import EventEnvelope
from cairn.logs import structured
from cairn.projections import Projection, StreamConsumer, Writes
from cairn.projections.layout import shard_of
from orders import read_models as rm
from orders.app import STREAM_PREFIX, registry

__all__ = ["PROJECTIONS", "TABLE_ENV", "AnalyticsProjection", "OrderViewProjection", "UserOrdersProjection", "handler"]


class OrderViewProjection(Projection):
    """The view is the checkpoint's state: folding it is all there is to do."""

    name = rm.ORDER_VIEW
    stream_prefix = STREAM_PREFIX

    def apply(self, stream_id: str, state: Any, events: Sequence[EventEnvelope], writes: Writes) -> Any:
        for event in events:
            state = rm.order_view_evolve(state, event)
        return state


class UserOrdersProjection(Projection):
    """State: the order's list entry and customer (the key of the list item); one put per batch."""

    name = rm.USER_ORDERS
    stream_prefix = STREAM_PREFIX

    def apply(self, stream_id: str, state: Any, events: Sequence[EventEnvelope], writes: Writes) -> Any:
        entry = state
        for event in events:
            entry = rm.user_order_evolve(entry, event)
        if entry is not None:
            pk, sk = rm.user_orders_key(entry["customer_id"], entry["created_at"], entry["order_id"])
            writes.put(pk, sk, entry)
        return entry


class AnalyticsProjection(Projection):
    """ADDs per (day, currency); state: the order's currency (payments and cancellations do not
    carry it). The counters move only in the checkpoint's transaction: exactly once."""

    name = rm.ANALYTICS
    stream_prefix = STREAM_PREFIX

    def apply(self, stream_id: str, state: Any, events: Sequence[EventEnvelope], writes: Writes) -> Any:
        shard = shard_of(stream_id, rm.ANALYTICS_SHARDS)
        currency = state["currency"] if state else None
        for event in events:
            day = event.occurred_at[:10]
            counters: dict[str, int | Decimal] | None = None
            if event.type == "OrderCreated":
                currency = event.data.currency
                counters = {"orders_created": 1}
            elif event.type == "PaymentProcessed":
                counters = {"orders_paid": 1, "revenue": event.data.amount}
            elif event.type == "OrderCancelled":
                counters = {"orders_cancelled": 1}
            elif event.type == "PaymentRefunded":
                counters = {"orders_refunded": 1, "refunds": event.data.amount}
            if counters is None or currency is None:
                continue
            pk, sk = rm.analytics_key(day, currency, shard)
            writes.add(pk, sk, counters, {"date": day, "currency": currency})
        return {"currency": currency} if currency else None


PROJECTIONS: tuple[Projection, ...] = (OrderViewProjection(), UserOrdersProjection(), AnalyticsProjection())
TABLE_ENV = {rm.ORDER_VIEW: "ORDER_VIEW_TABLE", rm.USER_ORDERS: "USER_ORDERS_TABLE", rm.ANALYTICS: "ANALYTICS_TABLE"}

logger = structured(Logger())  # cairn.* and the contexts' loggers too (cairn.logs)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))


@cache
def consumer() -> StreamConsumer:
    """Built on the first invocation (warm invocations reuse clients and engines)."""
    return StreamConsumer.for_lambda(registry, {p: TABLE_ENV[p.name] for p in PROJECTIONS})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumer().handle(event, context, metrics, consumer="OrdersProjections")  # either stream source
