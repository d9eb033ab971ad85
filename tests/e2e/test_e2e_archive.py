"""The archive tier from the outside (issue 13): `make archive` against the running local runtime
moves a snapshotted account's old events to S3; every HTTP answer stays the same, appends go on,
`make verify` passes across both tiers, the tamper detector stays quiet; a corrupted segment is a
503 problem with Retry-After naming the stream and range, never a shorter history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, wait_for

pytestmark = pytest.mark.e2e


def _outputs_file(cairn) -> Path:
    running = os.environ.get("CAIRN_E2E_OUTPUTS")
    return Path(running) if running else cairn.state_dir / "outputs.json"


def _tool(cairn, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "cairn_tools", *args, "--outputs", str(_outputs_file(cairn))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_make_archive_changes_no_answer(cairn, staff):
    owner = cairn.token(f"erin-{uuid.uuid4().hex[:6]}")
    status, _, body = cairn.request("POST", "/accounts", {"currency": "USD"}, owner)
    assert status == 201, body
    account = body["account_id"]
    for _ in range(8):
        assert cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "1.00"}, owner)[0] == 200
    status, _, body = cairn.request("POST", "/ops/snapshots", {"stream_id": account}, staff)
    assert status in (200, 201, 202) and body["version"] == 9, body
    snapshots = cairn.outputs["SnapshotBucketName"]
    wait_for("the snapshot", lambda: cairn.aws("s3").list_objects_v2(Bucket=snapshots, Prefix=f"snapshots/{account}/").get("Contents"))
    paths = ["", "/history?version=3", "/events?after=0", "/verification"]
    cairn.wait_idle()  # the read model (GET /accounts/{id}) has every deposit
    before = {p: cairn.request("GET", f"/accounts/{account}{p}", token=owner)[2] for p in paths}

    done = _tool(cairn, "archive", account, "--older-than-days", "0", "--settle-seconds", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    ddb = cairn.aws("dynamodb")
    held = ddb.query(
        TableName=cairn.outputs["EventsTableName"], KeyConditionExpression="stream_id = :s",
        ExpressionAttributeValues={":s": {"S": account}}, ConsistentRead=True,
    )["Items"]
    assert [int(i["version"]["N"]) for i in held] == [9]  # 1..8 are in S3 now

    after = {p: cairn.request("GET", f"/accounts/{account}{p}", token=owner)[2] for p in paths}
    assert after == before
    status, _, body = cairn.request("POST", f"/accounts/{account}/deposits", {"amount": "1.00"}, owner)
    assert (status, body["version"], body["balance"]) == (200, 10, "9.00")
    # a projection rebuilt from the table: the archived prefix is a gap repaired from the archive
    cairn.wait_idle()
    current = cairn.request("GET", f"/accounts/{account}", token=owner)[2]
    assert (current["version"], current["balance"]) == (10, "9.00")
    rebuilt = _tool(cairn, "rebuild", "account_view", "--settle-seconds", "0", "--keep-previous", "--json")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    (run,) = json.loads(rebuilt.stdout)["rebuilds"]
    checkpoint = ddb.get_item(  # the new generation applied all ten events: 1..8 came from S3
        TableName=cairn.outputs["AccountViewTableName"],
        Key={"pk": {"S": f"g{run['generation']}#s#{account}"}, "sk": {"S": "cp"}}, ConsistentRead=True,
    )["Item"]
    assert int(checkpoint["version"]["N"]) == 10
    verified = _tool(cairn, "verify")  # other tests of the session may break their own streams
    assert verified.returncode in (0, 1) and account not in verified.stdout, verified.stdout + verified.stderr

    # a segment changed in the bucket: the range it held is a 503, never a shorter history
    s3, bucket = cairn.aws("s3"), cairn.outputs["ArchiveBucketName"]
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"archive/{account}/")["Contents"]
              if o["Key"].endswith(".jsonl.gz")]
    s3.put_object(Bucket=bucket, Key=key, Body=b"\x1f\x8b not a segment")
    status, headers, body = cairn.request("GET", f"/accounts/{account}/history?version=2", token=owner)
    assert status == 503 and int(headers["Retry-After"]) > 0, body
    assert account in body["detail"] and "1..8" in body["detail"]
    broken = _tool(cairn, "verify")
    assert broken.returncode == 1 and f"BROKEN     {account}: archive:" in broken.stdout, broken.stdout
