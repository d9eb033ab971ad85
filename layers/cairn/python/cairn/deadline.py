"""The current invocation's deadline, for every remote call made during it (``cairn.aws``).

Its own module, free of boto3, so the HTTP service can set it without importing the SDK at
cold start. A ContextVar: each thread / task sees the deadline of the invocation it serves.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["DEADLINE_RESERVE_SECONDS", "deadline", "deadline_of", "remaining_seconds"]

# Kept back from the Lambda's remaining time to answer (problem+json, logs, metrics flush).
DEADLINE_RESERVE_SECONDS = 0.5

_deadline: ContextVar[float | None] = ContextVar("cairn_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Calls made inside must finish within ``seconds`` from now (None: no deadline)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_of(context: Any, reserve: float = DEADLINE_RESERVE_SECONDS) -> contextlib.AbstractContextManager[None]:
    """The deadline of a Lambda invocation: its remaining time minus ``reserve`` to answer."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return deadline(None)
    return deadline(max(remaining() / 1000 - reserve, 0.0))


def remaining_seconds() -> float | None:
    """Seconds left before the current deadline (None: no deadline set)."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()
