"""Composition root of the payments context: the only place that wires domain to adapters.

The payment service owns its streams (``payment-…``) and nothing else: it learns about orders
from the order service's integration events and reports outcomes as its own integration events
(published from its streams), which the order service turns into the order's events.
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
decider: Decider = decider_of(domain, is_new=lambda state: state.status is None and not state.order_closed)


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
def vault():
    from cairn.aws import client
    from payments.intents import DynamoDBIntentVault

    return DynamoDBIntentVault(client("dynamodb"), client("kms"), os.environ["PAYMENT_INTENTS_TABLE"])


@cache
def service(observe=None):
    """The payment service; ``observe`` receives each command's latency and result (metrics)."""
    from payments.service import PaymentService

    return PaymentService(runtime(), gateway(), vault(), observe)
