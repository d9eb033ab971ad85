"""Product decider: a product is listed once, then renamed or re-priced by events.

``PUT /catalog/{sku}`` is a ``SetProduct``: it decides only the differences (a repeat decides
nothing), so the stream holds exactly the history of prices in force.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel import Currency, EventMoney, Money

STREAM_PREFIX = "product-"
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
# the same bounds as an order line's unit price
UnitPrice = Annotated[Money, Field(gt=0, le=Decimal("1000000.00"))]


def stream_id_for(sku: str) -> str:
    return f"{STREAM_PREFIX}{sku}"


# -- commands -------------------------------------------------------------------------------
class SetProduct(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["set"] = "set"
    sku: Sku
    name: Name
    unit_price: UnitPrice
    currency: Currency


Command = SetProduct


# -- events ---------------------------------------------------------------------------------
class _Event(BaseModel):
    """Stored payloads: no input limits (those are on the commands), amounts are ``EventMoney``,
    currencies plain strings — tightening an input rule never makes a stored price unreadable."""

    model_config = ConfigDict(frozen=True, strict=True)


class ProductListed(_Event):
    sku: str
    name: str
    unit_price: EventMoney
    currency: str


class ProductRenamed(_Event):
    name: str


class ProductPriceChanged(_Event):
    unit_price: EventMoney
    currency: str
    previous_price: EventMoney
    previous_currency: str


EVENT_TYPES: tuple[type[BaseModel], ...] = (ProductListed, ProductRenamed, ProductPriceChanged)
SCHEMA_VERSIONS: dict[type[BaseModel], int] = dict.fromkeys(EVENT_TYPES, 1)


# -- state ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProductState:
    sku: str = ""
    name: str = ""
    unit_price: Decimal = Decimal("0.00")
    currency: str = ""
    listed: bool = False


STATE_SCHEMA_VERSION = 1


def initial_state() -> ProductState:
    return ProductState()


def state_to_dict(state: ProductState) -> dict:
    return {
        "sku": state.sku,
        "name": state.name,
        "unit_price": str(state.unit_price),
        "currency": state.currency,
        "listed": state.listed,
    }


def state_from_dict(raw: dict) -> ProductState:
    return ProductState(
        sku=raw["sku"],
        name=raw["name"],
        unit_price=Decimal(raw["unit_price"]),
        currency=raw["currency"],
        listed=bool(raw["listed"]),
    )


# -- decider --------------------------------------------------------------------------------
def decide(command: Command, state: ProductState) -> list[BaseModel]:
    if not isinstance(command, SetProduct):
        raise TypeError(f"unknown command {type(command).__name__}")
    if not state.listed:
        return [
            ProductListed(sku=command.sku, name=command.name, unit_price=command.unit_price, currency=command.currency)
        ]
    events: list[BaseModel] = []
    if command.name != state.name:
        events.append(ProductRenamed(name=command.name))
    if command.unit_price != state.unit_price or command.currency != state.currency:
        events.append(
            ProductPriceChanged(
                unit_price=command.unit_price,
                currency=command.currency,
                previous_price=state.unit_price,
                previous_currency=state.currency,
            )
        )
    return events


def evolve(state: ProductState, event: BaseModel) -> ProductState:
    cls = type(event)
    if cls is ProductListed:
        return ProductState(
            sku=event.sku, name=event.name, unit_price=event.unit_price, currency=event.currency, listed=True
        )
    if cls is ProductRenamed:
        return replace(state, name=event.name)
    if cls is ProductPriceChanged:
        return replace(state, unit_price=event.unit_price, currency=event.currency)
    return state
