"""S3 down: snapshots are an optimisation, so commands, queries and consumers carry on without them.

An outage makes every S3 call of the code under test fail on every attempt (throttling 503
SlowDown, 500, timeouts): the command runtime must fall back to replaying the stream, the
snapshotter must skip (never block the shard), and the answers must be the ones a healthy S3
gives.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.reliability.faults import Outage
from tests.reliability.scenarios import ACCOUNT_STEPS, ORDER_STEPS, apis, normalized, run
from tests.reliability.world import check_store, deliver, one_shard

OUTAGE_KINDS = ("throttle", "server-error", "timeout")


@pytest.mark.parametrize("kind", OUTAGE_KINDS)
def test_commands_answer_exactly_as_with_s3_up(new_world, kind):
    steps = ORDER_STEPS + ACCOUNT_STEPS
    with new_world() as world:
        healthy = run(world, steps, cold_each_step=True)
        want = {s: normalized(r, healthy.ids) for s, r in healthy.finals.items()}
    with new_world() as world:
        with world.injector.armed(outages=(Outage("s3", kind),)):
            outcome = run(world, steps, cold_each_step=True)
            s3_calls = [c for c in world.injector.calls if c.service == "s3"]
            failed = {f.call.index for f in world.injector.fired}
        assert len(outcome.attempts) == len(steps)  # not one retry needed, no 503
        assert {s: normalized(r, outcome.ids) for s, r in outcome.finals.items()} == want
        assert len(s3_calls) >= len(steps) and {c.index for c in s3_calls} <= failed
        check_store(world)


def test_a_stored_snapshot_is_used_when_s3_is_up_and_replaced_by_a_replay_when_it_is_down(world):
    """An account with a snapshot at version 40: with S3 up a cold command reads the snapshot and
    the tail; with S3 down (the GET throttled on its one attempt) it replays the whole stream;
    both answers are right."""
    from accounts.app import runtime

    api = apis()["accounts"]
    opened = api.post("/accounts", {"currency": "USD"}, user="dora", headers={"Idempotency-Key": "open"})
    account = opened.json["account_id"]
    for _ in range(39):
        assert api.post(f"/accounts/{account}/deposits", {"amount": "1.25"}, user="dora").status == 200
    snapshot = runtime().take_snapshot(account)
    assert snapshot is not None and snapshot.version == 40
    for _ in range(5):
        assert api.post(f"/accounts/{account}/deposits", {"amount": "2.00"}, user="dora").status == 200

    from tests.reliability.world import cold_start

    answers = {}
    for label, outages in (("up", ()), ("down", (Outage("s3", "throttle"),))):
        cold_start()
        with world.injector.armed(outages=outages):
            reply = api.post(f"/accounts/{account}/deposits", {"amount": "0.50"}, user="dora")
            trace = world.injector.trace()
            failed = [f.call.operation for f in world.injector.fired]
        assert reply.status == 200, reply.text
        answers[label] = reply.json
        assert [c.operation for c in trace[:2]] == ["GetObject", "Query"], trace  # snapshot (or not), tail
        after = int(trace[1].request()["ExpressionAttributeValues"][":lo"]["N"]) - 1
        # the tail from the snapshot's own event (its hash verifies the snapshot) / everything
        assert after == (39 if label == "up" else 0)
        # a snapshot read gets one attempt (SNAPSHOT_READ_CONFIG): a silent S3 means "replay now"
        assert failed == ([] if label == "up" else ["GetObject"]), failed
    assert answers["up"]["version"] == 46 and answers["down"]["version"] == 47
    assert Decimal(answers["down"]["balance"]) - Decimal(answers["up"]["balance"]) == Decimal("0.50")
    assert Decimal(answers["down"]["balance"]) == Decimal("1.25") * 39 + Decimal("2.00") * 5 + Decimal("1.00")


def test_the_snapshotter_retries_only_the_due_stream_while_s3_is_down(world):
    """A batch where one account is due for a snapshot (version 5 with ``account=5``) and another
    is not: with S3 down, only the due stream's lowest record is reported (the mapping retries
    it, bounded by its retry attempts; the projections have their own mappings and never wait);
    when S3 is back the retry takes the snapshot."""
    import os

    from cairn_platform.snapshotter import handler
    from tests.functional.conftest import LambdaContext

    os.environ["SNAPSHOT_EVERY"] = "account=5"
    try:
        api = apis()["accounts"]
        due = api.post("/accounts", {"currency": "USD"}, user="erin").json["account_id"]
        other = api.post("/accounts", {"currency": "USD"}, user="erin").json["account_id"]
        for _ in range(4):
            api.post(f"/accounts/{due}/deposits", {"amount": "3.00"}, user="erin")
        api.post(f"/accounts/{other}/deposits", {"amount": "3.00"}, user="erin")
        records = world.stream_records("account-")
        due_records = [r for r in records if r["dynamodb"]["Keys"]["stream_id"]["S"] == due]
        with world.injector.armed(outages=(Outage("s3", "server-error"),)):
            response = handler({"Records": records}, LambdaContext())
            assert world.injector.fired
        reported = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        assert reported == [due_records[0]["dynamodb"]["SequenceNumber"]]
        assert world.s3.list_objects_v2(Bucket=world.env["SNAPSHOT_BUCKET"]).get("KeyCount", 0) == 0

        position = next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == reported[0])
        stats = deliver(handler, one_shard(records[position:]), batch_size=10)  # S3 is back
        assert stats.partial_failures == 0
        listed = world.s3.list_objects_v2(Bucket=world.env["SNAPSHOT_BUCKET"])
        assert [o["Key"].split("/")[1] for o in listed.get("Contents", [])] == [due]
    finally:
        os.environ["SNAPSHOT_EVERY"] = world.env["SNAPSHOT_EVERY"]
