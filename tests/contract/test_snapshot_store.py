"""One contract for every SnapshotStore, subclassed for the in-memory and the S3 (moto) store."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from cairn.aws import client as aws_client
from cairn.snapshots import InMemorySnapshotStore, Snapshot, SnapshotError, SnapshotStore
from cairn.snapshots.s3 import S3SnapshotStore

STREAM = "ledger-0001"


def snap(version: int, *, schema: int = 1, stream_id: str = STREAM, **state: Any) -> Snapshot:
    return Snapshot(
        stream_id=stream_id,
        version=version,
        state_schema_version=schema,
        state={"balance": f"{version}.00", "tags": ["a", "b"], "nested": {"n": version}, **state},
        last_occurred_at=f"2026-01-01T00:00:{version % 60:02d}.000Z",
        taken_at="2026-01-02T00:00:00.000Z",
    )


class SnapshotStoreContract:
    @pytest.fixture
    def snapshots(self) -> SnapshotStore:
        raise NotImplementedError

    def test_missing_is_none(self, snapshots: SnapshotStore) -> None:
        assert snapshots.get(STREAM, 1) is None

    def test_round_trip(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(7))
        assert snapshots.get(STREAM, 1) == snap(7)

    def test_other_state_schema_version_is_ignored(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(7, schema=1))
        assert snapshots.get(STREAM, 2) is None
        snapshots.put(snap(3, schema=2))
        assert snapshots.get(STREAM, 2) == snap(3, schema=2)
        assert snapshots.get(STREAM, 1) == snap(7, schema=1)

    def test_newer_replaces_older(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(5))
        snapshots.put(snap(9))
        assert snapshots.get(STREAM, 1) == snap(9)

    def test_older_never_replaces_newer(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(9))
        snapshots.put(snap(5))
        snapshots.put(snap(9, marker="same version, other body"))
        assert snapshots.get(STREAM, 1) == snap(9)

    def test_an_unverifiable_snapshot_is_replaced_by_an_older_one(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(9))  # e.g. newer than the store after a point-in-time restore
        snapshots.put(snap(5), replace=True)
        assert snapshots.get(STREAM, 1) == snap(5)
        snapshots.put(snap(4))  # without replace the rule holds again
        assert snapshots.get(STREAM, 1) == snap(5)

    def test_the_hash_round_trips(self, snapshots: SnapshotStore) -> None:
        import dataclasses

        hashed = dataclasses.replace(snap(6), hash="ab" * 32)
        snapshots.put(hashed)
        assert snapshots.get(STREAM, 1) == hashed

    def test_streams_are_independent(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(4))
        snapshots.put(snap(2, stream_id="ledger-0002"))
        assert snapshots.get(STREAM, 1) == snap(4)
        assert snapshots.get("ledger-0002", 1) == snap(2, stream_id="ledger-0002")

    def test_returned_state_is_a_copy(self, snapshots: SnapshotStore) -> None:
        snapshots.put(snap(4))
        got = snapshots.get(STREAM, 1)
        assert got is not None
        got.state["nested"]["n"] = -1
        assert snapshots.get(STREAM, 1) == snap(4)


class TestInMemorySnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def snapshots(self) -> SnapshotStore:
        return InMemorySnapshotStore()


class TestS3SnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def snapshots(self, s3_client: Any, snapshot_bucket: str) -> S3SnapshotStore:
        return S3SnapshotStore(s3_client, snapshot_bucket)

    # -- S3 specifics ---------------------------------------------------------------------------
    def test_object_layout(self, snapshots: S3SnapshotStore) -> None:
        snapshots.put(snap(12, schema=3))
        key = f"snapshots/{STREAM}/state-v3.json.gz"
        assert snapshots.key(STREAM, 3) == key
        obj = snapshots.client.get_object(Bucket=snapshots.bucket, Key=key)
        assert obj["Metadata"] == {"stream-version": "12", "state-schema-version": "3"}
        body = json.loads(gzip.decompress(obj["Body"].read()))
        assert body["format"] == 1
        assert (body["stream_id"], body["version"], body["state_schema_version"]) == (STREAM, 12, 3)

    def test_latest_is_one_get(self, snapshots: S3SnapshotStore, call_log: Any) -> None:
        snapshots.put(snap(3))
        call_log.attach(snapshots.client)
        assert snapshots.get(STREAM, 1) == snap(3)
        assert call_log.calls == ["GetObject"]

    @pytest.mark.parametrize(
        "body",
        [
            {"format": 1, **snap(5, schema=2).to_dict()},  # another state model under this key
            {"format": 1, **snap(5, stream_id="ledger-9999").to_dict()},  # another stream's snapshot
            {"format": 2, **snap(5).to_dict()},  # a future format
        ],
        ids=["schema", "stream", "format"],
    )
    def test_misplaced_snapshot_is_ignored(self, snapshots: S3SnapshotStore, body: dict[str, Any]) -> None:
        snapshots.client.put_object(
            Bucket=snapshots.bucket, Key=snapshots.key(STREAM, 1), Body=gzip.compress(json.dumps(body).encode())
        )
        assert snapshots.get(STREAM, 1) is None

    @pytest.mark.parametrize(
        "body",
        [b"not gzip", gzip.compress(b"{not json"), gzip.compress(b'{"format": 1, "stream_id": "x"}')],
        ids=["gzip", "json", "fields"],
    )
    def test_corrupt_snapshot_is_a_snapshot_error(self, snapshots: S3SnapshotStore, body: bytes) -> None:
        snapshots.client.put_object(Bucket=snapshots.bucket, Key=snapshots.key(STREAM, 1), Body=body)
        with pytest.raises(SnapshotError, match="corrupt"):
            snapshots.get(STREAM, 1)

    def test_s3_failures_are_snapshot_errors(self, s3_client: Any) -> None:
        missing_bucket = S3SnapshotStore(s3_client, "no-such-bucket")
        with pytest.raises(SnapshotError):
            missing_bucket.get(STREAM, 1)
        with pytest.raises(SnapshotError):
            missing_bucket.put(snap(1))

    def test_state_must_be_json_ready(self, snapshots: S3SnapshotStore) -> None:
        bad = Snapshot(STREAM, 1, 1, {"x": object()}, "", "")
        with pytest.raises(SnapshotError, match="JSON"):
            snapshots.put(bad)

    def test_prefix_is_a_folder(self, s3_client: Any, snapshot_bucket: str) -> None:
        store = S3SnapshotStore(s3_client, snapshot_bucket, prefix="snaps")
        assert store.key(STREAM, 1) == f"snaps/{STREAM}/state-v1.json.gz"

    @pytest.mark.parametrize(("theirs", "expected"), [(20, 20), (6, 10)])
    def test_concurrent_writer_between_head_and_put(
        self, snapshots: S3SnapshotStore, theirs: int, expected: int
    ) -> None:
        """Compare-and-swap: whoever writes in between, the newest snapshot survives."""
        snapshots.put(snap(5))
        other = S3SnapshotStore(aws_client("s3"), snapshots.bucket)
        raced: list[int] = []

        def sneak_in(**_: Any) -> None:
            if not raced:
                raced.append(theirs)
                other.put(snap(theirs))

        snapshots.client.meta.events.register("before-call.s3.PutObject", sneak_in)
        snapshots.put(snap(10))
        assert raced == [theirs]
        assert snapshots.get(STREAM, 1) == snap(expected)
