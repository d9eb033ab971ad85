"""Sending to a WebSocket connection through the API Gateway management API.

Deployed, the endpoint is the stage's callback URL (``WS_MANAGEMENT_ENDPOINT``); locally the
same variable points at the local runtime's implementation of the same API.
"""

from __future__ import annotations

import enum
import json
from typing import Any

__all__ = ["ManagementApi", "Outcome"]


class Outcome(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # 410: the client went away without a $disconnect we have seen yet
    FAILED = "failed"


class ManagementApi:
    """``PostToConnection`` with the outcome a pusher acts on; never raises for one connection."""

    def __init__(self, client: Any):
        self.client = client

    def post(self, connection_id: str, message: dict[str, Any]) -> Outcome:
        data = json.dumps(message, separators=(",", ":")).encode()
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "GoneException" or status == 410:
                return Outcome.GONE
            return Outcome.FAILED
        return Outcome.SENT
