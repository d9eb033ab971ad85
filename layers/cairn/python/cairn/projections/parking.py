"""Poison events: counting failed attempts, parking a stream, and letting it go again.

A stream whose event still fails after ``max_attempts`` is *parked*: an item in the
projection's table (``_parked`` / stream id) plus a message on the on-failure queue. Later
records of a parked stream are skipped (the item's ``head`` remembers how far the stream got)
so the shard, and every other stream on it, keeps flowing. ``unpark`` replays the stream from
the store once the cause is fixed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cairn.events import utc_now_iso
from cairn.projections.layout import ATTEMPTS_PREFIX, PARKED_PK, attempts_key, parked_key

__all__ = ["ATTEMPTS_TTL_SECONDS", "ParkedStream", "Parking"]

logger = logging.getLogger(__name__)

ATTEMPTS_TTL_SECONDS = 14 * 24 * 3600  # attempt counters expire (table TTL on ``expires_at``)
MAX_ERROR_CHARS = 1000


def describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    notes = getattr(error, "__notes__", None)
    if notes:
        text += " (" + "; ".join(notes) + ")"
    return text[:MAX_ERROR_CHARS]


@dataclass(frozen=True, slots=True)
class ParkedStream:
    stream_id: str
    version: int  # the event that kept failing (the checkpoint stays at version - 1)
    head: int  # highest version seen since (records skipped while parked)
    error: str
    attempts: int
    parked_at: str
    projection: str

    @property
    def lag_events(self) -> int:
        """Events of the stream known and not applied."""
        return max(0, self.head - self.version + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "version": self.version,
            "head": self.head,
            "error": self.error,
            "attempts": self.attempts,
            "parked_at": self.parked_at,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ParkedStream:
        return cls(
            stream_id=item["sk"]["S"],
            version=int(item["version"]["N"]),
            head=int(item.get("head", item["version"])["N"]),
            error=item.get("error", {}).get("S", ""),
            attempts=int(item.get("attempts", {"N": "0"})["N"]),
            parked_at=item.get("parked_at", {}).get("S", ""),
            projection=item.get("projection", {}).get("S", ""),
        )


class Parking:
    """Attempt counters and parked streams of one projection (in its table)."""

    def __init__(
        self,
        client: Any,
        table: str,
        projection: str,
        *,
        queue_url: str | None = None,
        sqs: Any | Callable[[], Any] | None = None,
    ):
        self.client = client
        self.table = table
        self.projection = projection
        self.queue_url = queue_url
        self._sqs = sqs

    def _sqs_client(self) -> Any:
        if callable(self._sqs) and not hasattr(self._sqs, "send_message"):
            self._sqs = self._sqs()
        if self._sqs is None:
            from cairn.aws import client

            self._sqs = client("sqs")
        return self._sqs

    # -- attempts -----------------------------------------------------------------------------
    def count_attempt(self, stream_id: str, version: int, error: BaseException) -> int:
        """One more failed attempt at (stream, version); returns the count so far.

        Only deterministic-looking failures are counted (the caller leaves throttling and
        timeouts out); the counter is not transactional, so a crash mid-attempt is not counted
        (the event source mapping's own retry limit covers crashes).
        """
        response = self.client.update_item(
            TableName=self.table,
            Key=attempts_key(stream_id, version),
            UpdateExpression="ADD attempts :one SET last_error = :e, last_error_at = :t, expires_at = :x",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":e": {"S": describe(error)},
                ":t": {"S": utc_now_iso()},
                ":x": {"N": str(int(time.time()) + ATTEMPTS_TTL_SECONDS)},
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["attempts"]["N"])

    def clear_attempts(self, stream_id: str) -> int:
        """Delete the stream's attempt counters (after an unpark); returns how many."""
        pk = {"S": ATTEMPTS_PREFIX + stream_id}
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": pk},
            "ProjectionExpression": "pk, sk",
        }
        deleted = 0
        while True:
            page = self.client.query(**request)
            for item in page.get("Items", ()):
                self.client.delete_item(TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]})
                deleted += 1
            if not page.get("LastEvaluatedKey"):
                return deleted
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- parking ------------------------------------------------------------------------------
    def park(
        self, stream_id: str, version: int, error: BaseException, attempts: int, head: int, generation: int
    ) -> ParkedStream:
        """Park the stream at ``version``: message to the on-failure queue, then the item.

        Message first: if the item write fails the batch is retried and parks again (a
        duplicate message), never the other way round (a parked stream nobody hears about).
        """
        parked = ParkedStream(
            stream_id=stream_id,
            version=version,
            head=max(head, version),
            error=describe(error),
            attempts=attempts,
            parked_at=utc_now_iso(),
            projection=self.projection,
        )
        message = {
            "kind": "projection.stream_parked",
            "projection": self.projection,
            "table": self.table,
            "generation": generation,
            **parked.to_dict(),
            "error_type": type(error).__name__,
        }
        if self.queue_url:
            self._sqs_client().send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))
        else:
            logger.error("stream parked (no PARKED_QUEUE_URL configured): %s", message)
        item = {
            **parked_key(stream_id),
            "stream_id": {"S": stream_id},
            "version": {"N": str(parked.version)},
            "head": {"N": str(parked.head)},
            "error": {"S": parked.error},
            "error_type": {"S": type(error).__name__},
            "attempts": {"N": str(attempts)},
            "parked_at": {"S": parked.parked_at},
            "projection": {"S": self.projection},
            "generation": {"N": str(generation)},
        }
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            found = self.get(stream_id)  # parked concurrently (another generation or invocation)
            return found or parked
        return parked

    def record_head(self, parked: ParkedStream, head: int) -> None:
        """Remember that records up to ``head`` arrived (and were skipped) while parked."""
        if head <= parked.head:
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key=parked_key(parked.stream_id),
                UpdateExpression="SET head = :h, last_skipped_at = :t",
                ConditionExpression="attribute_exists(pk) AND head < :h",
                ExpressionAttributeValues={":h": {"N": str(head)}, ":t": {"S": utc_now_iso()}},
            )
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def get(self, stream_id: str) -> ParkedStream | None:
        item = self.client.get_item(TableName=self.table, Key=parked_key(stream_id), ConsistentRead=True).get("Item")
        return ParkedStream.from_item(item) if item else None

    def list(self, limit: int | None = None) -> list[ParkedStream]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": PARKED_PK}},
        }
        found: list[ParkedStream] = []
        while True:
            page = self.client.query(**request)
            found.extend(ParkedStream.from_item(item) for item in page.get("Items", ()))
            if (limit is not None and len(found) >= limit) or not page.get("LastEvaluatedKey"):
                return found[:limit] if limit is not None else found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def release(self, stream_id: str) -> None:
        """Delete the parked item (the caller replays the stream before and after)."""
        self.client.delete_item(TableName=self.table, Key=parked_key(stream_id))
