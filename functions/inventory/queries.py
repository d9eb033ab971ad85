"""GET /inventory/{sku} (staff): units of a SKU held by open orders.

A SKU no order ever reserved is simply at zero (there is no catalogue to 404 against).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

from cairn.http.headers import etag
from cairn.http.service import HttpService

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

service = HttpService("inventory")


class SkuView(BaseModel):
    sku: str
    reserved: int
    version: int


@service.get(
    "/inventory/<sku>",
    staff=True,
    summary="Units of a SKU reserved by open orders (staff)",
    tags=["inventory"],
)
def get_sku(sku: Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN)]) -> Response[SkuView]:
    from inventory.app import store

    level = store().sku_level(sku)
    body = SkuView(sku=level.sku, reserved=level.reserved, version=level.version)
    return Response(
        status_code=200,
        content_type="application/json",
        body=body,
        headers={"ETag": etag(level.version)},
    )


handler = service.handler
