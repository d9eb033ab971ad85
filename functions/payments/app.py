"""Composition root of the payments context: the only place that wires domain to adapters.

The payment service owns its streams (``payment-…``) in the shared events table and drives
orders through the order service's own command runtime (``orders.app.runtime()``), so the order
decider's rules apply to payments made by this service exactly as to staff-recorded ones.
"""

from __future__ import annotations

import os
from functools import cache

from cairn.commands import CommandRuntime, Decider
from cairn.commands.compose import decider_of, registry_of, runtime_from_env
from cairn.events import EventRegistry
from payments import domain
from payments.gateway import FakeGateway, PaymentGateway

STREAM_PREFIX = domain.STREAM_PREFIX

registry: EventRegistry = registry_of(domain)
decider: Decider = decider_of(domain, is_new=lambda state: state.status is None)


def order_stream_id(order_id: str) -> str:
    """The order service's stream of an order id."""
    from orders import app as orders_app

    mapper = getattr(orders_app, "stream_id_for", None)
    if mapper is not None:
        return mapper(order_id)
    prefix = orders_app.STREAM_PREFIX
    return order_id if order_id.startswith(prefix) else f"{prefix}{order_id}"


@cache
def runtime() -> CommandRuntime:
    """The payments runtime (no snapshots: a payment stream holds at most a few events)."""
    return runtime_from_env(registry, decider, snapshots=False, cache_size=1024)


@cache
def gateway() -> PaymentGateway:
    """``PAYMENT_GATEWAY=fake`` (the default and, for now, the only adapter)."""
    kind = os.environ.get("PAYMENT_GATEWAY", "fake")
    if kind == "fake":
        return FakeGateway()
    raise ValueError(f"unknown PAYMENT_GATEWAY {kind!r}")


@cache
def service(observe=None):
    """The payment service; ``observe`` receives each command's latency and result (metrics)."""
    from orders import app as orders_app
    from payments.service import PaymentService

    return PaymentService(runtime(), orders_app.runtime(), gateway(), order_stream_id, observe)
