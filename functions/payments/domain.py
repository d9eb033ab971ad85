"""Payment decider: one payment per order, charged once, settled once, refunded at most once.

REQUESTED -> SUCCEEDED | FAILED; SUCCEEDED -> REFUNDED. The payment service learns from the
order's integration events that the order no longer takes this payment (cancelled, failed by the
timeout, paid by staff): ``OrderClosed``. A captured payment of a closed order is refunded; a
payment requested for a closed order is never charged. ``OrderClosed`` may come first (reordered
delivery): it is then a tombstone the later request finds.
Repeating a command that is already done decides nothing, so redelivered messages are harmless.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kernel import (
    AlreadyExistsError,
    Currency,
    DomainError,
    EventMoney,
    InvalidTransitionError,
    NotFoundError,
    PositiveMoney,
)

STREAM_PREFIX = "payment-"
# Fixed forever: payment ids are derived from order ids with it (redelivery -> same payment).
PAYMENT_NAMESPACE = uuid.UUID("0b7f3a52-9c4e-5d61-8a2f-7e3c1b9d4a06")

Text = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[str, Field(min_length=1, max_length=128)]


def payment_id_for(order_id: str) -> str:
    """The payment of an order: deterministic, so a redelivered OrderCreated maps to the same stream."""
    return str(uuid.uuid5(PAYMENT_NAMESPACE, order_id))


def stream_id_for(payment_id: str) -> str:
    return f"{STREAM_PREFIX}{payment_id}"


class PaymentStatus(StrEnum):
    REQUESTED = "REQUESTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class GatewayContradictionError(DomainError):
    """A settlement that contradicts the recorded one (the gateway changed its answer)."""

    code = "payment-settlement-conflict"
    title = "Payment already settled differently"


# -- commands -------------------------------------------------------------------------------
class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RequestPayment(_Command):
    kind: Literal["request"] = "request"
    payment_id: Id
    order_id: Id
    customer_id: Id
    amount: PositiveMoney
    currency: Currency
    intent_id: Id | None = None  # the order service's payment intent holding the encrypted token


class CloseOrder(_Command):
    """The order no longer takes this payment (cancelled, payment failed or timed out, paid otherwise)."""

    kind: Literal["close"] = "close"
    payment_id: Id
    order_id: Id
    reason: Text


class SettlePayment(_Command):
    """The outcome of the charge: succeeded (with the gateway's reference) or failed (with why)."""

    kind: Literal["settle"] = "settle"
    succeeded: bool
    gateway_reference: Id | None = None
    reason: Text | None = None
    charged: bool = True  # False: failed without calling the gateway (the order was not payable)


class RefundPayment(_Command):
    kind: Literal["refund"] = "refund"
    reason: Text
    gateway_reference: Id  # the charge refunded
    refund_id: Id | None = None  # the gateway's refund id


Command = RequestPayment | SettlePayment | RefundPayment | CloseOrder


# -- events ---------------------------------------------------------------------------------
class _Event(BaseModel):
    """Stored payloads: amounts are ``EventMoney`` (Money's values, decoded in pydantic-core)."""

    model_config = ConfigDict(frozen=True)


class PaymentRequested(_Event):
    payment_id: str
    order_id: str
    customer_id: str
    amount: EventMoney
    currency: str
    intent_id: str | None = None


class OrderClosed(_Event):
    payment_id: str
    order_id: str
    reason: str


class PaymentSucceeded(_Event):
    payment_id: str
    order_id: str
    amount: EventMoney
    gateway_reference: str


class PaymentFailed(_Event):
    payment_id: str
    order_id: str
    reason: str
    charged: bool = True


class PaymentRefunded(_Event):
    payment_id: str
    order_id: str
    amount: EventMoney
    reason: str
    gateway_reference: str
    refund_id: str | None = None


EVENT_TYPES: tuple[type[BaseModel], ...] = (
    PaymentRequested,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
    OrderClosed,
)
SCHEMA_VERSIONS: dict[type[BaseModel], int] = dict.fromkeys(EVENT_TYPES, 1)


# -- state ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PaymentState:
    payment_id: str = ""
    order_id: str = ""
    customer_id: str = ""
    status: PaymentStatus | None = None  # None: never requested
    amount: Decimal = Decimal("0.00")
    currency: str = ""
    gateway_reference: str | None = None
    reason: str | None = None
    charged: bool = False
    intent_id: str | None = None
    order_closed: bool = False
    refund_reference: str | None = None


STATE_SCHEMA_VERSION = 2


def initial_state() -> PaymentState:
    return PaymentState()


def state_to_dict(state: PaymentState) -> dict:
    return {
        "payment_id": state.payment_id,
        "order_id": state.order_id,
        "customer_id": state.customer_id,
        "status": state.status.value if state.status else None,
        "amount": str(state.amount),
        "currency": state.currency,
        "gateway_reference": state.gateway_reference,
        "reason": state.reason,
        "charged": state.charged,
        "intent_id": state.intent_id,
        "order_closed": state.order_closed,
        "refund_reference": state.refund_reference,
    }


def state_from_dict(raw: dict) -> PaymentState:
    return PaymentState(
        payment_id=raw["payment_id"],
        order_id=raw["order_id"],
        customer_id=raw.get("customer_id", ""),
        status=PaymentStatus(raw["status"]) if raw.get("status") else None,
        amount=Decimal(raw["amount"]),
        currency=raw["currency"],
        gateway_reference=raw.get("gateway_reference"),
        reason=raw.get("reason"),
        charged=bool(raw.get("charged", False)),
        intent_id=raw.get("intent_id"),
        order_closed=bool(raw.get("order_closed", False)),
        refund_reference=raw.get("refund_reference"),
    )


# -- decider --------------------------------------------------------------------------------
def decide(command: Command, state: PaymentState) -> list[BaseModel]:
    if isinstance(command, CloseOrder):
        if state.order_closed:
            return []
        return [OrderClosed(payment_id=command.payment_id, order_id=command.order_id, reason=command.reason)]
    if isinstance(command, RequestPayment):
        if state.status is not None:
            if state.order_id == command.order_id and state.amount == command.amount:
                return []  # the same request again (redelivered OrderCreated)
            raise AlreadyExistsError(f"payment {command.payment_id} already exists for order {state.order_id}")
        return [
            PaymentRequested(
                payment_id=command.payment_id,
                order_id=command.order_id,
                customer_id=command.customer_id,
                amount=command.amount,
                currency=command.currency,
                intent_id=command.intent_id,
            )
        ]
    if state.status is None:
        raise NotFoundError("payment not found")
    if isinstance(command, SettlePayment):
        if state.status is PaymentStatus.REQUESTED:
            if command.succeeded:
                if not command.gateway_reference:
                    raise ValueError("a successful settlement needs the gateway reference")
                return [
                    PaymentSucceeded(
                        payment_id=state.payment_id,
                        order_id=state.order_id,
                        amount=state.amount,
                        gateway_reference=command.gateway_reference,
                    )
                ]
            return [
                PaymentFailed(
                    payment_id=state.payment_id,
                    order_id=state.order_id,
                    reason=command.reason or "declined",
                    charged=command.charged,
                )
            ]
        already = PaymentStatus.SUCCEEDED if command.succeeded else PaymentStatus.FAILED
        if state.status is already or (command.succeeded and state.status is PaymentStatus.REFUNDED):
            return []  # settled the same way before
        raise GatewayContradictionError(
            f"payment {state.payment_id} is {state.status.value}; cannot settle it as "
            f"{'succeeded' if command.succeeded else 'failed'}"
        )
    if isinstance(command, RefundPayment):
        if state.status is PaymentStatus.REFUNDED:
            return []
        if state.status is not PaymentStatus.SUCCEEDED:
            raise InvalidTransitionError(f"cannot refund a payment that is {state.status.value}")
        return [
            PaymentRefunded(
                payment_id=state.payment_id,
                order_id=state.order_id,
                amount=state.amount,
                reason=command.reason,
                gateway_reference=command.gateway_reference,
                refund_id=command.refund_id,
            )
        ]
    raise TypeError(f"unknown command {type(command).__name__}")


def evolve(state: PaymentState, event: BaseModel) -> PaymentState:
    cls = type(event)
    if cls is PaymentRequested:
        return replace(
            state,
            payment_id=event.payment_id,
            order_id=event.order_id,
            customer_id=event.customer_id,
            status=PaymentStatus.REQUESTED,
            amount=event.amount,
            currency=event.currency,
            intent_id=event.intent_id,
        )
    if cls is OrderClosed:
        return replace(
            state, payment_id=state.payment_id or event.payment_id, order_id=state.order_id or event.order_id,
            order_closed=True,
        )
    if cls is PaymentSucceeded:
        return replace(state, status=PaymentStatus.SUCCEEDED, gateway_reference=event.gateway_reference, charged=True)
    if cls is PaymentFailed:
        return replace(state, status=PaymentStatus.FAILED, reason=event.reason, charged=event.charged)
    if cls is PaymentRefunded:
        return replace(state, status=PaymentStatus.REFUNDED, reason=event.reason,
                       refund_reference=event.refund_id)
    return state
