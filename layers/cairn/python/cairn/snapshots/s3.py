"""S3 SnapshotStore: one gzip JSON object per (stream, state schema version).

Key: ``<prefix><stream_id>/state-v<state_schema_version>.json.gz``. The latest snapshot is one
GET. The body repeats stream id and state schema version and is checked on load, so a snapshot
of another state model (or a misplaced object) is ignored, never mis-read.

``put`` never replaces a newer snapshot with an older one: it reads the stored version from
the object's metadata (HEAD) and writes with a compare-and-swap (``If-Match`` on the ETag it saw,
``If-None-Match: *`` when there was none), retrying if another writer got in between. Every S3
or decoding failure is a SnapshotError, so the command runtime falls back to a full replay.

``read_client`` (optional) serves ``get``: the command path gives it a one-attempt, 1 s budget
(``cairn.aws.SNAPSHOT_READ_CONFIG``) so a hanging S3 costs a second, then the replay runs;
``put`` (off the command path, in the snapshotter) keeps the ordinary client and its retries.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cairn.snapshots.base import Snapshot, SnapshotError, SnapshotStore

__all__ = ["S3SnapshotStore"]

logger = logging.getLogger(__name__)

FORMAT = 1
_VERSION_META = "stream-version"
_SCHEMA_META = "state-schema-version"
_MISSING = {"NoSuchKey", "404", "NotFound"}
_RACED = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


class S3SnapshotStore(SnapshotStore):
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "snapshots/",
        *,
        max_put_attempts: int = 5,
        read_client: Any = None,
    ):
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.client = client
        self.read_client = read_client or client
        self.bucket = bucket
        self.prefix = prefix
        self.max_put_attempts = max_put_attempts

    def key(self, stream_id: str, state_schema_version: int) -> str:
        return f"{self.prefix}{stream_id}/state-v{state_schema_version}.json.gz"

    def get(self, stream_id: str, state_schema_version: int) -> Snapshot | None:
        key = self.key(stream_id, state_schema_version)
        try:
            body = self.read_client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise SnapshotError(f"cannot read snapshot {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise SnapshotError(f"cannot read snapshot {key}: {exc}") from exc
        try:
            raw = json.loads(gzip.decompress(body))
            snapshot = Snapshot.from_dict(raw)
            fmt = raw.get("format", FORMAT)
        except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"corrupt snapshot {key}: {exc}") from exc
        if fmt != FORMAT or snapshot.stream_id != stream_id or snapshot.state_schema_version != state_schema_version:
            logger.warning(
                "ignoring snapshot %s: holds %s state v%s (format %s)",
                key,
                snapshot.stream_id,
                snapshot.state_schema_version,
                fmt,
            )
            return None
        return snapshot

    def put(self, snapshot: Snapshot, *, replace: bool = False) -> None:
        key = self.key(snapshot.stream_id, snapshot.state_schema_version)
        try:
            document = {"format": FORMAT, **snapshot.to_dict()}
            body = gzip.compress(json.dumps(document, separators=(",", ":"), allow_nan=False).encode(), 6)
        except (TypeError, ValueError) as exc:
            raise SnapshotError(f"snapshot state of {snapshot.stream_id} is not JSON-ready: {exc}") from exc
        try:
            for _ in range(self.max_put_attempts):
                etag = self._stored_etag_if_older(key, -1 if replace else snapshot.version)
                if etag is False:
                    return  # a snapshot at least as new is already stored
                condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                try:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ContentType="application/gzip",
                        Metadata={
                            _VERSION_META: str(snapshot.version),
                            _SCHEMA_META: str(snapshot.state_schema_version),
                        },
                        **condition,
                    )
                    return
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _RACED:
                        raise
                    # another writer stored a snapshot since our HEAD: look again
        except (ClientError, BotoCoreError) as exc:
            raise SnapshotError(f"cannot write snapshot {key}: {exc}") from exc
        raise SnapshotError(f"snapshot {key}: gave up after {self.max_put_attempts} concurrent writers")

    def _stored_etag_if_older(self, key: str, version: int) -> str | None | bool:
        """ETag of the stored object if it is older than ``version``; None if absent; False if
        what is stored is at least as new."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        try:
            stored = int(head.get("Metadata", {}).get(_VERSION_META, "-1"))
        except ValueError:
            stored = -1
        if version >= 0 and stored >= version:
            return False
        return head["ETag"]
