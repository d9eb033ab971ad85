"""Every log line of a function through its Powertools Logger (JSON, correlation id, level).

The library and the contexts log with ``logging.getLogger(__name__)`` (pure modules do not depend
on Powertools). Left alone, those records reach Lambda's root logger: plain text, no correlation
id, and INFO dropped (the Python runtime's root level is WARNING). :func:`structured` gives the
packages' parent loggers the Powertools handler (same formatter object, so the keys a request or
a record appended — ``correlation_id``, ``request_id`` — are on their lines too), the Powertools
level, and stops propagation to the root (no line twice). Child loggers propagate to these
parents, so modules imported later are covered as well.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["PACKAGES", "structured"]

# top-level packages of the layer and of functions/ (a logger "orders.x" propagates to "orders")
PACKAGES = (
    "cairn", "kernel", "integration", "orders", "accounts", "payments", "inventory", "notifications",
    "cairn_platform", "catalog", "realtime",
)


def structured(logger: Any, packages: tuple[str, ...] = PACKAGES) -> Any:
    """Route ``packages``' loggers through the Powertools ``logger``; returns it."""
    handler = logger.registered_handler
    level = logger.log_level
    for name in packages:
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.setLevel(level)
        library.propagate = False
    return logger
