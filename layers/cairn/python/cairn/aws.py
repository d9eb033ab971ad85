"""boto3 clients for every composition root, built one way.

Why one factory: every Lambda, tool and test must agree on retries, timeouts and on how a local
endpoint (moto) is reached. botocore >= 1.40 sends some calls to account-based endpoints that
moto does not route, so with a local endpoint the account-id endpoint mode is forced off.

Time budgets: a call's worst case is ``attempts x (connect + read timeout) + backoff``, which can
exceed a function's timeout (S3 against an endpoint that accepts and never answers took 15 s with
the old 3 x 5 s). So every client built here also obeys the invocation's *deadline*
(``with deadline_of(context):``, set by the HTTP service from ``get_remaining_time_in_millis``):
an attempt that could not finish before it is not started (``DeadlineExceededError``, a
``BotoCoreError`` the callers already treat as transient: a snapshot read falls back to replay,
an HTTP command answers 503 + Retry-After instead of being killed by Lambda mid-way).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.loaders import create_loader

from cairn.deadline import DEADLINE_RESERVE_SECONDS, deadline, deadline_of, remaining_seconds

__all__ = [
    "ARCHIVE_READ_CONFIG",
    "DEFAULT_CONFIG",
    "DEADLINE_RESERVE_SECONDS",
    "SNAPSHOT_READ_CONFIG",
    "DeadlineExceededError",
    "LazyClient",
    "client",
    "deadline",
    "deadline_of",
    "endpoint_url_for",
    "remaining_seconds",
]

# Standard retry mode: exponential backoff with jitter, retry quota, throttling handled.
# Short timeouts: DynamoDB/S3 answer in milliseconds; a stuck connection should fail fast and
# be retried inside the Lambda's own timeout, not eat it. Worst case of one call without a
# deadline: 3 x (1 + 3) s + backoff; with one, never past the deadline (see ``_guard``).
DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},  # the first try + 2 retries
    connect_timeout=1,
    read_timeout=3,
    tcp_keepalive=True,
    max_pool_connections=32,
)

# A snapshot is an optimisation: the command can always replay instead. One attempt, and a
# small gzip object from S3 in the same region answers in tens of milliseconds, so 1 s of
# silence means "fall back to replay now", not "wait and retry".
SNAPSHOT_READ_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=0.5,
    read_timeout=1,
)


# An archived range is not optional (unlike a snapshot): a bounded wait, then 503 + Retry-After.
# Two attempts of at most 1 s connect + 2 s read: the worst case stays well inside an API
# Gateway request (docs/archive.md).
ARCHIVE_READ_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 2},
    connect_timeout=1,
    read_timeout=2,
)


class DeadlineExceededError(BotoCoreError):
    """An attempt was not started: it could outlast the invocation's deadline."""

    fmt = "no time left for {operation}: {remaining:.2f} s left, one attempt may take {needed:.2f} s"


def _guard(config: Config):
    """A ``before-send`` hook: refuse an attempt (first or retry) that could end past the deadline.

    One attempt takes at most connect + read timeout, so it is started only if that much time
    is left; retries that would overrun are refused the same way (after botocore's backoff).
    """
    needed = float(config.connect_timeout or 0) + float(config.read_timeout or 0)

    def before_send(request: Any = None, event_name: str = "", **_: Any) -> None:
        left = remaining_seconds()
        if left is not None and left < needed:
            operation = event_name.split(".", 1)[-1] if event_name else "a call"
            raise DeadlineExceededError(operation=operation, remaining=max(left, 0.0), needed=needed)
        return None

    return before_send

_lock = threading.RLock()
_session: Any = None
_session_handlers = -1


def _shared_session() -> boto3.session.Session:
    """One session per process (made under a lock), remade if botocore's built-in handlers changed.

    Shared: a session registers ~500 built-in handlers and copies them into every client; making
    one per client cost about a third of a cold invocation's client set-up (bench/cold_start.py).
    Remade when ``BUILTIN_HANDLERS`` grew: a session keeps the handlers that existed when it was
    made, and moto registers its own at import (tests). Clients are created under the lock
    (sessions are not thread-safe); the clients themselves are.
    """
    global _session, _session_handlers
    from botocore.handlers import BUILTIN_HANDLERS

    if _session is None or _session_handlers != len(BUILTIN_HANDLERS):
        core = botocore.session.get_session()
        core.register_component("data_loader", create_loader())
        _session = boto3.session.Session(botocore_session=core)
        _session_handlers = len(BUILTIN_HANDLERS)
    return _session


class LazyClient:
    """A client made on first use: for a client a path may never need (the snapshot writer of a
    command runtime), so a cold start does not pay for it."""

    def __init__(self, service_name: str, **kwargs: Any) -> None:
        self._args = (service_name, kwargs)
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            service_name, kwargs = self._args
            self._client = client(service_name, **kwargs)
        return getattr(self._client, name)


def endpoint_url_for(service_name: str) -> str | None:
    """``AWS_ENDPOINT_URL_<SERVICE>`` if set, else ``AWS_ENDPOINT_URL`` (local/tests only)."""
    specific = "AWS_ENDPOINT_URL_" + service_name.upper().replace("-", "_")
    return os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL") or None


def client(
    service_name: str,
    *,
    config: Config | None = None,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    session: boto3.session.Session | None = None,
    **kwargs: Any,
) -> Any:
    """A low-level boto3 client with Cairn's defaults; ``config`` is merged over them.

    Composition roots create their clients once, at import (reused by warm invocations).
    """
    endpoint = endpoint_url or endpoint_url_for(service_name)
    merged = DEFAULT_CONFIG if config is None else DEFAULT_CONFIG.merge(config)
    mode = os.environ.get("AWS_ACCOUNT_ID_ENDPOINT_MODE")
    if endpoint is not None and mode is None:
        mode = "disabled"
    if mode:
        merged = merged.merge(Config(account_id_endpoint_mode=mode))
    with _lock:
        factory = session or _shared_session()
        made = factory.client(
            service_name,
            config=merged,
            endpoint_url=endpoint,
            region_name=region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            **kwargs,
        )
    made.meta.events.register("before-send", _guard(made.meta.config))
    return made
