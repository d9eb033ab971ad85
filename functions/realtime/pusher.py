"""Pusher: read-model commits (the view tables' DynamoDB streams) -> WebSocket pushes.

Why here (docs/decisions.md): a stream record of a checkpoint item exists only once the
projection's transaction committed, so a pushed version is always readable; the pusher is a
separate consumer, so a slow or failing push can never hold up or fail a projection.

Per batch: keep the newest version of each stream (several commits in one batch push once),
look up who follows it, claim the version on the stream's push mark (a duplicate, retried or
reordered record never pushes a version at or below one already pushed), push, and forget
connections that are gone (410). A push that fails is counted, not retried: the client resumes
with ``GET …?min_version`` (docs/realtime.md). A lookup that fails fails the batch, which Lambda
retries; the claims make that retry push nothing twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from realtime.connections import Connections
from realtime.messages import owner_of, update_message
from realtime.sockets import ManagementApi, Outcome

__all__ = ["Commit", "PushReport", "Pusher", "commits_from_records", "handler"]

_CHECKPOINT_PK = re.compile(r"^g(\d+)#s#(.+)$")
_TABLE = re.compile(r":table/([^/]+)(/|$)")
MIN_REMAINING_MS = 2000  # stop pushing when the Lambda has less left than this


@dataclass(frozen=True, slots=True)
class Commit:
    table: str
    generation: int
    stream_id: str
    version: int
    view: dict[str, Any]


@dataclass(slots=True)
class PushReport:
    commits: int = 0
    sent: int = 0
    failed: int = 0
    gone: int = 0
    stale: int = 0  # a version at or below one already pushed (duplicate / reordered / retried)
    delays_ms: list[float] = field(default_factory=list)


def commits_from_records(records: Iterable[dict[str, Any]]) -> list[Commit]:
    """Checkpoint items written by a projection, decoded (other items are ignored)."""
    from cairn.projections.codec import from_attr

    found = []
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        if image.get("sk", {}).get("S") != "cp" or "state" not in image or "version" not in image:
            continue
        key = _CHECKPOINT_PK.match(image.get("pk", {}).get("S", ""))
        table = _TABLE.search(record.get("eventSourceARN", ""))
        if key is None or table is None:
            continue
        view = from_attr(image["state"])
        if not isinstance(view, dict):
            continue
        found.append(Commit(table.group(1), int(key.group(1)), key.group(2), int(image["version"]["N"]), view))
    return found


def _newest(commits: Iterable[Commit]) -> list[Commit]:
    newest: dict[str, Commit] = {}
    for commit in commits:
        seen = newest.get(commit.stream_id)
        if seen is None or commit.version > seen.version:
            newest[commit.stream_id] = commit
    return [newest[s] for s in sorted(newest)]


def _age_ms(occurred_at: Any, now: float) -> float | None:
    if not isinstance(occurred_at, str):
        return None
    try:
        at = datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(0.0, (now - at) * 1000)


class Pusher:
    def __init__(
        self,
        connections: Connections,
        sockets: ManagementApi,
        active_generation: Callable[[str], int],
        *,
        clock: Callable[[], float] = time.time,
        parallel_posts: int = 8,
    ):
        self.connections = connections
        self.sockets = sockets
        self.active_generation = active_generation
        self.clock = clock
        # One stream's fan-out is posted concurrently (each post is a network round trip);
        # streams stay sequential, so a connection still sees one stream's versions in order.
        self._pool = ThreadPoolExecutor(max_workers=parallel_posts, thread_name_prefix="push")

    def handle(self, records: Iterable[dict[str, Any]], remaining_ms: Callable[[], float] = lambda: 1e9) -> PushReport:
        report = PushReport()
        commits = [c for c in commits_from_records(records) if c.generation == self.active_generation(c.table)]
        for commit in _newest(commits):
            report.commits += 1
            message = update_message(commit.stream_id, commit.version, commit.view)
            if message is None:
                continue
            targets = self.connections.targets(owner_of(commit.stream_id, commit.view), commit.stream_id)
            if not self.connections.claim(commit.stream_id, commit.version):
                report.stale += 1
                continue
            gone = []
            ordered = sorted(targets)
            outcomes = list(self._pool.map(partial(self._post, message=message, remaining_ms=remaining_ms), ordered))
            for connection_id, outcome in zip(ordered, outcomes, strict=True):
                if outcome is Outcome.SENT:
                    report.sent += 1
                elif outcome is Outcome.GONE:
                    report.gone += 1
                    gone.append(connection_id)
                else:
                    report.failed += 1
            if targets:
                age = _age_ms(message.get("occurred_at"), self.clock())
                if age is not None:
                    report.delays_ms.append(age)
            self.connections.remove_all(gone)
        return report

    def _post(self, connection_id: str, *, message: dict[str, Any], remaining_ms: Callable[[], float]) -> Outcome:
        if remaining_ms() < MIN_REMAINING_MS:
            return Outcome.FAILED  # no time left: counted; the Lambda must not time out mid-batch
        return self.sockets.post(connection_id, message)



# -- Lambda entry point ------------------------------------------------------------------------
logger = Logger()
metrics = Metrics()


@cache
def pusher() -> Pusher:
    from cairn.projections.generations import resolve_generations
    from realtime.app import connections, dynamodb, management_api

    return Pusher(connections(), management_api(), lambda table: resolve_generations(dynamodb(), table).active)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None) or (lambda: 1e9)
    report = pusher().handle(event.get("Records") or [], remaining)
    for name, value in (("PushesSent", report.sent), ("PushesFailed", report.failed),
                        ("ConnectionsGone", report.gone)):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for delay in report.delays_ms:
        metrics.add_metric(name="PushDelay", unit=MetricUnit.Milliseconds, value=round(delay, 1))
    logger.info("pushed", extra={"commits": report.commits, "sent": report.sent, "failed": report.failed,
                                 "gone": report.gone, "stale": report.stale})
    return {"batchItemFailures": []}
