"""Which key-service failures are worth a retry (→ 503 + Retry-After): cairn.retry's one classifier,
whose codes include KMS's (throttles, KMSInternalException, DependencyTimeoutException, ...)."""

from __future__ import annotations

from cairn.retry import TRANSIENT_CODES, is_transient

__all__ = ["TRANSIENT_CODES", "is_transient"]
