"""AccountsProjections Lambda: the account stream -> Account View."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from accounts import read_models as rm
from accounts.app import STREAM_PREFIX, registry
from cairn.events import EventEnvelope
from cairn.logs import structured
from cairn.projections import Projection, StreamConsumer, Writes

__all__ = ["PROJECTIONS", "TABLE_ENV", "AccountViewProjection", "handler"]


class AccountViewProjection(Projection):
    """The view is the checkpoint's state (balance as a money string, version, updated_at)."""

    name = rm.ACCOUNT_VIEW
    stream_prefix = STREAM_PREFIX

    def apply(self, stream_id: str, state: Any, events: Sequence[EventEnvelope], writes: Writes) -> Any:
        for event in events:
            state = rm.account_view_evolve(state, event)
        return state


PROJECTIONS: tuple[Projection, ...] = (AccountViewProjection(),)
TABLE_ENV = {rm.ACCOUNT_VIEW: "ACCOUNT_VIEW_TABLE"}

logger = structured(Logger())  # cairn.* and the contexts' loggers too (cairn.logs)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Cairn"))


@cache
def consumer() -> StreamConsumer:
    """Built on the first invocation (warm invocations reuse clients and engines)."""
    return StreamConsumer.for_lambda(registry, {p: TABLE_ENV[p.name] for p in PROJECTIONS})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return consumer().handle(event, context, metrics, consumer="AccountsProjections")  # either stream source
