"""What is worth retrying, and how long to wait: one answer for every retry in Cairn.

``is_transient`` decides for the HTTP layer (503 + Retry-After instead of 500), the projection
engine and the snapshotter (retry the batch instead of parking or failing it). ``full_jitter``
is the wait of every in-process retry loop (command runtime, projection engine, publisher):
"full jitter" exponential backoff, a uniform draw below a doubling, capped ceiling.
Standard-library only: importing this never pulls in botocore.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

# AWS error codes (ClientError ``Error.Code``) that mean "busy or briefly broken, try again"
TRANSIENT_CODES = frozenset(
    {
        # DynamoDB
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",  # a single-item write met an item held by a transaction
        # S3 (snapshots), SQS (parking), EventBridge, generic throttles
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "RequestThrottled",
        "Throttling",
        "TooManyRequestsException",
        # KMS (personal-data keys)
        "KMSInternalException",
        "DependencyTimeoutException",
        "KeyUnavailableException",
        "LimitExceededException",
    }
)
# reasons of a TransactionCanceledException that are not a failed condition (DynamoDB's list)
TRANSIENT_CANCELLATION_REASONS = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
# exception classes (by name, anywhere in the MRO: botocore's and Cairn's own) that are transient
TRANSIENT_EXCEPTIONS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "RetriesExhaustedError",  # cairn.commands: writers kept winning the race
        "DeadlineExceededError",  # cairn.aws: no time left in the invocation for another attempt
        "TransactionConflictError",  # cairn.store: DynamoDB's TransactionConflict on an unmoved stream
        "TransientProjectionError",  # cairn.projections
        "EventStoreError",  # cairn.store: a transaction cancelled for a reason other than a condition
        "KeyServiceUnavailableError",  # cairn.privacy: KMS or the keys table throttled/unreachable
        "ArchiveUnavailableError",  # cairn.archive: S3 slow or down while reading an archived range
    }
)
# ... except these, which say something about the request or the data: retrying cannot help
PERMANENT_EXCEPTIONS = frozenset(
    {"EventTooLargeError", "TooManyEventsError", "CorruptEventError", "IdempotencyKeyReuseError"}
)

_MAX_CAUSES = 5


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = (response.get("Error") or {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def cancellation_reasons(exc: BaseException) -> list[str]:
    """The per-item reason codes of a ``TransactionCanceledException`` ([] for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return []
    return [str(r.get("Code", "None")) for r in (response.get("CancellationReasons") or [])]


def is_transient(exc: BaseException) -> bool:
    """Worth retrying as is: throttling, service errors, network trouble, lost races. Also when
    wrapped: adapters re-raise AWS errors as their own with the original as ``__cause__``."""
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if current is None:
            return False
        if _transient_one(current):
            return True
        current = current.__cause__
    return False


def _transient_one(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & PERMANENT_EXCEPTIONS:
        return False
    if names & TRANSIENT_EXCEPTIONS:
        return True
    code = error_code(exc)
    if code in TRANSIENT_CODES:
        return True
    if code == "TransactionCanceledException":
        return any(reason in TRANSIENT_CANCELLATION_REASONS for reason in cancellation_reasons(exc))
    return False


def full_jitter(
    attempt: int, base: float, cap: float, draw: Callable[[float, float], float] = random.uniform
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): uniform in [0, min(cap, base·2^(attempt-1))]."""
    return draw(0.0, min(cap, base * 2 ** max(attempt - 1, 0)))


__all__ = [
    "PERMANENT_EXCEPTIONS",
    "TRANSIENT_CANCELLATION_REASONS",
    "TRANSIENT_CODES",
    "TRANSIENT_EXCEPTIONS",
    "cancellation_reasons",
    "error_code",
    "full_jitter",
    "is_transient",
]
