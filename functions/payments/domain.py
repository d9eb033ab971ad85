"""Payment decider: one payment per order, charged once, settled once, refunded at most once.

REQUESTED -> SUCCEEDED | FAILED; SUCCEEDED -> REFUNDED (compensation when the order can no
longer take the payment, e.g. it was cancelled while the charge was in flight).
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
    gateway_reference: Id


Command = RequestPayment | SettlePayment | RefundPayment


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


EVENT_TYPES: tuple[type[BaseModel], ...] = (PaymentRequested, PaymentSucceeded, PaymentFailed, PaymentRefunded)
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


STATE_SCHEMA_VERSION = 1


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
    )


# -- decider --------------------------------------------------------------------------------
def decide(command: Command, state: PaymentState) -> list[BaseModel]:
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
            )
        ]
    raise TypeError(f"unknown command {type(command).__name__}")


def evolve(state: PaymentState, event: BaseModel) -> PaymentState:
    cls = type(event)
    if cls is PaymentRequested:
        return PaymentState(
            payment_id=event.payment_id,
            order_id=event.order_id,
            customer_id=event.customer_id,
            status=PaymentStatus.REQUESTED,
            amount=event.amount,
            currency=event.currency,
        )
    if cls is PaymentSucceeded:
        return replace(state, status=PaymentStatus.SUCCEEDED, gateway_reference=event.gateway_reference, charged=True)
    if cls is PaymentFailed:
        return replace(state, status=PaymentStatus.FAILED, reason=event.reason, charged=event.charged)
    if cls is PaymentRefunded:
        return replace(state, status=PaymentStatus.REFUNDED, reason=event.reason)
    return state
