"""Lag of a stream consumer, as EMF metrics every invocation (docs/ops.md "Lag").

``LagSeconds``: the age, when the batch arrives, of the oldest event in it — received and not yet
applied (``ApproximateCreationDateTime`` is when the event was stored). ``EventsBehind``: the
batch's records still not applied when the invocation ends (failed streams from their failing
version on, and parked streams' skipped records). Both carry the dimensions ``service`` and
``consumer`` (the function's logical name, ``CAIRN_CONSUMER``), so the dashboard and the alarms
tell the four consumers apart although two of them share a service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LAG_METRICS", "batch_lag_seconds", "emit_lag"]

LAG_METRICS = ("LagSeconds", "EventsBehind")


def batch_lag_seconds(records: Sequence[Mapping[str, Any]], now: float | None = None) -> float:
    """Age of the batch's oldest record (0 for an empty batch)."""
    created = []
    for record in records:
        value = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
        if isinstance(value, int | float):
            created.append(float(value))
    if not created:
        return 0.0
    now = time.time() if now is None else now
    return max(0.0, now - min(created))


def emit_lag(
    consumer: str,
    lag_seconds: float,
    events_behind: int,
    *,
    namespace: str | None = None,
    service: str | None = None,
) -> dict[str, Any]:
    """Print one EMF document with both metrics (its own dimension set: service + consumer)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics(
        namespace=namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Cairn",
        service=service or os.environ.get("POWERTOOLS_SERVICE_NAME") or "cairn",
    )
    metrics.add_dimension(name="consumer", value=os.environ.get("CAIRN_CONSUMER") or consumer)
    metrics.add_metric(name="LagSeconds", unit=MetricUnit.Seconds, value=round(lag_seconds, 3))
    metrics.add_metric(name="EventsBehind", unit=MetricUnit.Count, value=events_behind)
    document = metrics.serialize_metric_set()
    metrics.flush_metrics()
    return document
