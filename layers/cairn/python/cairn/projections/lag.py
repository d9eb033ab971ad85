"""Moved to :mod:`cairn.lag` (consumers that are not projections, like the tamper detector, emit lag
without importing the projection engine)."""

from cairn.lag import LAG_METRICS, batch_lag_seconds, emit_lag

__all__ = ["LAG_METRICS", "batch_lag_seconds", "emit_lag"]
