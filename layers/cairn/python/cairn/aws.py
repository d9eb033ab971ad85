"""boto3 clients for every composition root, built one way.

Why one factory: every Lambda, tool and test must agree on retries, timeouts and on how a local
endpoint (moto) is reached. botocore >= 1.40 sends some calls to account-based endpoints that
moto does not route, so with a local endpoint the account-id endpoint mode is forced off.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["DEFAULT_CONFIG", "client", "endpoint_url_for"]

# Standard retry mode: exponential backoff with jitter, retry quota, throttling handled.
# Short timeouts: DynamoDB/S3 answer in milliseconds; a stuck connection should fail fast and
# be retried inside the Lambda's own timeout, not eat it.
DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},  # the first try + 2 retries
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
    max_pool_connections=32,
)

_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _default_session() -> boto3.session.Session:
    # boto3's implicit default session is not safe to create from several threads at once.
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session


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
    factory = session or _default_session()
    return factory.client(
        service_name,
        config=merged,
        endpoint_url=endpoint,
        region_name=region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        **kwargs,
    )
