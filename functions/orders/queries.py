"""OrdersQueries Lambda: order view, time travel, audit trail, the caller's orders, analytics.

Single-entity reads come from the Order View read model; with ``?min_version=N`` a view older
than N (the projection lags) is replaced by the same view function folded over the event store,
so a client never reads older than its own write. Time travel and the audit trail always read
the event store (snapshots + tail for time travel).
"""

from __future__ import annotations

import os
import re
from datetime import date
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cairn.http import HttpService, not_found, validation_failed
from cairn.http.queries import (
    EventPage,
    VerificationResult,
    current_view,
    event_page,
    json_response,
    seen_elsewhere,
    state_as_of,
    verification,
)

service = HttpService("orders-queries")
app = service.app

ORDER_ID = re.compile(r"^order-[A-Za-z0-9-]{1,64}$")
OrderId = Annotated[str, Path(description="order id, `order-<uuid>`", max_length=100)]
MAX_ANALYTICS_DAYS = 366
Money = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["19.99"])]


# -- response shapes (API.md) -------------------------------------------------------------------
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # API.md: fields may be added, none removed


class Line(_Open):
    sku: str
    quantity: int
    unit_price: Money


class Step(_Open):
    type: str
    version: int
    occurred_at: str


class Refund(_Open):
    amount: Money
    refunded_at: str


class OrderView(_Open):
    order_id: str
    customer_id: str
    status: str
    currency: str
    items: list[Line]
    total: Money
    version: int
    created_at: str
    updated_at: str
    tracking: str | None
    email: str | None = None
    shipping_address: dict[str, Any] | None = None
    personal_data: str = Field("none", description='"present" | "erased" | "none"')
    refund: Refund | None = None
    pending: list[str] = Field(default_factory=list, description='asynchronous work not yet applied: ["payment"]')
    timeline: list[Step]


class OrderAsOf(_Open):
    order_id: str
    customer_id: str
    version: int
    status: str
    currency: str
    total: Money
    items: list[Line]
    tracking: str | None
    email: str | None = None
    shipping_address: dict[str, Any] | None = None
    personal_data: str = Field("none", description='"present" | "erased" | "none"')
    as_of: str | None


class OrderSummary(_Open):
    order_id: str
    status: str
    total: Money
    currency: str
    created_at: str
    version: int


class OrderPage(BaseModel):
    orders: list[OrderSummary]
    next_cursor: str | None


class Day(_Open):
    date: str
    currency: str
    orders_created: int
    orders_paid: int
    orders_cancelled: int
    revenue: Money
    average_order_value: Money
    orders_refunded: int = 0
    refunds: Money = "0.00"
    net_revenue: Money = "0.00"


class DailyReport(BaseModel):
    days: list[Day]


# -- adapters (built on first use: importing this module stays cheap) ------------------------
@cache
def _dynamodb() -> Any:
    from cairn.aws import client

    return client("dynamodb")


def _runtime() -> Any:
    from orders.app import runtime

    return runtime()


def _stream(order_id: str) -> str:
    if not ORDER_ID.match(order_id):
        raise not_found(f"{order_id} not found")
    return order_id


def _visible(customer_id: str | None) -> bool:
    principal = service.principal
    return principal.is_staff or (customer_id is not None and customer_id == principal.sub)


def _open(payload: dict[str, Any], stream_id: str) -> dict[str, Any]:
    from orders.personal import open_personal

    return open_personal(payload, stream_id)


def _opened(view: dict[str, Any] | None, stream_id: str) -> dict[str, Any] | None:
    """The view with its personal fields opened — only for a caller who may see it (the key is
    never fetched for anyone else's order; they get the same 404 as for a missing one)."""
    if view is None or not _visible(view.get("customer_id")):
        return view
    return _open(view, stream_id)


# actors that are services, not people (orders.payment_events, orders.timeouts): shown as they are
SERVICE_ACTORS = frozenset({"payments", "payment-timeouts"})

ENTITY_PROBLEMS = {412: "min_version is beyond the order's latest version (body has current_version)"}


# -- routes ---------------------------------------------------------------------------------------
@service.get(
    "/orders/<id>",
    summary="The Order View (owner or staff)",
    description="`min_version=N`: never older than N (answers from the event store if the view lags).",
    tags=["orders"],
    problems=ENTITY_PROBLEMS,
)
def get_order(
    id: OrderId, min_version: Annotated[int | None, Query(ge=1, le=10**12)] = None
) -> Response[OrderView]:
    from orders.read_models import OrderViews, order_view_from_events

    stream_id = _stream(id)
    return current_view(
        id,
        lambda: _opened(OrderViews(_dynamodb(), os.environ["ORDER_VIEW_TABLE"]).get(stream_id), stream_id),
        lambda: _opened(order_view_from_events(_runtime().store.read(stream_id)), stream_id),
        min_version=min_version,
        visible=lambda view: _visible(view.get("customer_id")),
    )


@service.get(
    "/orders/<id>/history",
    summary="The order as of a version or an instant (owner or staff)",
    description="Exactly one of `version` or `at` (ISO 8601). 404 if the order did not exist then.",
    tags=["orders"],
)
def get_order_history(
    id: OrderId,
    version: Annotated[int | None, Query(ge=1, le=10**12)] = None,
    at: Annotated[str | None, Query(max_length=40, description="ISO 8601 instant, e.g. 2026-11-26T08:30:00Z")] = None,
) -> Response[OrderAsOf]:
    from kernel import money_str

    reached, state, last_at = state_as_of(
        id, _runtime(), _stream(id), version=version, at=at, visible=lambda state: _visible(state.customer_id)
    )
    body = {
        "order_id": state.order_id,
        "customer_id": state.customer_id,
        "version": reached,
        "status": state.status.value,
        "currency": state.currency,
        "total": money_str(state.total),
        "items": [line.model_dump(mode="json") for line in state.items],
        "tracking": state.tracking,
        "email": state.email and state.email.model_dump(),
        "shipping_address": state.shipping_address and state.shipping_address.model_dump(),
        "as_of": last_at,
    }
    return json_response(_open(body, state.order_id), version=reached)


@service.get(
    "/orders/<id>/events",
    summary="The order's events, oldest first (audit trail; owner or staff)",
    tags=["orders"],
)
def get_order_events(
    id: OrderId,
    after: Annotated[int, Query(ge=0, le=10**12)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response[EventPage]:
    stream_id = _stream(id)
    page = event_page(
        _runtime().store, stream_id, after, limit, lambda first: _visible(getattr(first.data, "customer_id", None))
    )
    principal = service.principal
    for event in page["events"]:
        if event["type"] == "OrderCreated":
            event["data"] = _open(event["data"], stream_id)
        metadata = event["metadata"]
        # a customer sees that staff acted, not which staff member (their sub is personal data)
        if not principal.is_staff and metadata.get("actor") not in (None, principal.sub, *SERVICE_ACTORS):
            metadata["actor"] = "staff"
    return json_response(page)


@service.get(
    "/orders/<id>/verification",
    summary="Is the order's stored history intact? (owner or staff)",
    description="Recomputes the hash chain from version 1 and compares the head with the Order View "
    "and the snapshot. A broken chain is still 200: the answer is the verification.",
    tags=["orders"],
)
def get_order_verification(id: OrderId) -> Response[VerificationResult]:
    from orders.read_models import OrderViews

    stream_id = _stream(id)
    return verification(
        id,
        _runtime().store,
        stream_id,
        owner_of_first=lambda first: getattr(first, "customer_id", None),
        visible=_visible,
        elsewhere=lambda: seen_elsewhere(
            stream_id,
            lambda: OrderViews(_dynamodb(), os.environ["ORDER_VIEW_TABLE"]).get(stream_id),
            "customer_id",
            _runtime(),
        ),
    )


@service.get("/users/me/orders", summary="The caller's orders, newest first", tags=["orders"])
def list_my_orders(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
) -> Response[OrderPage]:
    from orders.read_models import InvalidCursorError, UserOrders

    reader = UserOrders(_dynamodb(), os.environ["USER_ORDERS_TABLE"])
    try:
        orders, next_cursor = reader.list(service.principal.sub, limit, cursor)
    except InvalidCursorError:
        raise validation_failed([{"loc": ["query", "cursor"], "msg": "not a cursor this API issued"}]) from None
    return json_response({"orders": orders, "next_cursor": next_cursor})


@service.get(
    "/analytics/daily",
    staff=True,
    summary="Orders and revenue per day and currency (staff)",
    description="`from`..`to` inclusive, at most 366 days. Revenue counts payments on their day.",
    tags=["analytics"],
)
def daily_analytics(
    from_: Annotated[date, Query(alias="from", description="first day, YYYY-MM-DD")],
    to: Annotated[date, Query(description="last day, YYYY-MM-DD")],
) -> Response[DailyReport]:
    from orders.read_models import DailyAnalytics

    if from_ > to:
        raise validation_failed([{"loc": ["query", "to"], "msg": "to is before from"}])
    if (to - from_).days + 1 > MAX_ANALYTICS_DAYS:
        raise validation_failed([{"loc": ["query", "to"], "msg": f"at most {MAX_ANALYTICS_DAYS} days"}])
    days = DailyAnalytics(_dynamodb(), os.environ["ANALYTICS_TABLE"]).days(from_, to)
    return json_response({"days": days})


handler = service.handler
