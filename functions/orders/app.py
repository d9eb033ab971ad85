"""Composition root of the orders context: the only place that wires domain to adapters."""

from __future__ import annotations

import os
from functools import cache

from cairn.commands import CommandRuntime, Decider, StateCache
from cairn.events import EventRegistry
from orders import domain

STREAM_PREFIX = "order-"

registry = EventRegistry()
for _event_type in domain.EVENT_TYPES:
    registry.register(_event_type, schema_version=domain.SCHEMA_VERSIONS[_event_type])

decider: Decider = Decider(
    initial_state=domain.initial_state,
    decide=domain.decide,
    evolve=domain.evolve,
    state_schema_version=domain.STATE_SCHEMA_VERSION,
    state_to_dict=domain.state_to_dict,
    state_from_dict=domain.state_from_dict,
    is_new=lambda state: state.status is None,
)


@cache
def runtime() -> CommandRuntime:
    """The process-wide runtime (its state cache survives warm invocations)."""
    from cairn.aws import client
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn.store.dynamodb import DynamoDBEventStore

    store = DynamoDBEventStore(
        registry,
        client("dynamodb"),
        events_table=os.environ["EVENTS_TABLE"],
        idempotency_table=os.environ.get("IDEMPOTENCY_TABLE"),
    )
    bucket = os.environ.get("SNAPSHOT_BUCKET")
    snapshots = S3SnapshotStore(client("s3"), bucket) if bucket else None
    return CommandRuntime(store, decider, snapshots, StateCache(maxsize=int(os.environ.get("STATE_CACHE_SIZE", "2048"))))
