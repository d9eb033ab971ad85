"""Projection status for ``GET /ops/projections`` and the tools.

Per projection: the active generation, how many streams and events it has applied (sharded
counters written in the same transactions as the checkpoints, so exact), its parked streams,
``lag_events``, ``lag_seconds`` and ``failed_batches``.

What is stored but not applied, and known here without scanning the store: events of parked
streams (``head - version + 1`` each; their age is the parked event's ``occurred_at``) and the
ranges of batches the event source mapping gave up on (``failed_batches``: messages in the
consumer's on-failure queue; their age is the batch's ``approximateArrivalOfFirstRecord``).
``lag_seconds`` is the age of the oldest of those, 0 when there is none. Events still being
delivered or retried are the consumers' ``LagSeconds``/``EventsBehind`` metrics (and Lambda's
``IteratorAge``), which alarm. While a rebuild runs, ``building`` describes the new
generation; its ``lag_events`` is how many applied events it still lacks compared with the
active one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cairn.projections.generations import read_generations
from cairn.projections.layout import STATS_SHARDS, stats_key
from cairn.projections.parking import Parking

__all__ = ["failed_batches", "generation_stats", "projection_status"]


def generation_stats(client: Any, table: str, generation: int) -> dict[str, int]:
    """Sum of the generation's counter shards: ``streams`` and ``events_applied``."""
    keys = [stats_key(generation, shard) for shard in range(STATS_SHARDS)]
    totals = {"streams": 0, "events_applied": 0}
    pending: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    while pending:
        response = client.batch_get_item(RequestItems=pending)
        for item in response.get("Responses", {}).get(table, ()):
            for name in totals:
                if name in item:
                    totals[name] += int(item[name]["N"])
        pending = response.get("UnprocessedKeys") or {}
    return totals


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def failed_batches(sqs: Any, queue_url: str, *, peek: int = 10) -> tuple[int, float | None]:
    """(batches in the on-failure queue, arrival time of the oldest first record among up to
    ``peek`` of them). Counting is the queue's approximate depth; peeking receives with a zero
    visibility timeout, so the messages stay where they are for the redrive."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    count = int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )
    oldest: float | None = None
    if count and peek:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, peek), VisibilityTimeout=0)
        for message in got.get("Messages", ()):
            try:
                body = json.loads(message["Body"])
                info = body.get("DDBStreamBatchInfo") or body.get("KinesisBatchInfo") or {}
            except (ValueError, AttributeError):
                continue
            arrival = _epoch(info.get("approximateArrivalOfFirstRecord"))
            if arrival is not None and (oldest is None or arrival < oldest):
                oldest = arrival
    return count, oldest


def _event_time(client: Any, events_table: str | None, stream_id: str, version: int) -> float | None:
    if not events_table:
        return None
    item = client.get_item(
        TableName=events_table,
        Key={"stream_id": {"S": stream_id}, "version": {"N": str(version)}},
        ProjectionExpression="occurred_at",
        ConsistentRead=True,
    ).get("Item")
    return _epoch(item["occurred_at"]["S"]) if item and "occurred_at" in item else None


def projection_status(
    client: Any,
    tables: Mapping[str, str],
    *,
    parked_limit: int = 50,
    events_table: str | None = None,
    failed_queues: Mapping[str, str] | None = None,
    sqs: Any = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """``[{name, generation, streams, events_applied, lag_events, lag_seconds, parked_streams,
    failed_batches, ...}]``.

    ``tables`` maps projection name -> read-model table name, e.g. ``{"order_view":
    os.environ["ORDER_VIEW_TABLE"], ...}``; ``failed_queues`` projection name -> its consumer's
    on-failure queue URL; ``events_table`` lets parked events' ages be read. Extra fields:
    ``parked`` (up to ``parked_limit`` parked streams with version, head, error) and ``building``
    (None unless a rebuild runs).
    """
    now = time.time() if now is None else now
    queues = dict(failed_queues or {})
    seen_queues: dict[str, tuple[int, float | None]] = {}
    result = []
    for name, table in tables.items():
        generations = read_generations(client, table)
        stats = generation_stats(client, table, generations.active)
        parked = Parking(client, table, name).list()
        parked_lag = sum(p.lag_events for p in parked)
        oldest: list[float] = []
        for stream in parked[:parked_limit]:
            at = _event_time(client, events_table, stream.stream_id, stream.version)
            oldest.append(at if at is not None else (_epoch(stream.parked_at) or now))
        failed = 0
        queue_url = queues.get(name)
        if queue_url:
            if sqs is None:
                from cairn.aws import client as make_client

                sqs = make_client("sqs")
            if queue_url not in seen_queues:
                seen_queues[queue_url] = failed_batches(sqs, queue_url)
            failed, first = seen_queues[queue_url]
            if first is not None:
                oldest.append(first)
        entry: dict[str, Any] = {
            "name": name,
            "generation": generations.active,
            "streams": stats["streams"],
            "events_applied": stats["events_applied"],
            "lag_events": parked_lag,
            "lag_seconds": round(max(0.0, now - min(oldest)), 3) if oldest else 0,
            "parked_streams": len(parked),
            "failed_batches": failed,
            "parked": [p.to_dict() for p in parked[:parked_limit]],
            "building": None,
        }
        if generations.building is not None:
            building = generation_stats(client, table, generations.building)
            entry["building"] = {
                "generation": generations.building,
                "streams": building["streams"],
                "events_applied": building["events_applied"],
                "lag_events": max(0, stats["events_applied"] - building["events_applied"]),
            }
        result.append(entry)
    return result
