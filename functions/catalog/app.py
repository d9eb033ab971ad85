"""Composition root of the catalog context."""

from __future__ import annotations

from functools import cache

from cairn.commands import CommandRuntime, Decider
from cairn.commands.compose import decider_of, registry_of, runtime_from_env
from cairn.events import EventRegistry
from catalog import domain

STREAM_PREFIX = domain.STREAM_PREFIX

registry: EventRegistry = registry_of(domain)
decider: Decider = decider_of(domain, is_new=lambda state: not state.listed)


@cache
def runtime() -> CommandRuntime:
    """No snapshots: a product stream holds a handful of price changes."""
    return runtime_from_env(registry, decider, snapshots=False, cache_size=1024)
