"""Catalog Lambda: ``PUT /catalog/{sku}`` (staff) and ``GET /catalog/{sku}`` (any user)."""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cairn.http import CommandRequest, HttpService, IdempotencyKey, IfMatch, execute
from cairn.http.queries import current_view
from catalog import domain
from kernel import Currency, money_str

service = HttpService("catalog")
app = service.app

SkuPath = Annotated[str, Path(description="the product's SKU", max_length=64)]
MONEY_PATTERN = r"^-?\d+\.\d{2}$"


class ProductBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: domain.Name
    unit_price: domain.UnitPrice
    currency: Currency


class Product(BaseModel):
    model_config = ConfigDict(extra="allow")
    sku: str
    name: str
    unit_price: Annotated[str, Field(pattern=MONEY_PATTERN, examples=["9.99"])]
    currency: str
    version: int


@cache
def _dynamodb() -> Any:
    from cairn.aws import client

    return client("dynamodb")


def _runtime():
    from catalog.app import runtime

    return runtime()


def _answer(state: domain.ProductState, version: int) -> dict:
    return {
        "sku": state.sku,
        "name": state.name,
        "unit_price": money_str(state.unit_price),
        "currency": state.currency,
        "version": version,
    }


def _sku(sku: str):
    from pydantic import TypeAdapter, ValidationError

    from cairn.http import not_found

    try:
        return TypeAdapter(domain.Sku).validate_python(sku)
    except ValidationError:
        raise not_found(f"product {sku} not found") from None


@service.route(
    "PUT",
    "/catalog/<sku>",
    staff=True,
    summary="List a product or change its name or price (staff)",
    description="Each change is an event on `product-<sku>`; repeating the same body changes nothing.",
    tags=["catalog"],
)
def put_product(
    sku: SkuPath, body: ProductBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[Product]:
    sku = _sku(sku)
    command = domain.SetProduct(sku=sku, name=body.name, unit_price=body.unit_price, currency=body.currency)
    return execute(
        service,
        _runtime(),
        domain.stream_id_for(sku),
        command,
        CommandRequest("PUT /catalog/{sku}", body.model_dump(mode="json"), {"sku": sku}, if_match, idempotency_key),
        answer=_answer,
    )


@service.get(
    "/catalog/<sku>",
    summary="A product and its current price (any user)",
    description="`min_version=N`: never older than N (answers from the event store if the read model lags).",
    tags=["catalog"],
    problems={412: "min_version is beyond the product's latest version"},
)
def get_product(
    sku: SkuPath, min_version: Annotated[int | None, Query(ge=1, le=10**12)] = None
) -> Response[Product]:
    from catalog.read_models import Products, product_from_events

    sku = _sku(sku)
    return current_view(
        f"product {sku}",
        lambda: Products(_dynamodb(), os.environ["CATALOG_TABLE"]).get(sku),
        lambda: product_from_events(_runtime().store.read(domain.stream_id_for(sku))),
        min_version=min_version,
        visible=lambda view: True,
    )


handler = service.handler
