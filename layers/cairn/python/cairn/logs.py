"""Every log line of a function through its Powertools Logger (JSON, correlation id, level).

The library and the contexts log with ``logging.getLogger(__name__)`` (pure modules do not depend
on Powertools). Left alone, those records reach Lambda's root logger: plain text, no correlation
id, and INFO dropped (the Python runtime's root level is WARNING). :func:`structured` gives the
packages' parent loggers the Powertools handler (same formatter object, so the keys a request or
a record appended — ``correlation_id``, ``request_id`` — are on their lines too), the Powertools
level, and stops propagation to the root (no line twice). Child loggers propagate to these
parents, so modules imported later are covered as well.

Every line also passes :class:`Redactor` (issue 12, docs/privacy.md): values under known
personal or secret keys (``email``, ``shipping_address``, ``payment_token``, …) at any depth of an
``extra`` become ``"[redacted]"``, and anything shaped like an e-mail address in the message or a
string value becomes ``"[email]"`` — a log line never carries the personal data the events table
may not carry either.

The first call in a process wins: it comes from the function's handler module (imported first
at cold start); modules imported later for other reasons (the Ops function imports every HTTP
module to build ``/openapi.json``) must not re-route the lines to their own service's logger.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["PACKAGES", "REDACTED", "REDACTED_KEYS", "Redactor", "redact", "structured"]

REDACTED = "[redacted]"
# keys whose values are personal data or secrets wherever they appear in a log line's extras
REDACTED_KEYS = frozenset({
    "email", "shipping_address", "payment_token", "token", "authorization", "password", "plaintext",
    "line1", "line2", "postal_code",
})
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# what every LogRecord has: never an extra, never redacted
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(value: Any, depth: int = 0) -> Any:
    """``value`` with personal keys' values replaced and e-mail addresses masked (a copy)."""
    if depth > 8:
        return value
    if isinstance(value, str):
        return EMAIL.sub("[email]", value) if "@" in value else value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and k.lower() in REDACTED_KEYS and v is not None else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    return value


class Redactor(logging.Filter):
    """A handler filter: mutates the record before any formatter sees it (always passes it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "@" in record.msg:
            record.msg = EMAIL.sub("[email]", record.msg)
        if record.args:
            record.args = tuple(redact(a) for a in record.args) if isinstance(record.args, tuple) else redact(record.args)
        for key in record.__dict__.keys() - _STANDARD:
            value = record.__dict__[key]
            if key.lower() in REDACTED_KEYS and value is not None:
                record.__dict__[key] = REDACTED
            elif isinstance(value, str | dict | list | tuple):
                record.__dict__[key] = redact(value)
        return True


_REDACTOR = Redactor()

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
    if not any(isinstance(f, Redactor) for f in handler.filters):
        handler.addFilter(_REDACTOR)  # the service's own lines too, not only the packages'
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
