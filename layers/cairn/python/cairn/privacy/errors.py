"""Which key-service failures are worth a retry (→ 503 + Retry-After), which are not."""

from __future__ import annotations

__all__ = ["TRANSIENT_CODES", "is_transient"]

TRANSIENT_CODES = frozenset(
    {
        # KMS
        "KMSInternalException",
        "DependencyTimeoutException",
        "KeyUnavailableException",
        "ThrottlingException",
        "LimitExceededException",
        # DynamoDB (keys table)
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
_TRANSIENT_EXCEPTIONS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "DeadlineExceededError",
    }
)


def is_transient(exc: BaseException) -> bool:
    if {cls.__name__ for cls in type(exc).__mro__} & _TRANSIENT_EXCEPTIONS:
        return True
    response = getattr(exc, "response", None)
    code = (response.get("Error") or {}).get("Code", "") if isinstance(response, dict) else ""
    return code in TRANSIENT_CODES
