"""OrdersCommands Lambda: POST /orders and the order's payment/shipment/delivery/cancellation.

Thin: the body is validated by Powertools against the models below (built from the domain's
own types), turned into a domain command and run through the runtime by ``cairn.http.execute``.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ConfigDict, Field

from cairn.http import CommandRequest, HttpService, IdempotencyKey, IfMatch, execute, not_found
from kernel import Currency, Money, money_str
from orders import domain

service = HttpService("orders")
app = service.app

ORDER_ID = re.compile(r"^order-[A-Za-z0-9-]{1,64}$")
OrderId = Annotated[str, Path(description="order id, `order-<uuid>`", max_length=100)]
MONEY_PATTERN = r"^-?\d+\.\d{2}$"
PERSONAL = domain.PERSONAL_FIELDS[domain.OrderCreated]


# -- bodies -----------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateOrderBody(_Body):
    items: Annotated[list[domain.RequestedLine], Field(min_length=1, max_length=domain.MAX_ITEMS)]
    currency: Currency
    payment_token: domain.PaymentToken | None = None
    email: domain.Email | None = None
    shipping_address: domain.ShippingAddress | None = None


class PaymentBody(_Body):
    payment_id: domain.ShortId
    amount: Money


class ShipmentBody(_Body):
    tracking: domain.Tracking


class DeliveryBody(_Body):
    pass


class CancellationBody(_Body):
    reason: domain.Text


class RefundBody(_Body):
    refund_id: domain.ShortId
    amount: Money


class OrderCommandResult(BaseModel):
    order_id: str
    version: int
    status: domain.OrderStatus
    total: Annotated[str, Field(pattern=MONEY_PATTERN, examples=["19.99"])]
    currency: str
    pending: list[str] = Field(default_factory=list, description='["payment"] until the payment outcome is applied')


# -- helpers ----------------------------------------------------------------------------------
def _answer(state: domain.OrderState, version: int) -> dict:
    return {
        "order_id": state.order_id,
        "version": version,
        "status": state.status.value if state.status else None,
        "total": money_str(state.total),
        "currency": state.currency,
        # a token starts the payment service's work: the client waits for PAID / PAYMENT_FAILED
        "pending": ["payment"] if state.status is domain.OrderStatus.CREATED and state.payment_intent else [],
    }


def _stream(order_id: str) -> str:
    if not ORDER_ID.match(order_id):
        raise not_found(f"{order_id} not found")
    return order_id


def _runtime():
    from orders.app import runtime

    return runtime()


def _existing_order_command(
    route: str, order_id: str, command: object, body: BaseModel, if_match: str | None, key: str | None, *, owner_may: bool
) -> Response:
    principal = service.principal
    return execute(
        service,
        _runtime(),
        _stream(order_id),
        command,
        CommandRequest(route, body.model_dump(mode="json"), {"id": order_id}, if_match, key),
        answer=_answer,
        # staff act on any order; an owner only where API.md allows it; anyone else gets 404
        authorize=lambda state: principal.is_staff or (owner_may and state.customer_id == principal.sub),
    )


def _priced(body: CreateOrderBody) -> list[domain.OrderLine]:
    """The lines priced by the catalog (409 unknown-product / price-mismatch / currency-mismatch)."""
    from cairn.http import domain_problem
    from orders.app import price_list

    try:
        return domain.price_lines(body.items, body.currency, price_list().prices(line.sku for line in body.items))
    except domain.DomainError as exc:
        service.count("CommandRejected")
        raise domain_problem(exc) from None


def _sealed_personal_data(body: CreateOrderBody, order_id: str) -> dict[str, Any]:
    """``email``/``shipping_address`` sealed to the caller's public key (the plaintext never
    reaches the event, the bus or a snapshot; cold: one keys-table GetItem, no KMS call unless it
    is the caller's first data). KMS or the keys table down -> 503 + Retry-After, before anything
    is written."""
    plain = body.model_dump(mode="json", include=set(PERSONAL), exclude_none=True)
    if not plain:
        return {}
    from kernel.personal import Sealed
    from orders.app import personal_data

    sealed = personal_data().seal(plain, subject=service.principal.sub, stream_id=order_id, fields=PERSONAL)
    return {field: Sealed.model_validate(sealed[field]) for field in plain}


COMMAND_PROBLEMS = {
    409: "A business rule said no (type …/invalid-transition, …/payment-amount-mismatch)",
    412: "If-Match does not match the stream's version (body has current_version)",
}


# -- routes -----------------------------------------------------------------------------------
@service.post(
    "/orders",
    status_code=201,
    summary="Place an order",
    description="The server assigns `order_id`; `Location` points at the new order. Every line is priced "
    "from the catalog (`unit_price` optional: when sent it must equal the catalog's).",
    tags=["orders"],
    problems={409: "…/unknown-product, …/price-mismatch, …/currency-mismatch: prices come from the catalog"},
)
def create_order(body: CreateOrderBody, idempotency_key: IdempotencyKey = None) -> Response[OrderCommandResult]:
    order_id = f"order-{uuid.uuid4()}"
    items = _priced(body)
    sealed = _sealed_personal_data(body, order_id)
    intent = None
    if body.payment_token is not None:
        from orders.app import payment_intents

        # the token goes encrypted into a short-lived payment intent; the event names only the intent
        intent = payment_intents().create(order_id, body.payment_token)
    command = domain.CreateOrder(
        order_id=order_id,
        customer_id=service.principal.sub,
        items=items,
        currency=body.currency,
        payment_intent=intent,
        **sealed,
    )
    return execute(
        service,
        _runtime(),
        order_id,
        command,
        CommandRequest("POST /orders", body.model_dump(mode="json"), {}, None, idempotency_key),
        answer=_answer,
        status=201,
        headers=lambda answer: {"Location": f"/orders/{answer['order_id']}"},
    )


@service.post(
    "/orders/<id>/payment",
    staff=True,
    summary="Record a payment (staff); the amount must equal the order total",
    tags=["orders"],
    problems=COMMAND_PROBLEMS,
)
def record_payment(
    id: OrderId, body: PaymentBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[OrderCommandResult]:
    command = domain.RecordPayment(payment_id=body.payment_id, amount=body.amount)
    return _existing_order_command(
        "POST /orders/{id}/payment", id, command, body, if_match, idempotency_key, owner_may=False
    )


@service.post(
    "/orders/<id>/shipment",
    staff=True,
    summary="Ship a paid order (staff)",
    tags=["orders"],
    problems=COMMAND_PROBLEMS,
)
def ship_order(
    id: OrderId, body: ShipmentBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[OrderCommandResult]:
    command = domain.ShipOrder(tracking=body.tracking)
    return _existing_order_command(
        "POST /orders/{id}/shipment", id, command, body, if_match, idempotency_key, owner_may=False
    )


@service.post(
    "/orders/<id>/delivery",
    staff=True,
    summary="Mark a shipped order delivered (staff)",
    tags=["orders"],
    problems=COMMAND_PROBLEMS,
)
def deliver_order(
    id: OrderId, body: DeliveryBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[OrderCommandResult]:
    return _existing_order_command(
        "POST /orders/{id}/delivery", id, domain.DeliverOrder(), body, if_match, idempotency_key, owner_may=False
    )


@service.post(
    "/orders/<id>/cancellation",
    summary="Cancel an order before it ships (owner or staff)",
    tags=["orders"],
    problems=COMMAND_PROBLEMS,
)
def cancel_order(
    id: OrderId, body: CancellationBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[OrderCommandResult]:
    command = domain.CancelOrder(reason=body.reason)
    return _existing_order_command(
        "POST /orders/{id}/cancellation", id, command, body, if_match, idempotency_key, owner_may=True
    )


@service.post(
    "/orders/<id>/refund",
    staff=True,
    summary="Record the refund of a payment staff recorded by hand (staff)",
    description="Only for a CANCELLED order that had been PAID; `amount` must equal what was paid. "
    "Payments captured by the payment service are refunded by it (the order becomes REFUNDED by itself).",
    tags=["orders"],
    problems={
        409: "…/not-paid, …/refund-amount-mismatch, …/refunded-by-payment-service, …/invalid-transition",
        412: COMMAND_PROBLEMS[412],
    },
)
def record_refund(
    id: OrderId, body: RefundBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[OrderCommandResult]:
    command = domain.RecordRefund(refund_id=body.refund_id, amount=body.amount, by="staff")
    return _existing_order_command(
        "POST /orders/{id}/refund", id, command, body, if_match, idempotency_key, owner_may=False
    )


# -- personal data (issue 12): erasure by crypto-shredding ----------------------------------------
Subject = Annotated[str, Path(description="the user's `sub`", pattern=r"^[A-Za-z0-9._@+-]{1,128}$")]


class ErasureResult(BaseModel):
    subject: str
    erased: bool
    erased_at: str


def _erase(subject: str) -> Response:
    from orders.app import personal_data
    from orders.erasure import record_erasure

    tombstone = personal_data().erase(subject, erased_by=service.principal.sub)
    record_erasure(_runtime().store, tombstone, correlation_id=service.correlation_id or None)
    service.count("PersonalDataErased")
    service.logger.info("personal data erased", extra={"subject": subject, "erased_at": tombstone.erased_at})
    return Response(
        status_code=200,
        content_type="application/json",
        body={"subject": subject, "erased": True, "erased_at": tombstone.erased_at},
    )


ERASURE_DESCRIPTION = (
    "Destroys the user's data key: `email` and `shipping_address` of every order read `null` with "
    '`"personal_data":"erased"` from then on (orders, totals and history stay). Idempotent: a repeat, '
    "or a user without personal data, answers the same. 503 + Retry-After if the key service is down "
    "(nothing was erased: retry)."
)


@service.route(
    "DELETE",
    "/users/me/personal-data",
    summary="Erase my personal data (crypto-shredding)",
    description=ERASURE_DESCRIPTION,
    tags=["personal data"],
)
def erase_my_personal_data() -> Response[ErasureResult]:
    return _erase(service.principal.sub)


@service.route(
    "DELETE",
    "/users/<sub>/personal-data",
    staff=True,
    summary="Erase a user's personal data (staff)",
    description=ERASURE_DESCRIPTION,
    tags=["personal data"],
)
def erase_personal_data(sub: Subject) -> Response[ErasureResult]:
    return _erase(sub)


handler = service.handler
