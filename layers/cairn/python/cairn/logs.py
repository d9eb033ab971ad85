"""Every log line of a function through its Powertools Logger (JSON, correlation id, level).

The library and the contexts log with ``logging.getLogger(__name__)`` (pure modules do not depend
on Powertools). Left alone, those records reach Lambda's root logger: plain text, no correlation
id, and INFO dropped (the Python runtime's root level is WARNING). :func:`structured` gives the
packages' parent loggers the Powertools handler (same formatter object, so the keys a request or
a record appended — ``correlation_id``, ``request_id`` — are on their lines too), the Powertools
level, and stops propagation to the root (no line twice). Child loggers propagate to these
parents, so modules imported later are covered as well.

The first call in a process wins: it comes from the function's handler module (imported first
at cold start); modules imported later for other reasons (the Ops function imports every HTTP
module to build ``/openapi.json``) must not re-route the lines to their own service's logger.
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


_ROUTED = "_cairn_structured"


def structured(logger: Any, packages: tuple[str, ...] = PACKAGES, *, force: bool = False) -> Any:
    """Route ``packages``' loggers through the Powertools ``logger`` (unless an earlier call did,
    or ``force``); returns it."""
    handler = logger.registered_handler
    level = logger.log_level
    for name in packages:
        library = logging.getLogger(name)
        if getattr(library, _ROUTED, False) and not force:
            continue
        setattr(library, _ROUTED, True)
        library.handlers = [handler]
        library.setLevel(level)
        library.propagate = False
    return logger
