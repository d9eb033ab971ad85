"""S3 ArchiveStore: segments and a manifest per stream under ``<prefix><stream_id>/``.

- ``<prefix><stream_id>/v<first>-<last>.jsonl.gz`` — a segment (deterministic bytes and key, so
  rewriting it after a crash changes nothing), written with the archive's storage class
  (Glacier Instant Retrieval by default: rare reads, millisecond access).
- ``<prefix><stream_id>/manifest.json`` — the manifest (S3 Standard: small, read on every cold
  read of an archived range), replaced only by compare-and-swap on its ETag.

``read_client`` serves the read path (a command, a query, a projection's gap repair): give it a
short budget (:data:`cairn.aws.ARCHIVE_READ_CONFIG`) so a hanging S3 costs a bounded wait, then
ArchiveUnavailableError (503 + Retry-After at HTTP), never a hung request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cairn.archive.base import (
    ArchiveCorruptError,
    ArchiveStore,
    ArchiveUnavailableError,
    Manifest,
    ManifestConflictError,
    SegmentRef,
)

__all__ = ["DEFAULT_STORAGE_CLASS", "S3ArchiveStore"]

DEFAULT_STORAGE_CLASS = "GLACIER_IR"
_MISSING = {"NoSuchKey", "404", "NotFound"}
_RACED = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MANIFEST = "manifest.json"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ArchiveStore(ArchiveStore):
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "archive/",
        *,
        read_client: Any = None,
        storage_class: str | None = DEFAULT_STORAGE_CLASS,
    ):
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.client = client
        self.read_client = read_client or client
        self.bucket = bucket
        self.prefix = prefix
        self.storage_class = storage_class

    def segment_key(self, stream_id: str, first: int, last: int) -> str:
        return f"{self.prefix}{stream_id}/v{first:012d}-{last:012d}.jsonl.gz"

    def manifest_key(self, stream_id: str) -> str:
        return f"{self.prefix}{stream_id}/{_MANIFEST}"

    def put_segment(self, stream_id: str, key: str, body: bytes) -> None:
        extra = {"StorageClass": self.storage_class} if self.storage_class else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/gzip", **extra)
        except (ClientError, BotoCoreError) as exc:
            raise ArchiveUnavailableError(stream_id, 0, None, f"cannot write segment {key}: {exc}") from exc

    def get_segment(self, stream_id: str, ref: SegmentRef) -> bytes:
        try:
            return self.read_client.get_object(Bucket=self.bucket, Key=ref.key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ArchiveCorruptError(
                    stream_id, ref.first_version, ref.last_version, f"segment {ref.key} is missing"
                ) from exc
            raise ArchiveUnavailableError(
                stream_id, ref.first_version, ref.last_version, f"cannot read segment {ref.key}: {_code(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise ArchiveUnavailableError(
                stream_id, ref.first_version, ref.last_version, f"cannot read segment {ref.key}: {exc}"
            ) from exc

    def get_manifest(self, stream_id: str) -> Manifest | None:
        key = self.manifest_key(stream_id)
        try:
            response = self.read_client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise ArchiveUnavailableError(stream_id, 1, None, f"cannot read manifest {key}: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise ArchiveUnavailableError(stream_id, 1, None, f"cannot read manifest {key}: {exc}") from exc
        try:
            return Manifest.from_json(stream_id, body, response.get("ETag"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveCorruptError(stream_id, 1, None, f"manifest {key} undecodable: {exc}") from exc

    def put_manifest(self, manifest: Manifest) -> Manifest:
        key = self.manifest_key(manifest.stream_id)
        condition = {"IfMatch": manifest.etag} if manifest.etag else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=manifest.to_json(), ContentType="application/json", **condition
            )
        except ClientError as exc:
            if _code(exc) in _RACED:
                raise ManifestConflictError(f"manifest of {manifest.stream_id!r} changed since it was read") from exc
            raise ArchiveUnavailableError(manifest.stream_id, 1, None, f"cannot write manifest {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise ArchiveUnavailableError(manifest.stream_id, 1, None, f"cannot write manifest {key}: {exc}") from exc
        return Manifest(manifest.stream_id, manifest.segments, response.get("ETag"))

    def streams(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(self.prefix) :]
                stream_id, _, name = rest.rpartition("/")
                if name == _MANIFEST and stream_id:
                    yield stream_id
