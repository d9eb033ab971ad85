"""Wiring helpers for a context's composition root (``functions/<context>/app.py``).

A pure domain module exposes the standard names (``EVENT_TYPES``, ``SCHEMA_VERSIONS``,
``initial_state``, ``decide``, ``evolve``, ``STATE_SCHEMA_VERSION``, ``state_to_dict``,
``state_from_dict``); these helpers turn it into a registry, a decider and a runtime on AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cairn.commands.cache import StateCache
from cairn.commands.decider import Decider
from cairn.commands.runtime import CommandRuntime
from cairn.events import EventRegistry


def registry_of(domain: ModuleType) -> EventRegistry:
    """A registry of the domain's event types at their current schema versions."""
    registry = EventRegistry()
    for event_type in domain.EVENT_TYPES:
        registry.register(event_type, schema_version=domain.SCHEMA_VERSIONS[event_type])
    # ``UPCASTERS``: {(type name, from version): old payload -> next version's payload}
    for (type_name, from_version), step in getattr(domain, "UPCASTERS", {}).items():
        registry.upcaster(type_name, from_version)(step)
    return registry


def decider_of(domain: ModuleType, *, is_new: Callable[[Any], bool] | None = None) -> Decider:
    return Decider(
        initial_state=domain.initial_state,
        decide=domain.decide,
        evolve=domain.evolve,
        state_schema_version=domain.STATE_SCHEMA_VERSION,
        state_to_dict=domain.state_to_dict,
        state_from_dict=domain.state_from_dict,
        is_new=is_new,
    )


def runtime_from_env(
    registry: EventRegistry, decider: Decider, *, snapshots: bool = True, cache_size: int = 2048
) -> CommandRuntime:
    """DynamoDB store (+ S3 snapshots, + the S3 archive tier) named by ``EVENTS_TABLE``, ``IDEMPOTENCY_TABLE``,
    ``SNAPSHOT_BUCKET`` (and ``ARCHIVE_BUCKET``).

    Imports the AWS adapters here, not at module import, so handler cold starts stay cheap.
    """
    from cairn.archive.store import store_from_env
    from cairn.aws import SNAPSHOT_READ_CONFIG, LazyClient, client

    # ARCHIVE_BUCKET set: archived ranges are read from S3 (docs/archive.md)
    store = store_from_env(registry, client("dynamodb"), os.environ["EVENTS_TABLE"], os.environ.get("IDEMPOTENCY_TABLE"))
    snapshot_store = None
    bucket = os.environ.get("SNAPSHOT_BUCKET") if snapshots else None
    if bucket:
        from cairn.snapshots.s3 import S3SnapshotStore

        # reads on the command path (fast budget); the writer only in the snapshotter. Both are
        # made on first use: a new stream, a cached state and a query's plain read need no S3
        snapshot_store = S3SnapshotStore(
            LazyClient("s3"), bucket, read_client=LazyClient("s3", config=SNAPSHOT_READ_CONFIG)
        )
    size = int(os.environ.get("STATE_CACHE_SIZE", str(cache_size)))
    return CommandRuntime(store, decider, snapshot_store, StateCache(maxsize=size))
