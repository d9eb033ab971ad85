"""The log proves itself (issue 11): items edited, deleted and inserted behind the store's back
are caught by GET …/verification, by `cairn_tools.verify` (chain + the latest digest) and by the
tamper detector on the table's stream. Real handlers on in-process moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, Projector

STAFF = {"user": "sam", "groups": ["staff"]}


def create(api: Api, user: str = "alice") -> str:
    reply = api.post("/orders", ORDER_BODY, user=user)
    assert reply.status == 201, reply.text
    return reply.json["order_id"]


def lifecycle(api: Api, user: str = "alice") -> str:
    """An order with three events."""
    order_id = create(api, user)
    reply = api.post(f"/orders/{order_id}/payment", {"payment_id": "p-1", "amount": ORDER_TOTAL}, **STAFF)
    assert reply.status == 200, reply.text
    reply = api.post(f"/orders/{order_id}/shipment", {"tracking": "T-1"}, **STAFF)
    assert reply.status == 200, reply.text
    return order_id


def ddb() -> Any:
    from cairn.aws import client

    return client("dynamodb")


def key(stream_id: str, version: int) -> dict[str, Any]:
    return {"stream_id": {"S": stream_id}, "version": {"N": str(version)}}


def edit(cloud: dict[str, str], stream_id: str, version: int, **attrs: str) -> None:
    names = {f"#a{i}": name for i, name in enumerate(attrs)}
    values = {f":v{i}": {"S": value} for i, value in enumerate(attrs.values())}
    ddb().update_item(
        TableName=cloud["EVENTS_TABLE"],
        Key=key(stream_id, version),
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(attrs))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def delete(cloud: dict[str, str], stream_id: str, version: int) -> None:
    ddb().delete_item(TableName=cloud["EVENTS_TABLE"], Key=key(stream_id, version))


def item(cloud: dict[str, str], stream_id: str, version: int) -> dict[str, Any]:
    return ddb().get_item(TableName=cloud["EVENTS_TABLE"], Key=key(stream_id, version), ConsistentRead=True)["Item"]


def verify(api: Api, order_id: str, **who: Any) -> dict[str, Any]:
    reply = api.get(f"/orders/{order_id}/verification", **who)
    assert reply.status == 200, reply.text
    return reply.json


@pytest.fixture
def orders(cloud: dict[str, str], orders_api: Api, orders_queries: Api) -> tuple[Api, Api]:
    return orders_api, orders_queries


# -- the routes -----------------------------------------------------------------------------------
def test_an_intact_order_verifies(orders: tuple[Api, Api]) -> None:
    api, queries = orders
    order_id = lifecycle(api)
    events = queries.get(f"/orders/{order_id}/events").json["events"]
    assert events[0]["prev_hash"] == "0" * 64
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    body = verify(queries, order_id)
    assert body == {"stream_id": order_id, "version": 3, "head_hash": events[-1]["hash"], "intact": True}
    assert verify(queries, order_id, **STAFF)["intact"]


def test_who_may_verify(orders: tuple[Api, Api]) -> None:
    api, queries = orders
    order_id = create(api)
    assert queries.get(f"/orders/{order_id}/verification", user="bob").is_problem(404, "not-found")
    assert queries.get("/orders/order-nope/verification", user="alice").is_problem(404, "not-found")
    assert queries.get("/orders/not-an-order/verification", **STAFF).is_problem(404, "not-found")
    assert queries.get("/orders/order-nope/verification", **STAFF).is_problem(404, "not-found")


@pytest.mark.parametrize(
    ("damage", "first_bad"),
    [
        ("edit_data", 2),
        ("edit_data_and_rehash", 3),
        ("delete_middle", 2),
        ("delete_first", 1),
        ("insert_after_head", 4),
        ("strip_hash", 2),
    ],
)
def test_tampering_is_a_200_answer_naming_the_first_bad_version(
    orders: tuple[Api, Api], cloud: dict[str, str], damage: str, first_bad: int
) -> None:
    from cairn.integrity import event_hash

    api, queries = orders
    order_id = lifecycle(api)
    stream = cloud["EVENTS_TABLE"]
    if damage == "edit_data":
        edit(cloud, order_id, 2, data='{"payment_id":"p-1","amount":"0.01"}')
    elif damage == "edit_data_and_rehash":
        it = item(cloud, order_id, 2)
        data = it["data"]["S"].replace("p-1", "p-X")
        digest = event_hash(
            order_id, 2, it["event_id"]["S"], it["type"]["S"], int(it["schema_version"]["N"]),
            it["occurred_at"]["S"], data, it["metadata"]["S"], it["prev_hash"]["S"],
        )
        edit(cloud, order_id, 2, data=data, hash=digest)  # the next event's prev_hash gives it away
    elif damage == "delete_middle":
        delete(cloud, order_id, 2)
    elif damage == "delete_first":
        delete(cloud, order_id, 1)
    elif damage == "insert_after_head":
        forged = dict(item(cloud, order_id, 3))
        forged["version"] = {"N": "4"}
        forged["event_id"] = {"S": "forged"}
        ddb().put_item(TableName=stream, Item=forged)
    elif damage == "strip_hash":
        ddb().update_item(TableName=stream, Key=key(order_id, 2), UpdateExpression="REMOVE #h", ExpressionAttributeNames={"#h": "hash"})
    viewers: list[dict[str, Any]] = [{"user": "alice"}, STAFF]
    if damage == "delete_first":
        # nothing left (no read model in this test) says alice owns it: only staff may ask
        assert queries.get(f"/orders/{order_id}/verification", user="alice").status == 404
        viewers = [STAFF]
    for who in viewers:
        body = verify(queries, order_id, **who)
        assert body["intact"] is False and body["first_bad_version"] == first_bad, body
        assert body["stream_id"] == order_id and body["problem"]


def test_removing_the_newest_events_is_caught_by_the_read_model(
    orders: tuple[Api, Api], cloud: dict[str, str], order_projector: Projector
) -> None:
    api, queries = orders
    order_id = lifecycle(api)
    assert order_projector.run() == 3
    delete(cloud, order_id, 3)  # the chain that is left is intact...
    body = verify(queries, order_id)
    assert (body["intact"], body["first_bad_version"]) == (False, 3)  # ...but the view saw version 3
    delete(cloud, order_id, 2)
    delete(cloud, order_id, 1)  # the whole stream: the owner still gets the answer, not a 404
    body = verify(queries, order_id)
    assert (body["intact"], body["first_bad_version"]) == (False, 1)
    assert queries.get(f"/orders/{order_id}/verification", user="bob").status == 404


def test_a_snapshot_witnesses_its_version(orders: tuple[Api, Api], cloud: dict[str, str]) -> None:
    import importlib

    api, queries = orders
    order_id = lifecycle(api)
    snapshot = importlib.import_module("orders.app").runtime().take_snapshot(order_id)
    assert snapshot is not None and snapshot.version == 3
    delete(cloud, order_id, 3)
    body = verify(queries, order_id)
    assert (body["intact"], body["first_bad_version"]) == (False, 3)


def test_account_verification(cloud: dict[str, str], accounts_api: Api, accounts_queries: Api) -> None:
    reply = accounts_api.post("/accounts", {"currency": "USD"})
    assert reply.status == 201, reply.text
    account_id = reply.json["account_id"]
    assert accounts_api.post(f"/accounts/{account_id}/deposits", {"amount": "10.00"}).status == 200
    body = accounts_queries.get(f"/accounts/{account_id}/verification").json
    assert body["intact"] is True and body["version"] == 2
    assert accounts_queries.get(f"/accounts/{account_id}/verification", **STAFF).json["intact"] is True
    assert accounts_queries.get(f"/accounts/{account_id}/verification", user="bob").status == 404
    edit(cloud, account_id, 2, data=json.dumps({"amount": "1000000.00"}))
    body = accounts_queries.get(f"/accounts/{account_id}/verification").json
    assert (body["intact"], body["first_bad_version"]) == (False, 2)


# -- make verify and the digest -------------------------------------------------------------------
@pytest.fixture
def digest_bucket(cloud: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    from cairn.aws import client

    s3 = client("s3")
    s3.create_bucket(Bucket="cairn-digests", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket="cairn-digests",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    monkeypatch.setenv("DIGEST_BUCKET", "cairn-digests")
    return "cairn-digests"


def run_verify(*args: str) -> tuple[int, str]:
    import io

    from cairn_tools import verify

    out = io.StringIO()
    parsed = verify.argparse.ArgumentParser()
    del parsed
    settings = verify.resolve(
        verify.argparse.Namespace(
            outputs="/nonexistent", events_table=None, snapshot_bucket=None, digest_bucket=None, endpoint_url=None
        )
    )
    status = verify.run(settings, write_digest="--digest" in args, segments=2, out=out, progress_stream=io.StringIO())
    return status, out.getvalue()


def test_verify_and_the_digest_catch_what_the_chain_alone_cannot(
    orders: tuple[Api, Api], cloud: dict[str, str], digest_bucket: str
) -> None:
    from cairn.aws import client

    api, _ = orders
    first, second, third = lifecycle(api), lifecycle(api, "bob"), create(api)
    status, out = run_verify("--digest")
    assert status == 0, out
    assert "3 streams, 7 events verified, 0 broken" in out and "digest written" in out
    (digest_key,) = [o["Key"] for o in client("s3").list_objects_v2(Bucket=digest_bucket)["Contents"]]
    head = client("s3").head_object(Bucket=digest_bucket, Key=digest_key)  # (moto: GetObjectRetention is a 500)
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the digest itself cannot be rewritten or removed
    assert run_verify()[0] == 0

    delete(cloud, first, 3)  # the newest event: the chain that is left is intact
    for version in (1,):
        delete(cloud, third, version)  # a whole stream
    status, out = run_verify()
    assert status == 1
    assert f"BROKEN     {first}: version 3" in out and "digest" in out
    assert f"BROKEN     {third}: version 1" in out
    assert second not in out


def test_verify_reports_an_edit_without_any_digest(orders: tuple[Api, Api], cloud: dict[str, str]) -> None:
    api, _ = orders
    order_id = lifecycle(api)
    assert run_verify()[0] == 0
    edit(cloud, order_id, 2, occurred_at="2020-01-01T00:00:00.000Z")
    status, out = run_verify()
    assert status == 1 and f"{order_id}: version 2: content does not match its hash" in out


def test_verify_main_needs_an_events_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn_tools import verify

    monkeypatch.delenv("EVENTS_TABLE", raising=False)
    with pytest.raises(SystemExit, match="no events table"):
        verify.main(["--outputs", "/nonexistent"])


# -- the tamper detector on the table's stream ----------------------------------------------------
def test_the_tamper_detector_reports_every_change_and_removal(
    orders: tuple[Api, Api], cloud: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    from cairn_platform.tamper import handler
    from tests.functional.conftest import LambdaContext, metric_values

    api, _ = orders
    first, second = lifecycle(api), create(api)
    feed = Projector(handler, "")
    records = feed.records()
    assert records and {r["eventName"] for r in records} == {"INSERT"}
    capsys.readouterr()
    handler({"Records": records}, LambdaContext())  # appends are not tampering
    assert metric_values(capsys.readouterr().out, "TamperDetected") == [0.0]

    edit(cloud, first, 2, data='{"payment_id":"p-1","amount":"0.01"}')  # MODIFY
    delete(cloud, second, 1)  # REMOVE
    forged = dict(item(cloud, first, 3))
    forged["version"] = {"N": "4"}
    ddb().put_item(TableName=cloud["EVENTS_TABLE"], Item=forged)  # INSERT outside the chain
    ddb().put_item(TableName=cloud["EVENTS_TABLE"], Item={**item(cloud, first, 1), "data": {"S": "{}"}})  # overwrite
    records = feed.records()
    result = handler({"Records": records}, LambdaContext())
    assert result == {"batchItemFailures": []}
    out = capsys.readouterr().out
    assert metric_values(out, "TamperDetected") == [3.0]  # the overwrite by PutItem is a MODIFY too
    # one structured (Powertools JSON) log line per finding
    logged = [line for line in map(json.loads, (x for x in out.splitlines() if x.startswith("{"))) if "tamper" in line]
    assert {line["level"] for line in logged} == {"ERROR"}
    reported = {(line["stream_id"], line["tamper"]["version"], line["tamper"]["change"]) for line in logged}
    assert reported == {(first, 2, "MODIFY"), (second, 1, "REMOVE"), (first, 1, "MODIFY")}
    # the forged INSERT is no stream change the detector can see: verification catches it
    status, report = run_verify()
    assert status == 1 and f"BROKEN     {first}: version 1" in report
    # a whole stream removed before any witness (digest, checkpoint, snapshot) saw it leaves no
    # trace in the store: only the detector above reported it (docs/deploy.md, threat model)
    assert second not in report


def test_the_digest_job_writes_only_for_an_intact_store(
    orders: tuple[Api, Api], cloud: dict[str, str], digest_bucket: str
) -> None:
    from cairn.aws import client
    from cairn_platform.digest import run

    api, _ = orders
    order_id = lifecycle(api)
    written = run(client("dynamodb"), client("s3"), cloud["EVENTS_TABLE"], digest_bucket)
    assert written["written"] and written["broken"] == 0 and written["streams"] == 1
    delete(cloud, order_id, 3)  # the newest event: the previous digest saw it
    again = run(client("dynamodb"), client("s3"), cloud["EVENTS_TABLE"], digest_bucket)
    assert again == {"written": None, "streams": 1, "broken": 1}


def test_verify_uses_projection_checkpoints_and_snapshots_as_witnesses(
    orders: tuple[Api, Api], cloud: dict[str, str], order_projector: Projector
) -> None:
    import importlib

    api, _ = orders
    projected, snapshotted = lifecycle(api), lifecycle(api, "bob")
    assert order_projector.run() == 6
    assert importlib.import_module("orders.app").runtime().take_snapshot(snapshotted) is not None
    assert run_verify()[0] == 0
    for version in (1, 2, 3):
        delete(cloud, projected, version)  # gone whole: the order view's checkpoint saw version 3
    delete(cloud, snapshotted, 3)  # truncated: the snapshot was taken at version 3
    status, out = run_verify()
    assert status == 1
    assert f"BROKEN     {projected}: version 1" in out and "projection order_view" in out
    assert f"BROKEN     {snapshotted}: version 3" in out
