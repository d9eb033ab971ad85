"""CatalogProjections Lambda: product streams -> the catalog read model (``CATALOG_TABLE``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from cairn.events import EventEnvelope
from cairn.projections import Projection, StreamConsumer, Writes
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
    """Built on the first invocation (warm invocations reuse clients and engines)."""
    return StreamConsumer.for_lambda(registry, {p: TABLE_ENV[p.name] for p in PROJECTIONS})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumer().handle(event, context, metrics, consumer="CatalogProjections")  # either stream source
