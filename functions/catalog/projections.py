"""CatalogProjections Lambda: product streams -> the catalog read model (``CATALOG_TABLE``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from cairn.events import EventEnvelope
from cairn.projections import Projection, StreamConsumer, Writes
from cairn.projections.kinesis import as_stream_event
from catalog import read_models as rm
from catalog.app import STREAM_PREFIX, registry

__all__ = ["PROJECTIONS", "TABLE_ENV", "CatalogProjection", "handler"]


class CatalogProjection(Projection):
    name = rm.CATALOG
    stream_prefix = STREAM_PREFIX

    def apply(self, stream_id: str, state: Any, events: Sequence[EventEnvelope], writes: Writes) -> Any:
        for event in events:
            state = rm.product_evolve(state, event)
        return state


PROJECTIONS: tuple[Projection, ...] = (CatalogProjection(),)
TABLE_ENV = {rm.CATALOG: "CATALOG_TABLE"}

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))


@cache
def consumer() -> StreamConsumer:
    from cairn.aws import client
    from cairn.store.dynamodb import DynamoDBEventStore

    dynamodb = client("dynamodb")
    store = DynamoDBEventStore(registry, dynamodb, events_table=os.environ["EVENTS_TABLE"])
    return StreamConsumer.from_env(registry, {p: TABLE_ENV[p.name] for p in PROJECTIONS}, store, client=dynamodb)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # the Kinesis fan-out (issue 18) or DynamoDB Streams records
    return consumer().handle(as_stream_event(event), context, metrics, consumer="CatalogProjections")
