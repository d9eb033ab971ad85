"""Composition root of the realtime context: clients and adapters, built once per warm Lambda."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from realtime.dynamodb import DynamoDBConnections

__all__ = ["connections", "dynamodb", "management_api", "view_tables"]

# Stream prefix -> env var of the read-model table whose checkpoint items hold the view.
VIEW_TABLE_ENV = {"order-": "ORDER_VIEW_TABLE", "account-": "ACCOUNT_VIEW_TABLE"}


@cache
def dynamodb() -> Any:
    from cairn.aws import client

    return client("dynamodb")


@cache
def connections() -> DynamoDBConnections:
    return DynamoDBConnections(dynamodb(), os.environ["CONNECTIONS_TABLE"])


@cache
def management_api() -> Any:
    """The stage's management endpoint; short timeouts and one retry: a push is not worth a batch."""
    from botocore.config import Config

    from cairn.aws import client
    from realtime.sockets import ManagementApi

    config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
    return ManagementApi(
        client("apigatewaymanagementapi", endpoint_url=os.environ["WS_MANAGEMENT_ENDPOINT"], config=config)
    )


def view_tables() -> dict[str, str]:
    """Stream prefix -> view table name, for the prefixes whose table this function was given."""
    return {prefix: os.environ[env] for prefix, env in VIEW_TABLE_ENV.items() if os.environ.get(env)}
