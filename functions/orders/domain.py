"""Order decider: the status machine of API.md, pure and fast.

CREATED -> PAID -> SHIPPED -> DELIVERED; CREATED|PAID -> CANCELLED; CREATED -> PAYMENT_FAILED;
CANCELLED (after PAID) -> REFUNDED once its payment is refunded (by the payment service for what
it captured, by staff for what staff recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kernel import (
    AlreadyExistsError,
    Currency,
    DomainError,
    EventMoney,
    InvalidTransitionError,
    Money,
    NotFoundError,
    PlainText,
)
from kernel.money import MAX_AMOUNT
from kernel.personal import Sealed, personal, personal_fields

MAX_ITEMS = 100
MAX_QUANTITY = 1000
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
MAX_UNIT_PRICE = Decimal("1000000.00")
UnitPrice = Annotated[Money, Field(gt=0, le=MAX_UNIT_PRICE, description=f"0 < unit_price <= {MAX_UNIT_PRICE}")]
# input limits: commands and bodies only, never stored payloads (those must stay readable)
Text = Annotated[PlainText, Field(min_length=1, max_length=500)]
ShortId = Annotated[PlainText, Field(min_length=1, max_length=128)]
Tracking = Annotated[PlainText, Field(min_length=1, max_length=64)]
PaymentToken = Annotated[PlainText, Field(min_length=1, max_length=128)]
# personal data (issue 12): validated here, stored only sealed (kernel.personal, docs/privacy.md)
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN, examples=["a@example.com"])]
AddressLine = Annotated[PlainText, Field(min_length=1, max_length=200)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["DE"])]
PostalCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{0,19}$", examples=["10115"])]


class OrderStatus(StrEnum):
    CREATED = "CREATED"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    REFUNDED = "REFUNDED"


class PaymentMismatchError(DomainError):
    code = "payment-amount-mismatch"
    title = "Payment amount does not match the order total"


class RefundMismatchError(DomainError):
    code = "refund-amount-mismatch"
    title = "Refund amount does not match what was paid"


class NotPaidError(DomainError):
    code = "not-paid"
    title = "The order was never paid"


class RefundedByPaymentServiceError(DomainError):
    code = "refunded-by-payment-service"
    title = "The payment service refunds the payments it captured"


class UnknownProductError(DomainError):
    code = "unknown-product"
    title = "Unknown product"


class PriceMismatchError(DomainError):
    code = "price-mismatch"
    title = "The price sent is not the catalog's price"


class CurrencyMismatchError(DomainError):
    code = "currency-mismatch"
    title = "The order's currency is not the product's"


# -- value objects --------------------------------------------------------------------------
class StoredOrderLine(BaseModel):
    """A line as stored in ``OrderCreated`` (and snapshots): no input limits, so tightening
    ``OrderLine``'s rules can never make an old event unreadable."""

    model_config = ConfigDict(frozen=True, strict=True)
    sku: str
    quantity: int
    unit_price: EventMoney


class OrderLine(StoredOrderLine):
    """A line as a client sends it: today's input limits. An ``OrderLine`` is a
    ``StoredOrderLine``, so a command's lines go into the event as they are."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True)]
    unit_price: UnitPrice


class RequestedLine(BaseModel):
    """A line as the client sends it: the price is optional (the catalog's is taken)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True)]
    unit_price: UnitPrice | None = None


class ShippingAddress(BaseModel):
    """Where an order goes (API.md): personal data, sealed before it reaches an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[PlainText, Field(min_length=1, max_length=100)]
    line1: AddressLine
    line2: AddressLine | None = None
    city: Annotated[PlainText, Field(min_length=1, max_length=100)]
    postal_code: PostalCode
    country: CountryCode


@dataclass(frozen=True, slots=True)
class CatalogPrice:
    """A product's price in force, as the catalog's published read model says."""

    unit_price: Decimal
    currency: str
    version: int


def price_lines(lines: list[RequestedLine], currency: str, catalog: dict[str, CatalogPrice]) -> list[OrderLine]:
    """Order lines priced by the catalog: the server sets prices, the client may only confirm them.

    Unknown SKU -> UnknownProductError; a product sold in another currency -> CurrencyMismatchError;
    a sent price that is not the catalog's (a stale page) -> PriceMismatchError.
    """
    priced = []
    for index, line in enumerate(lines):
        entry = catalog.get(line.sku)
        if entry is None:
            raise UnknownProductError(f"items[{index}]: {line.sku} is not in the catalog")
        if entry.currency != currency:
            raise CurrencyMismatchError(f"items[{index}]: {line.sku} is sold in {entry.currency}, not {currency}")
        if line.unit_price is not None and line.unit_price != entry.unit_price:
            raise PriceMismatchError(
                f"items[{index}]: {line.sku} costs {entry.unit_price} {entry.currency}, not {line.unit_price}"
            )
        priced.append(OrderLine(sku=line.sku, quantity=line.quantity, unit_price=entry.unit_price))
    return priced


# -- commands -------------------------------------------------------------------------------
class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateOrder(_Command):
    kind: Literal["create"] = "create"
    order_id: str
    customer_id: str
    items: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_ITEMS)]
    currency: Currency
    payment_intent: ShortId | None = None  # the encrypted, expiring token (integration.payment_intents)
    # personal data arrives sealed (the HTTP adapter seals it under the customer's key)
    email: Sealed | None = None
    shipping_address: Sealed | None = None

    @model_validator(mode="after")
    def _total_fits(self) -> CreateOrder:
        # 100 lines x 1000 units x 1,000,000.00 would overflow what an amount may carry: say so
        # here (a validation error) instead of failing while building the OrderCreated event.
        if order_total(self.items) > MAX_AMOUNT:
            raise ValueError(f"order total exceeds the maximum of {MAX_AMOUNT}")
        return self


PaymentBy = Literal["staff", "payments"]


class RecordPayment(_Command):
    kind: Literal["pay"] = "pay"
    payment_id: ShortId
    amount: Money
    by: PaymentBy = "staff"


class RecordRefund(_Command):
    """A cancelled order's payment was refunded: by staff (hand-recorded payments) or by the payment
    service (the payments it captured)."""

    kind: Literal["refund"] = "refund"
    refund_id: ShortId
    amount: Money
    by: PaymentBy = "staff"
    payment_id: ShortId | None = None  # the payment service names the payment it refunded


class FailPayment(_Command):
    kind: Literal["fail_payment"] = "fail_payment"
    payment_id: ShortId
    reason: Text


class ShipOrder(_Command):
    kind: Literal["ship"] = "ship"
    tracking: Tracking


class DeliverOrder(_Command):
    kind: Literal["deliver"] = "deliver"


class CancelOrder(_Command):
    kind: Literal["cancel"] = "cancel"
    reason: Text


Command = CreateOrder | RecordPayment | FailPayment | ShipOrder | DeliverOrder | CancelOrder | RecordRefund


# -- events ---------------------------------------------------------------------------------
class _Event(BaseModel):
    """Stored payloads: no input limits (those are on the commands), amounts are ``EventMoney``.
    Strict: a stored field has the JSON type its schema says (no "1" for 1), so the committed
    schema in schemas/events.json is exactly what decodes."""

    model_config = ConfigDict(frozen=True, strict=True)


class OrderCreated(_Event):
    order_id: str
    customer_id: str
    items: list[StoredOrderLine]
    currency: str
    total: EventMoney
    payment_intent: str | None = None  # (events before issue 15 carried the token: ignored on read)
    # v2 (issue 12): personal data, sealed to the customer's public key (kernel.personal)
    email: Sealed | None = personal()
    shipping_address: Sealed | None = personal()


class PersonalDataErased(_Event):
    """A data subject's key was destroyed (stream ``erasure-<subject>``): when, by whom, which key.
    Carries no personal data; the erased values themselves stay sealed and unreadable."""

    subject: str
    erased_at: str
    erased_by: str
    erased_key_id: str | None = None


class PaymentProcessed(_Event):
    payment_id: str
    amount: EventMoney
    by: str | None = None  # "staff" | "payments" (None: recorded before this was kept)


class PaymentRefunded(_Event):
    refund_id: str
    amount: EventMoney
    by: str


class PaymentFailed(_Event):
    payment_id: str
    reason: str


class OrderShipped(_Event):
    tracking: str


class OrderDelivered(_Event):
    pass


class OrderCancelled(_Event):
    reason: str


EVENT_TYPES: tuple[type[BaseModel], ...] = (
    OrderCreated,
    PaymentProcessed,
    PaymentFailed,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    PaymentRefunded,
    PersonalDataErased,
)
SCHEMA_VERSIONS: dict[type[BaseModel], int] = {**dict.fromkeys(EVENT_TYPES, 1), OrderCreated: 2}
# v1 -> v2 adds the optional personal fields: an old payload is a v2 payload without them
UPCASTERS = {("OrderCreated", 1): dict}
PERSONAL_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    cls: fields for cls in EVENT_TYPES if (fields := personal_fields(cls))
}


# -- state ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderState:
    order_id: str = ""
    customer_id: str = ""
    status: OrderStatus | None = None  # None: the order does not exist
    currency: str = ""
    items: tuple[StoredOrderLine, ...] = ()
    total: Decimal = Decimal("0.00")
    tracking: str | None = None
    payment_id: str | None = None
    payment_intent: str | None = None
    reason: str | None = None  # cancellation or payment failure reason
    paid_amount: Decimal | None = None
    paid_by: str | None = None
    refund_id: str | None = None
    email: Sealed | None = None  # sealed: snapshots never hold the plaintext
    shipping_address: Sealed | None = None


# 2: no payment token in the state any more (snapshots of version 1 may hold one: ignored)
STATE_SCHEMA_VERSION = 2


def initial_state() -> OrderState:
    return OrderState()


def state_to_dict(state: OrderState) -> dict:
    return {
        "order_id": state.order_id,
        "customer_id": state.customer_id,
        "status": state.status.value if state.status else None,
        "currency": state.currency,
        "items": [line.model_dump(mode="json") for line in state.items],
        "total": str(state.total),
        "tracking": state.tracking,
        "payment_id": state.payment_id,
        "payment_intent": state.payment_intent,
        "reason": state.reason,
        "paid_amount": None if state.paid_amount is None else str(state.paid_amount),
        "paid_by": state.paid_by,
        "refund_id": state.refund_id,
        "email": None if state.email is None else state.email.model_dump(),
        "shipping_address": None if state.shipping_address is None else state.shipping_address.model_dump(),
    }


def state_from_dict(raw: dict) -> OrderState:
    return OrderState(
        order_id=raw["order_id"],
        customer_id=raw["customer_id"],
        status=OrderStatus(raw["status"]) if raw.get("status") else None,
        currency=raw["currency"],
        items=tuple(StoredOrderLine.model_validate(line) for line in raw["items"]),
        total=Decimal(raw["total"]),
        tracking=raw.get("tracking"),
        payment_id=raw.get("payment_id"),
        payment_intent=raw.get("payment_intent"),
        reason=raw.get("reason"),
        paid_amount=Decimal(raw["paid_amount"]) if raw.get("paid_amount") is not None else None,
        paid_by=raw.get("paid_by"),
        refund_id=raw.get("refund_id"),
        email=Sealed.model_validate(raw["email"]) if raw.get("email") else None,
        shipping_address=Sealed.model_validate(raw["shipping_address"]) if raw.get("shipping_address") else None,
    )


def order_total(items: list[StoredOrderLine]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in items), Decimal("0.00")).quantize(Decimal("0.01"))


# -- decider --------------------------------------------------------------------------------
def _require(state: OrderState, allowed: tuple[OrderStatus, ...], action: str) -> None:
    if state.status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise InvalidTransitionError(f"cannot {action} an order that is {state.status.value}; it must be {wanted}")


def decide(command: Command, state: OrderState) -> list[BaseModel]:
    if isinstance(command, CreateOrder):
        if state.status is not None:
            raise AlreadyExistsError(f"order {command.order_id} already exists")
        return [
            OrderCreated(
                order_id=command.order_id,
                customer_id=command.customer_id,
                items=list(command.items),
                currency=command.currency,
                total=order_total(command.items),
                payment_intent=command.payment_intent,
                email=command.email,
                shipping_address=command.shipping_address,
            )
        ]
    if state.status is None:
        raise NotFoundError("order not found")
    if isinstance(command, RecordPayment):
        if state.status is OrderStatus.PAID and state.payment_id == command.payment_id:
            return []  # the same payment recorded twice: already done
        _require(state, (OrderStatus.CREATED,), "pay")
        if command.amount != state.total:
            raise PaymentMismatchError(f"payment of {command.amount} does not equal the order total {state.total}")
        return [PaymentProcessed(payment_id=command.payment_id, amount=command.amount, by=command.by)]
    if isinstance(command, FailPayment):
        if state.status is OrderStatus.PAYMENT_FAILED and state.payment_id == command.payment_id:
            return []
        _require(state, (OrderStatus.CREATED,), "fail the payment of")
        return [PaymentFailed(payment_id=command.payment_id, reason=command.reason)]
    if isinstance(command, ShipOrder):
        _require(state, (OrderStatus.PAID,), "ship")
        return [OrderShipped(tracking=command.tracking)]
    if isinstance(command, DeliverOrder):
        _require(state, (OrderStatus.SHIPPED,), "deliver")
        return [OrderDelivered()]
    if isinstance(command, CancelOrder):
        _require(state, (OrderStatus.CREATED, OrderStatus.PAID), "cancel")
        return [OrderCancelled(reason=command.reason)]
    if isinstance(command, RecordRefund):
        return _refund(command, state)
    raise TypeError(f"unknown command {type(command).__name__}")


def evolve(state: OrderState, event: BaseModel) -> OrderState:
    cls = type(event)
    if cls is OrderCreated:
        return OrderState(
            order_id=event.order_id,
            customer_id=event.customer_id,
            status=OrderStatus.CREATED,
            currency=event.currency,
            items=tuple(line if type(line) is StoredOrderLine else _stored_line(line) for line in event.items),
            total=event.total,
            payment_intent=event.payment_intent,
            email=event.email,
            shipping_address=event.shipping_address,
        )
    if cls is PaymentProcessed:
        return _with(state, status=OrderStatus.PAID, payment_id=event.payment_id, paid_amount=event.amount,
                     paid_by=event.by)
    if cls is PaymentRefunded:
        return _with(state, status=OrderStatus.REFUNDED, refund_id=event.refund_id)
    if cls is PaymentFailed:
        return _with(state, status=OrderStatus.PAYMENT_FAILED, payment_id=event.payment_id, reason=event.reason)
    if cls is OrderShipped:
        return _with(state, status=OrderStatus.SHIPPED, tracking=event.tracking)
    if cls is OrderDelivered:
        return _with(state, status=OrderStatus.DELIVERED)
    if cls is OrderCancelled:
        return _with(state, status=OrderStatus.CANCELLED, reason=event.reason)
    return state


def _refund(command: RecordRefund, state: OrderState) -> list[BaseModel]:
    if state.status is OrderStatus.REFUNDED and state.refund_id == command.refund_id:
        return []  # the same refund recorded twice
    if state.paid_amount is None:
        raise NotPaidError(f"order {state.order_id} was never paid: there is nothing to refund")
    if command.payment_id is not None and command.payment_id != state.payment_id:
        raise InvalidTransitionError(f"payment {command.payment_id} is not the payment this order took")
    _require(state, (OrderStatus.CANCELLED,), "refund")
    if command.by == "staff" and state.paid_by == "payments":
        raise RefundedByPaymentServiceError("the payment service refunds the payment it captured by itself")
    if command.amount != state.paid_amount:
        raise RefundMismatchError(f"refund of {command.amount} does not equal the {state.paid_amount} paid")
    return [PaymentRefunded(refund_id=command.refund_id, amount=command.amount, by=command.by)]


def _stored_line(line: StoredOrderLine) -> StoredOrderLine:
    """A command's ``OrderLine`` as the state holds it after a replay (equal states either way)."""
    return StoredOrderLine.model_construct(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)


def _with(state: OrderState, **changes) -> OrderState:
    from dataclasses import replace

    return replace(state, **changes)
