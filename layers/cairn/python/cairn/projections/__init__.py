"""Projections: DynamoDB stream records -> ordered, exactly-once read-model updates.

- :mod:`~cairn.projections.base`: what a projection is (a fold + coalesced item writes);
- :mod:`~cairn.projections.engine`: checkpoints, duplicates, gap repair, a stream's writes
  committed with its checkpoint (many streams and projections per transaction), bisection and
  poison handling;
- :mod:`~cairn.projections.consumer`: the Lambda glue (Powertools BatchProcessor, partial
  batch responses, metrics);
- :mod:`~cairn.projections.parking`, :mod:`~cairn.projections.generations`,
  :mod:`~cairn.projections.status`, :mod:`~cairn.projections.readers`,
  :mod:`~cairn.projections.maintenance` (rebuild, audit, unpark).

Nothing here imports boto3 at import time: clients are injected or built on first use.
"""

from cairn.projections.base import Projection, Write, Writes
from cairn.projections.consumer import BatchReport, StreamConsumer, StreamFailedError, group_records
from cairn.projections.engine import (
    Checkpoint,
    EventFailure,
    GapUnrepairableError,
    ProjectionEngine,
    StreamBatch,
    StreamOutcome,
    TransientProjectionError,
    process_together,
)
from cairn.projections.generations import Generations, resolve_generations
from cairn.projections.parking import ParkedStream, Parking
from cairn.projections.readers import ReadModelTable
from cairn.projections.status import projection_status

__all__ = [
    "BatchReport",
    "Checkpoint",
    "EventFailure",
    "GapUnrepairableError",
    "Generations",
    "ParkedStream",
    "Parking",
    "Projection",
    "ProjectionEngine",
    "ReadModelTable",
    "StreamBatch",
    "StreamConsumer",
    "StreamFailedError",
    "StreamOutcome",
    "TransientProjectionError",
    "Write",
    "Writes",
    "group_records",
    "process_together",
    "projection_status",
    "resolve_generations",
]
