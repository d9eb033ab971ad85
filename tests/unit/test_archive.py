"""The archive tier (issue 13): archiving any prefix changes no answer of any read API; the
archiver survives a crash after every step; archive, append and a rebuild's reads run concurrently; a missing or
corrupt segment is a named error, never a shorter history; warm and snapshot-based commands
make no archive call. Real parts: boto3 against in-process moto (DynamoDB + S3)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cairn.archive import ArchiveCorruptError, ArchiveUnavailableError, Manifest
from cairn.archive.archiver import ArchivePolicy, Archiver
from cairn.archive.s3 import S3ArchiveStore
from cairn.archive.store import ArchivedEventStore
from cairn.commands import CommandRuntime
from cairn.commands.cache import StateCache
from cairn.events import NewEvent
from cairn.integrity import verify_items
from cairn.snapshots.memory import InMemorySnapshotStore
from cairn.store import ConcurrencyError
from cairn.store.dynamodb import DynamoDBEventStore
from tests.budget import examples
from tests.contract.ledger import Deposit, Deposited, Noted, Open, build_registry
from tests.contract.ledger import decider as ledger_decider

BUCKET = "cairn-archive"
FUTURE = lambda: datetime.now(UTC) + timedelta(days=3650)  # noqa: E731 - everything is "old"
counter = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def archive(s3_client: Any) -> S3ArchiveStore:
    s3_client.create_bucket(Bucket=BUCKET)
    return S3ArchiveStore(s3_client, BUCKET, storage_class=None)  # moto: storage class is metadata only


@pytest.fixture
def plain(dynamodb_client: Any, event_tables: Any) -> DynamoDBEventStore:
    return DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency)


def tiered(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, **kw: Any) -> ArchivedEventStore:
    return ArchivedEventStore(
        build_registry(), dynamodb_client, event_tables.events, event_tables.idempotency, archive=archive, **kw
    )


def fill(store: DynamoDBEventStore, stream: str, n: int, *, batch: int = 7) -> None:
    version = store.current_version(stream)
    while version < n:
        events = [
            NewEvent(data=Deposited(amount=Decimal(version + i + 1), ref=f"{stream}-{version + i}", currency="EUR"))
            if (version + i) % 5
            else NewEvent(data=Noted(text=f"n{version + i}"))
            for i in range(min(batch, n - version))
        ]
        store.append(stream, events, version)
        version += len(events)


def hash_at(store: DynamoDBEventStore, stream: str, version: int) -> str:
    item = store.client.get_item(
        TableName=store.events_table, Key={"stream_id": {"S": stream}, "version": {"N": str(version)}}
    )["Item"]
    return item["hash"]["S"]


def archiver_for(store: DynamoDBEventStore, archive: S3ArchiveStore, keep_from: int, **kw: Any) -> Archiver:
    """An archiver that archives versions 1..keep_from-1 (a verified 'snapshot' at keep_from)."""
    snapshot = {}

    def snapshot_of(stream: str) -> tuple[int, str] | None:
        if stream not in snapshot:
            snapshot[stream] = (keep_from, hash_at(store, stream, keep_from))
        return snapshot[stream]

    policy = ArchivePolicy(older_than_days=None, require_snapshot=True, settle_seconds=0, segment_events=kw.pop("segment", 5))
    return Archiver(store.client, store.events_table, archive, default=policy, snapshot_of=snapshot_of, now=FUTURE, **kw)


def stored_versions(store: DynamoDBEventStore, stream: str) -> list[int]:
    """Versions DynamoDB itself still holds (a plain Query, no archive)."""
    page = store.client.query(
        TableName=store.events_table,
        KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": stream}},
        ConsistentRead=True,
    )
    return [int(i["version"]["N"]) for i in page["Items"]]


def answers(store: DynamoDBEventStore, stream: str, n: int, times: list[str], hashes: dict[int, str]) -> dict[str, Any]:
    """What every read API says about a stream."""
    out: dict[str, Any] = {
        "read": [(e.version, e.event_id, e.hash, e.prev_hash, e.data) for e in store.read(stream)],
        "raw": list(store.raw_items(stream)),
        "fold": store.fold(stream, (), lambda s, e: (*s, e)),
        "fold_verified": store.fold(stream, (), lambda s, e: (*s, e), verify_links=True),
        "current": store.current_version(stream),
    }
    for after in sorted({0, 1, n // 3, n // 2, n - 1}):
        out[f"after{after}"] = [e.version for e in store.read(stream, after=after)]
        out[f"fold_after{after}"] = store.fold(stream, (), lambda s, e: (*s, e), after=after)
        for hi in sorted({after + 1, n // 2 + 1, n}):
            out[f"range{after}-{hi}"] = [e.hash for e in store.read(stream, after=after, up_to_version=hi)]
    for v in sorted({1, n // 2, n}):
        out[f"anchor{v}"] = store.fold(stream, (), lambda s, e: (*s, e), after=v, anchor=hashes[v])
    for t in times:
        out[f"time{t}"] = [e.version for e in store.read(stream, up_to_time=t)]
    out["verify"] = verify_items(stream, store.raw_items(stream))
    return out


# -- the property: archiving any prefix changes no answer -------------------------------------------
@settings(
    max_examples=examples(8),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each example is a moto round
)
@given(n=st.integers(2, 24), cut=st.floats(0, 1), segment=st.integers(1, 12), page=st.sampled_from([None, 3, 7]))
def test_archiving_any_prefix_changes_no_answer(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, n: int, cut: float, segment: int, page: int | None
) -> None:
    stream = f"ledger-p{next(counter)}"
    plain = DynamoDBEventStore(build_registry(), dynamodb_client, event_tables.events, page_size=page)
    fill(plain, stream, n)
    events = list(plain.read(stream))
    times = sorted({e.occurred_at for e in events})
    times = [times[0], times[len(times) // 2], times[-1]]
    hashes = {e.version: e.hash for e in events}
    before = answers(plain, stream, n, times, hashes)
    keep_from = 1 + int(cut * (n - 1))  # archive 1..keep_from-1: none up to all but the head
    report = archiver_for(plain, archive, keep_from, segment=segment).archive_stream(stream)
    assert report.archived_through == keep_from - 1
    assert stored_versions(plain, stream) == list(range(keep_from, n + 1))
    store = tiered(dynamodb_client, event_tables, archive, page_size=page)
    assert answers(store, stream, n, times, hashes) == before


# -- warm and snapshot-based commands never touch the archive ------------------------------------------
def test_warm_and_snapshot_commands_make_no_archive_call(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, s3_client: Any, call_log: Any
) -> None:
    stream = "ledger-warm"
    writer = tiered(dynamodb_client, event_tables, archive)
    runtime = CommandRuntime(writer, ledger_decider(), None, StateCache())
    runtime.handle(stream, Open(owner="o"))
    for i in range(1, 30):
        runtime.handle(stream, Deposit(amount=Decimal(1), ref=f"r{i}"))
    snapshots = InMemorySnapshotStore()
    snapshot_runtime = CommandRuntime(tiered(dynamodb_client, event_tables, archive), ledger_decider(), snapshots, StateCache(0))
    snapshot_runtime.take_snapshot(stream)
    archiver_for(writer, archive, 30).archive_stream(stream)
    assert stored_versions(writer, stream) == [30]
    call_log.attach(s3_client)

    runtime.handle(stream, Deposit(amount=Decimal(1), ref="warm"))  # warm: cached state and head
    assert writer.archive_reads == 0

    cold = tiered(dynamodb_client, event_tables, archive)  # snapshot-based: a cold instance
    result = CommandRuntime(cold, ledger_decider(), snapshots, StateCache(0)).handle(
        stream, Deposit(amount=Decimal(1), ref="snap")
    )
    version, state = result.version, result.state
    assert version == 32 and state.balance == Decimal(31)
    assert cold.archive_reads == 0 and call_log.calls == []

    replay = tiered(dynamodb_client, event_tables, archive)  # no snapshot: reads the archive
    version, state = CommandRuntime(replay, ledger_decider(), None, StateCache(0)).load(stream)
    assert (version, state.balance) == (32, Decimal(31))
    assert replay.archive_reads == 1 and "GetObject" in call_log.calls


# -- crash after every step, rerun: no loss, no duplicates -------------------------------------------
class Crash(Exception):
    pass


def test_archiver_crash_after_every_step_then_rerun(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore, s3_client: Any
) -> None:
    n, keep_from = 13, 11
    steps = 0
    for crash_at in itertools.count(1):
        stream = f"ledger-crash{crash_at}"
        fill(plain, stream, n)
        original = [(e.version, e.hash) for e in plain.read(stream)]
        taken = itertools.count(1)

        def step(name: str, crash_at: int = crash_at, taken: Any = taken) -> None:
            if next(taken) == crash_at:
                raise Crash(name)

        try:
            archiver_for(plain, archive, keep_from, step=step).archive_stream(stream)
            crashed = False
        except Crash:
            crashed = True
        reader = tiered(dynamodb_client, event_tables, archive)
        assert [(e.version, e.hash) for e in reader.read(stream)] == original  # even mid-run
        again = archiver_for(plain, archive, keep_from).archive_stream(stream)
        assert again.archived_through == keep_from - 1
        assert stored_versions(plain, stream) == list(range(keep_from, n + 1))
        manifest = archive.get_manifest(stream)
        assert manifest is not None and not manifest.problems()
        keys = [s.key for s in manifest.segments]
        assert len(keys) == len(set(keys)) == 2  # 10 events, 5 a segment
        listed = s3_client.list_objects_v2(Bucket=BUCKET, Prefix=f"archive/{stream}/")["Contents"]
        assert sorted(o["Key"] for o in listed if o["Key"].endswith(".gz")) == sorted(keys)
        reader = tiered(dynamodb_client, event_tables, archive)
        assert [(e.version, e.hash) for e in reader.read(stream)] == original
        if not crashed:
            break
        steps = crash_at
    assert steps == 2 * 3 + 10  # written, verified, manifest per segment + one delete per event


# -- concurrent archive + append ---------------------------------------------------------------------
def test_concurrent_archive_append_and_rebuild(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore) -> None:
    stream = "ledger-race"
    writer = tiered(dynamodb_client, event_tables, archive)
    done = threading.Event()
    read_twice = threading.Event()  # the rebuild has read under the other two: not left to timing
    errors: list[BaseException] = []

    def append() -> None:
        try:
            runtime = CommandRuntime(writer, ledger_decider(), None, StateCache())
            runtime.handle(stream, Open(owner="o"))
            for i in range(60):
                if i == 30:
                    read_twice.wait(timeout=60)
                runtime.handle(stream, Deposit(amount=Decimal(1), ref=f"c{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def archive_loop() -> None:
        policy = ArchivePolicy(older_than_days=0, require_snapshot=False, settle_seconds=0, segment_events=4)
        archiver = Archiver(dynamodb_client, event_tables.events, archive, default=policy, now=FUTURE)
        try:
            while not done.is_set():
                archiver.archive_stream(stream)
            archiver.archive_stream(stream)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    seen: list[int] = []

    def rebuild_loop() -> None:
        """A rebuild reads the whole history from version 0 while items move to S3 under it: every
        read is a contiguous, chained prefix 1..k, and k never goes back."""
        rebuilder = tiered(dynamodb_client, event_tables, archive)
        try:
            while not done.is_set():
                events = list(rebuilder.read(stream))
                versions = [e.version for e in events]
                assert versions == list(range(1, len(versions) + 1)), versions
                assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
                assert not seen or len(versions) >= seen[-1]
                seen.append(len(versions))
                if len(seen) >= 2:
                    read_twice.set()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (append, archive_loop, rebuild_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:1]
    assert len(seen) >= 2  # the rebuild read while both others ran
    reader = tiered(dynamodb_client, event_tables, archive)
    events = list(reader.read(stream))
    assert [e.version for e in events] == list(range(1, 62))
    refs = [e.data.ref for e in events if isinstance(e.data, Deposited)]
    assert len(refs) == len(set(refs))
    assert verify_items(stream, reader.raw_items(stream)).intact
    assert stored_versions(writer, stream) == [61]  # everything but the head went


def test_a_stale_head_never_recreates_an_archived_version(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore
) -> None:
    stream = "ledger-stale"
    clock = Clock()
    stale = tiered(dynamodb_client, event_tables, archive, clock=clock)
    fill(stale, stream, 5)  # knows head 5
    fill(plain, stream, 20)  # another instance moves on
    archiver_for(plain, archive, 19).archive_stream(stream)  # 1..18 leave DynamoDB
    clock.now += stale.head_max_age + 1  # the archiver's settle time has passed: the head expired
    with pytest.raises(ConcurrencyError) as raised:
        stale.append(stream, [NewEvent(data=Noted(text="late"))], 5)
    assert raised.value.current_version == 20
    assert [e.version for e in stale.read(stream)] == list(range(1, 21))


def test_settle_time_keeps_fresh_events(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore) -> None:
    stream = "ledger-fresh"
    fill(plain, stream, 10)
    policy = ArchivePolicy(older_than_days=0, require_snapshot=False)  # default settle: 45 s
    report = Archiver(dynamodb_client, event_tables.events, archive, default=policy).archive_stream(stream)
    assert report.archived_through == 0 and stored_versions(plain, stream) == list(range(1, 11))
    later = lambda: datetime.now(UTC) + timedelta(minutes=3)  # noqa: E731
    report = Archiver(dynamodb_client, event_tables.events, archive, default=policy, now=later).archive_stream(stream)
    assert report.archived_through == 9


def test_age_policy_per_aggregate_type(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore) -> None:
    fill(plain, "ledger-a", 6)
    fill(plain, "other-a", 6)
    policies = {"ledger": ArchivePolicy(older_than_days=30, require_snapshot=False, settle_seconds=0)}
    soon = lambda: datetime.now(UTC) + timedelta(days=29)  # noqa: E731
    assert Archiver(dynamodb_client, event_tables.events, archive, policies=policies, now=soon).run().events_archived == 0
    late = lambda: datetime.now(UTC) + timedelta(days=31)  # noqa: E731
    report = Archiver(dynamodb_client, event_tables.events, archive, policies=policies, now=late).run()
    assert [(s.stream_id, s.archived_through) for s in report.streams] == [("ledger-a", 5)]
    assert stored_versions(plain, "other-a") == list(range(1, 7))  # no policy: never archived


def test_an_unverified_snapshot_archives_nothing(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore) -> None:
    fill(plain, "ledger-s", 8)
    policy = ArchivePolicy(older_than_days=0, require_snapshot=True, settle_seconds=0)
    archiver = Archiver(
        dynamodb_client, event_tables.events, archive, default=policy, now=FUTURE, snapshot_of=lambda s: (6, "f" * 64)
    )
    assert archiver.archive_stream("ledger-s").archived_through == 0


# -- faults: corrupt, missing, unreachable -------------------------------------------------------------
@pytest.fixture
def archived(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore) -> str:
    stream = "ledger-broken"
    fill(plain, stream, 12)
    archiver_for(plain, archive, 11, segment=5).archive_stream(stream)  # segments 1-5, 6-10
    return stream


def test_corrupt_segment_is_a_named_error(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, s3_client: Any, archived: str) -> None:
    key = archive.segment_key(archived, 6, 10)
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=b"not gzip")
    store = tiered(dynamodb_client, event_tables, archive)
    assert [e.version for e in store.read(archived, after=10)] == [11, 12]  # the suffix is fine
    with pytest.raises(ArchiveCorruptError) as raised:
        list(store.read(archived))
    assert raised.value.stream_id == archived and (raised.value.first, raised.value.last) == (6, 10)
    assert "ledger-broken" in str(raised.value) and "6..10" in str(raised.value)
    with pytest.raises(ArchiveCorruptError):
        store.fold(archived, 0, lambda s, e: s + 1)


def test_missing_segment_is_a_named_error(dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, s3_client: Any, archived: str) -> None:
    s3_client.delete_object(Bucket=BUCKET, Key=archive.segment_key(archived, 1, 5))
    store = tiered(dynamodb_client, event_tables, archive)
    with pytest.raises(ArchiveCorruptError, match="missing") as raised:
        list(store.read(archived, up_to_version=3))
    assert (raised.value.first, raised.value.last) == (1, 5)  # the segment that holds 1..3


def test_a_hole_the_manifest_does_not_cover_reads_as_tampering(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, s3_client: Any, archived: str
) -> None:
    """Without a manifest the missing versions were never archived: the chain checks report them,
    exactly as on the plain store (the verification route stays a 200 naming the first bad version)."""
    from cairn.store import CorruptEventError

    s3_client.delete_object(Bucket=BUCKET, Key=archive.manifest_key(archived))
    store = tiered(dynamodb_client, event_tables, archive)
    with pytest.raises(CorruptEventError, match="chain broken"):
        store.fold(archived, 0, lambda s, e: s + 1, verify_links=True)
    verdict = verify_items(archived, store.raw_items(archived))
    assert not verdict.intact and verdict.first_bad_version == 1


class Unreachable:
    """An S3 client whose reads time out (what a hanging S3 looks like after the bounded wait)."""

    def get_object(self, **_: Any) -> Any:
        from botocore.exceptions import ReadTimeoutError

        raise ReadTimeoutError(endpoint_url="https://s3.example")


def test_unreachable_s3_is_unavailable_not_shorter(dynamodb_client: Any, event_tables: Any, s3_client: Any, archived: str) -> None:
    down = S3ArchiveStore(s3_client, BUCKET, read_client=Unreachable())
    store = tiered(dynamodb_client, event_tables, down)
    with pytest.raises(ArchiveUnavailableError) as raised:
        list(store.read(archived))
    assert raised.value.stream_id == archived
    assert [e.version for e in store.read(archived, after=10)] == [11, 12]  # no archive needed: fine


def test_archive_reads_have_a_bounded_budget() -> None:
    from cairn.aws import ARCHIVE_READ_CONFIG

    attempts = ARCHIVE_READ_CONFIG.retries["total_max_attempts"]
    assert attempts * (ARCHIVE_READ_CONFIG.connect_timeout + ARCHIVE_READ_CONFIG.read_timeout) <= 6


def test_a_manifest_that_does_not_chain_is_refused(archive: S3ArchiveStore, archived: str, plain: DynamoDBEventStore) -> None:
    manifest = archive.get_manifest(archived)
    assert manifest is not None
    broken = Manifest(archived, (manifest.segments[1],), manifest.etag)
    archive.put_manifest(broken)
    with pytest.raises(ArchiveCorruptError, match="expected to start at 1"):
        archiver_for(plain, archive, 11).archive_stream(archived)


# -- HTTP: an unreadable archived range is a 503 problem with Retry-After ------------------------------
@pytest.mark.parametrize("error", [ArchiveCorruptError, ArchiveUnavailableError])
def test_archive_errors_are_503_problems(error: type) -> None:
    import json

    from cairn.http import HttpService

    service = HttpService("tarchive", authenticated=False)

    @service.get("/streams/<id>")
    def history(id: str) -> dict:
        raise error(id, 6, 10, "segment x fails its checksum")

    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/streams/order-1",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": "/streams/order-1"}, "stage": "$default", "requestId": "r"},
        "isBase64Encoded": False,
    }
    response = service.handler(event)
    assert response["statusCode"] == 503 and int(response["headers"]["Retry-After"]) > 0
    body = json.loads(response["body"])
    assert body["type"].endswith("/service-unavailable") and "order-1" in body["detail"] and "6..10" in body["detail"]


# -- removal records: the archiver's are recognised, the others are tamper findings --------------------
def test_tamper_detector_recognises_archiver_removals(archive: S3ArchiveStore, archived: str) -> None:
    from cairn_platform import tamper

    def remove(stream: str, version: int) -> dict[str, Any]:
        keys = {"stream_id": {"S": stream}, "version": {"N": str(version)}}
        return {"eventName": "REMOVE", "dynamodb": {"Keys": keys, "SequenceNumber": str(version)}}

    records = [remove(archived, 3), remove(archived, 10), remove(archived, 11), remove("ledger-other", 1)]
    findings = tamper.inspect(records, archive=archive)
    assert [(f["stream_id"], f["version"]) for f in findings] == [(archived, 11), ("ledger-other", 1)]
    assert len(tamper.inspect(records)) == 4  # no archive configured: every removal is reported


def test_projections_ignore_removal_records() -> None:
    from cairn.projections.consumer import group_records

    keys = {"stream_id": {"S": "ledger-1"}, "version": {"N": "1"}}
    remove = {"eventName": "REMOVE", "dynamodb": {"Keys": keys, "SequenceNumber": "1"}}
    assert group_records([remove], lambda image: pytest.fail("a removal was decoded")) == ({}, {})


# -- make verify over both tiers; make archive ---------------------------------------------------------
def test_verify_joins_archived_prefixes_and_reports_disagreements(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, s3_client: Any, archived: str
) -> None:
    from cairn.archive.audit import join_archived
    from cairn.integrity.audit import scan_streams, verify_store

    streams = scan_streams(dynamodb_client, event_tables.events)
    assert not verify_store(streams).ok  # DynamoDB alone: versions 1..10 are missing
    assert join_archived(archive, streams) == []
    assert verify_store(streams).ok and [int(i["version"]["N"]) for i in streams[archived]] == list(range(1, 13))

    s3_client.put_object(Bucket=BUCKET, Key=archive.segment_key(archived, 6, 10), Body=b"\x1f\x8b tampered")
    streams = scan_streams(dynamodb_client, event_tables.events)
    problems = join_archived(archive, streams)
    assert [stream for stream, _ in problems] == [archived] and "6..10" in problems[0][1]


def test_make_archive_command(
    dynamodb_client: Any, event_tables: Any, archive: S3ArchiveStore, plain: DynamoDBEventStore, snapshot_bucket: str, tmp_path: Any
) -> None:
    from cairn.snapshots import Snapshot
    from cairn.snapshots.s3 import S3SnapshotStore
    from cairn_tools.archive import main

    fill(plain, "ledger-cli", 9)
    S3SnapshotStore(archive.client, snapshot_bucket).put(
        Snapshot("ledger-cli", 7, 1, {"balance": "1"}, "", "", hash=hash_at(plain, "ledger-cli", 7))
    )
    fill(plain, "ledger-nosnap", 9)
    common = ["--events-table", event_tables.events, "--bucket", BUCKET, "--snapshot-bucket", snapshot_bucket,
              "--outputs", str(tmp_path / "no-outputs.json")]  # never a running `make dev`
    assert main([*common, "--older-than-days", "0", "--settle-seconds", "0", "--json"]) == 0
    assert stored_versions(plain, "ledger-cli") == [7, 8, 9]
    assert stored_versions(plain, "ledger-nosnap") == list(range(1, 10))
    assert main([*common, "--older-than-days", "0"]) == 0  # a rerun: nothing more to do


def test_archive_unavailable_is_transient_corrupt_is_not() -> None:
    from cairn.retry import is_transient

    assert is_transient(ArchiveUnavailableError("order-1", 1, 5, "timed out"))  # projections retry, not park
    assert not is_transient(ArchiveCorruptError("order-1", 1, 5, "checksum"))
