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
import botocore.session
from botocore.config import Config
from botocore.loaders import create_loader

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

_loader_lock = threading.Lock()
_loader: Any = None


def _new_session() -> boto3.session.Session:
    """A fresh session per client, sharing one model loader.

    Fresh: boto3's shared default session is not safe to create from several threads, and a
    cached session keeps the event handlers that existed when it was made (moto registers its
    own at import). Shared loader: parsing service models is the slow part of making a client.
    """
    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader)
    return boto3.session.Session(botocore_session=core)


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
    factory = session or _new_session()
    return factory.client(
        service_name,
        config=merged,
        endpoint_url=endpoint,
        region_name=region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        **kwargs,
    )
