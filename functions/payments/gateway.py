"""The payment gateway port and a deterministic fake (no real card network on these machines).

A real gateway adapter (Stripe, Adyen …) implements ``PaymentGateway``; the service passes the
payment id as the gateway idempotency key, so a retried charge is never charged twice.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal


class GatewayError(Exception):
    """Base of the gateway's errors."""


class GatewayUnavailableError(GatewayError):
    """Transient: the gateway did not answer. The message is retried (then dead-lettered)."""


@dataclass(frozen=True, slots=True)
class ChargeResult:
    succeeded: bool
    reference: str | None = None  # the gateway's charge id (on success)
    decline_code: str | None = None  # why it failed (on failure)


class PaymentGateway(ABC):
    @abstractmethod
    def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str) -> ChargeResult:
        """Charge ``amount``; the same ``idempotency_key`` always gets the first answer."""

    @abstractmethod
    def refund(self, reference: str, amount: Decimal, *, idempotency_key: str) -> str:
        """Refund a successful charge; returns the refund id (idempotent by key)."""


class FakeGateway(PaymentGateway):
    """Test-card semantics: ``tok_visa`` succeeds, ``tok_declined`` fails with ``card_declined``,
    ``tok_unavailable`` raises GatewayUnavailableError, ``tok_slow`` succeeds after
    ``FAKE_GATEWAY_SLOW_SECONDS`` (default 20: a gateway slower than a short payment timeout),
    anything else fails with ``invalid_token``.

    Idempotent by key within the process, and its answer depends only on the token, so a charge
    retried in another container gets the same answer too.
    """

    SUCCEEDS = frozenset({"tok_visa", "tok_mastercard", "tok_slow"})

    def __init__(self) -> None:
        self._charges: dict[str, ChargeResult] = {}
        self._refunds: dict[str, str] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def charge(self, token: str, amount: Decimal, currency: str, *, idempotency_key: str) -> ChargeResult:
        if token == "tok_slow" and idempotency_key not in self._charges:
            import os
            import time

            time.sleep(float(os.environ.get("FAKE_GATEWAY_SLOW_SECONDS", "20")))  # the gateway's own latency
        with self._lock:
            self.calls += 1
            if idempotency_key in self._charges:
                return self._charges[idempotency_key]
            if token == "tok_unavailable":
                raise GatewayUnavailableError("fake gateway: unavailable (tok_unavailable)")
            if amount <= 0:
                result = ChargeResult(False, decline_code="invalid_amount")
            elif token in self.SUCCEEDS:
                digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
                result = ChargeResult(True, reference=f"ch_{digest}")
            elif token == "tok_declined":
                result = ChargeResult(False, decline_code="card_declined")
            else:
                result = ChargeResult(False, decline_code="invalid_token")
            self._charges[idempotency_key] = result
            return result

    def refund(self, reference: str, amount: Decimal, *, idempotency_key: str) -> str:
        with self._lock:
            if idempotency_key not in self._refunds:
                self._refunds[idempotency_key] = "re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
            return self._refunds[idempotency_key]

    @property
    def charges(self) -> dict[str, ChargeResult]:
        with self._lock:
            return dict(self._charges)

    @property
    def refunds(self) -> dict[str, str]:
        with self._lock:
            return dict(self._refunds)
