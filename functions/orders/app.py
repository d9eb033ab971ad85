"""Composition root of the orders context: the only place that wires domain to adapters."""

from __future__ import annotations

from functools import cache

from cairn.commands import CommandRuntime, Decider
from cairn.commands.compose import decider_of, registry_of, runtime_from_env
from cairn.events import EventRegistry
from orders import domain

STREAM_PREFIX = "order-"

registry: EventRegistry = registry_of(domain)
decider: Decider = decider_of(domain, is_new=lambda state: state.status is None)


@cache
def runtime() -> CommandRuntime:
    """The process-wide runtime (its state cache survives warm invocations)."""
    return runtime_from_env(registry, decider)


@cache
def price_list():
    """The catalog's published read model (``CATALOG_TABLE``): POST /orders prices from it."""
    import os

    from cairn.aws import client
    from orders.pricing import ReadModelPriceList

    return ReadModelPriceList(client("dynamodb"), os.environ["CATALOG_TABLE"])


@cache
def payment_intents():
    """Where POST /orders puts a payment token (encrypted, expiring): ``PAYMENT_INTENTS_TABLE`` + ``PAYMENT_INTENTS_KEY``."""
    import os

    from cairn.aws import client
    from orders.intents import DynamoDBPaymentIntents

    return DynamoDBPaymentIntents(
        client("dynamodb"), client("kms"), os.environ["PAYMENT_INTENTS_TABLE"], os.environ["PAYMENT_INTENTS_KEY"]
    )


@cache
def personal_data():
    """The crypto-shredding codec (issue 12): per-subject X25519 key pairs in
    ``PERSONAL_DATA_KEYS_TABLE``, private keys wrapped by ``PERSONAL_DATA_KEY`` (KMS). Commands seal
    with the public key (no KMS call), queries open with the private key; both cached per warm
    instance (``PERSONAL_DATA_KEY_CACHE_SECONDS``, 60 s deployed)."""
    from cairn.privacy.compose import codec_from_env

    return codec_from_env()
