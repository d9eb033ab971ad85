"""Accounts: commands (accounts.api.handler) and queries (accounts.queries.handler), every row of
API.md's account table: owner-only isolation (staff too), the balance rule, amount limits,
read-your-writes, time travel and the audit trail."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.functional.conftest import Api, Projector, metric_values

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def open_account(api: Api, user: str = "alice", currency: str = "USD") -> str:
    reply = api.post("/accounts", {"currency": currency}, user=user)
    assert reply.status == 201, reply.text
    return reply.json["account_id"]


def move(api: Api, account_id: str, kind: str, amount: Any, user: str = "alice", **kwargs: Any) -> Any:
    return api.post(f"/accounts/{account_id}/{kind}", {"amount": amount}, user=user, **kwargs)


def stored(account_id: str) -> list[Any]:
    from accounts.app import runtime

    return list(runtime().store.read(account_id))


# -- commands ---------------------------------------------------------------------------------------
def test_open_account(accounts_api: Api):
    reply = accounts_api.post("/accounts", {"currency": "EUR"}, headers={"X-Correlation-Id": "open-1"})
    assert reply.status == 201
    body = reply.json
    assert re.fullmatch(f"account-{UUID}", body["account_id"])
    assert (body["version"], body["balance"], body["currency"]) == (1, "0.00", "EUR")
    assert reply.headers["location"] == f"/accounts/{body['account_id']}"
    assert reply.headers["etag"] == '"1"'
    (event,) = stored(body["account_id"])
    assert event.type == "AccountOpened" and event.data.owner_id == "alice"
    assert event.metadata.correlation_id == "open-1"


@pytest.mark.parametrize("body", [{}, {"currency": "usd"}, {"currency": "USD", "owner_id": "bob"}, {"currency": 1}])
def test_open_account_validation(accounts_api: Api, body: dict):
    assert accounts_api.post("/accounts", body).is_problem(422, "validation-failed")


def test_deposit_and_withdraw(accounts_api: Api):
    account_id = open_account(accounts_api)
    deposited = move(accounts_api, account_id, "deposits", "100.50")
    assert deposited.status == 200
    assert deposited.json == {"account_id": account_id, "version": 2, "balance": "100.50", "currency": "USD"}
    assert deposited.headers["etag"] == '"2"'
    withdrawn = move(accounts_api, account_id, "withdrawals", "0.50")
    assert (withdrawn.status, withdrawn.json["balance"], withdrawn.json["version"]) == (200, "100.00", 3)
    everything = move(accounts_api, account_id, "withdrawals", "100")
    assert everything.json["balance"] == "0.00"


def test_overdraft_is_409_insufficient_funds(accounts_api: Api, capsys: pytest.CaptureFixture):
    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "10.00")
    capsys.readouterr()
    reply = move(accounts_api, account_id, "withdrawals", "10.01")
    assert reply.is_problem(409, "insufficient-funds")
    assert reply.json["title"] == "Insufficient funds"
    assert metric_values(capsys.readouterr().out, "CommandRejected") == [1.0]
    assert [e.type for e in stored(account_id)] == ["AccountOpened", "MoneyDeposited"]


@pytest.mark.parametrize(
    "amount",
    ["0", "0.00", "-5.00", "1000000.01", "1.001", 5.5, 5, "abc", None, True, "1e1000000", "\u0661\u0662\u0663", " 5.00"],
)
@pytest.mark.parametrize("kind", ["deposits", "withdrawals"])
def test_amount_validation(accounts_api: Api, kind: str, amount: Any):
    account_id = open_account(accounts_api)
    reply = move(accounts_api, account_id, kind, amount)
    assert reply.is_problem(422, "validation-failed"), reply.text
    assert reply.json["errors"][0]["loc"] == ["body", "amount"]


def test_amount_limits_are_inclusive(accounts_api: Api):
    account_id = open_account(accounts_api)
    assert move(accounts_api, account_id, "deposits", "1000000.00").json["balance"] == "1000000.00"
    assert move(accounts_api, account_id, "deposits", "0.01").json["balance"] == "1000000.01"
    assert move(accounts_api, account_id, "withdrawals", "1000000").json["balance"] == "0.01"


@pytest.mark.parametrize("user,groups", [("bob", []), ("sam", ["staff"])])
def test_accounts_are_owner_only_even_for_staff(accounts_api: Api, user: str, groups: list):
    account_id = open_account(accounts_api, user="alice")
    move(accounts_api, account_id, "deposits", "50.00")
    for kind in ("deposits", "withdrawals"):
        reply = move(accounts_api, account_id, kind, "1.00", user=user, groups=groups)
        assert reply.is_problem(404, "not-found")
    assert len(stored(account_id)) == 2


def test_missing_account_is_404(accounts_api: Api):
    assert move(accounts_api, "account-00000000-0000-4000-8000-000000000000", "deposits", "1").is_problem(404)
    assert move(accounts_api, "order-1", "deposits", "1").is_problem(404)


def test_if_match_on_money_commands(accounts_api: Api):
    account_id = open_account(accounts_api)
    ok = move(accounts_api, account_id, "deposits", "5", headers={"If-Match": '"1"'})
    assert ok.status == 200
    stale = move(accounts_api, account_id, "deposits", "5", headers={"If-Match": '"1"'})
    assert stale.is_problem(412, "version-mismatch") and stale.json["current_version"] == 2
    assert len(stored(account_id)) == 2


def test_idempotent_deposit_repeat_is_applied_once(accounts_api: Api):
    account_id = open_account(accounts_api)
    first = move(accounts_api, account_id, "deposits", "25.00", headers={"Idempotency-Key": "dep-1"})
    again = move(accounts_api, account_id, "deposits", "25.00", headers={"Idempotency-Key": "dep-1"})
    assert first.json == again.json and again.headers["idempotent-replayed"] == "true"
    assert [e.type for e in stored(account_id)].count("MoneyDeposited") == 1
    other = move(accounts_api, account_id, "deposits", "26.00", headers={"Idempotency-Key": "dep-1"})
    assert other.is_problem(422, "idempotency-key-reused")
    # same key on the other route is another request, not a reuse
    withdrawal = move(accounts_api, account_id, "withdrawals", "25.00", headers={"Idempotency-Key": "dep-1"})
    assert withdrawal.status == 200 and withdrawal.json["balance"] == "0.00"


def test_withdrawal_repeat_after_crash_returns_first_answer_not_409(accounts_api: Api):
    """The first withdrawal committed and then the Lambda died: re-deciding would now say
    insufficient funds, but the repeat must answer exactly like the (lost) first answer."""
    from accounts.app import runtime

    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "30.00")
    client = runtime().store.client
    crashed: list[bool] = []

    def crash(**kwargs: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("killed after commit")

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", crash)
    try:
        first = move(accounts_api, account_id, "withdrawals", "30.00", headers={"Idempotency-Key": "w-1"})
        again = move(accounts_api, account_id, "withdrawals", "30.00", headers={"Idempotency-Key": "w-1"})
    finally:
        client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", crash)
    assert first.is_problem(500)
    assert again.status == 200 and again.json["balance"] == "0.00" and again.json["version"] == 3
    assert [e.type for e in stored(account_id)] == ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn"]


# -- queries ------------------------------------------------------------------------------------------
def test_account_view_from_read_model_and_fallback(
    accounts_api: Api, accounts_queries: Api, account_projector: Projector
):
    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "70.00")
    account_projector.run()
    view = accounts_queries.get(f"/accounts/{account_id}")
    assert view.status == 200 and view.headers["x-cairn-source"] == "read-model"
    body = view.json
    assert {k: body[k] for k in ("account_id", "owner_id", "currency", "balance", "version")} == {
        "account_id": account_id,
        "owner_id": "alice",
        "currency": "USD",
        "balance": "70.00",
        "version": 2,
    }
    assert body["updated_at"].endswith("Z") and view.headers["etag"] == '"2"'
    written = move(accounts_api, account_id, "withdrawals", "20.00")
    lagging = accounts_queries.get(f"/accounts/{account_id}")
    assert lagging.json["balance"] == "70.00"  # the projection has not run
    fresh = accounts_queries.get(f"/accounts/{account_id}", query={"min_version": written.json["version"]})
    assert fresh.headers["x-cairn-source"] == "event-store"
    assert (fresh.json["balance"], fresh.json["version"]) == ("50.00", 3)
    assert accounts_queries.get(f"/accounts/{account_id}", query={"min_version": 9}).is_problem(
        412, "version-not-reached"
    )


def test_account_queries_are_owner_only(accounts_api: Api, accounts_queries: Api, account_projector: Projector):
    account_id = open_account(accounts_api, user="alice")
    account_projector.run()
    for user, groups in (("bob", []), ("sam", ["staff"])):
        for path, query in (
            (f"/accounts/{account_id}", None),
            (f"/accounts/{account_id}", {"min_version": 1}),
            (f"/accounts/{account_id}/history", {"version": 1}),
            (f"/accounts/{account_id}/events", None),
        ):
            assert accounts_queries.get(path, user=user, groups=groups, query=query).is_problem(404, "not-found")


def test_account_history(accounts_api: Api, accounts_queries: Api):
    before = datetime.now(UTC) - timedelta(seconds=1)
    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "10.00")
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    move(accounts_api, account_id, "deposits", "5.00")

    def at(instant: datetime) -> Any:
        return accounts_queries.get(f"/accounts/{account_id}/history", query={"at": instant.isoformat()})

    v2 = accounts_queries.get(f"/accounts/{account_id}/history", query={"version": 2})
    assert v2.json["balance"] == "10.00" and v2.json["version"] == 2 and v2.json["as_of"].endswith("Z")
    assert set(v2.json) >= {"account_id", "version", "balance", "as_of"}
    assert at(middle).json["balance"] == "10.00"
    assert at(datetime.now(UTC)).json["balance"] == "15.00"
    assert at(before).is_problem(404)
    assert accounts_queries.get(f"/accounts/{account_id}/history", query={"version": 4}).is_problem(404)
    assert accounts_queries.get(f"/accounts/{account_id}/history").is_problem(422)


def test_account_events(accounts_api: Api, accounts_queries: Api):
    account_id = open_account(accounts_api)
    for amount in ("1.00", "2.00", "3.00"):
        move(accounts_api, account_id, "deposits", amount)
    page = accounts_queries.get(f"/accounts/{account_id}/events", query={"after": 1, "limit": 2})
    assert [e["type"] for e in page.json["events"]] == ["MoneyDeposited", "MoneyDeposited"]
    assert [e["data"]["amount"] for e in page.json["events"]] == ["1.00", "2.00"]
    assert page.json["next_after"] == 3
    last = accounts_queries.get(f"/accounts/{account_id}/events", query={"after": 3})
    assert [e["version"] for e in last.json["events"]] == [4] and last.json["next_after"] is None


# -- a concurrent writer between this command's read and its write ---------------------------------
def _interleave_a_deposit_before_the_next_write(account_id: str) -> Any:
    """Register a hook that, once, appends a deposit "from another instance" right before this
    instance's conditional write reaches DynamoDB; returns the unregister function."""
    from accounts import domain
    from accounts.app import runtime
    from cairn.aws import client as new_client
    from cairn.events import NewEvent
    from cairn.store.dynamodb import DynamoDBEventStore

    store = runtime().store
    other = DynamoDBEventStore(store.registry, new_client("dynamodb"), store.events_table)
    done: list[bool] = []

    def other_writer(**kwargs: Any) -> None:
        if not done:
            done.append(True)
            version = other.current_version(account_id)
            other.append(account_id, [NewEvent(data=domain.MoneyDeposited(amount="5.00"))], version)

    store.client.meta.events.register("before-call.dynamodb.PutItem", other_writer)
    return lambda: store.client.meta.events.unregister("before-call.dynamodb.PutItem", other_writer)


def test_concurrent_append_is_re_decided_not_lost(accounts_api: Api, capsys: pytest.CaptureFixture):
    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "10.00")  # this instance's cache: version 2
    stop = _interleave_a_deposit_before_the_next_write(account_id)
    capsys.readouterr()
    try:
        reply = move(accounts_api, account_id, "deposits", "1.00")
    finally:
        stop()
    assert reply.status == 200, reply.text
    assert (reply.json["balance"], reply.json["version"]) == ("16.00", 4)  # both deposits count
    assert [e.data.amount for e in stored(account_id)[1:]] == [10, 5, 1]
    assert metric_values(capsys.readouterr().out, "ConflictsRetried") == [1.0]


def test_a_rejection_on_a_stale_warm_state_is_re_checked(accounts_api: Api):
    """Another instance deposited after this one cached the account: the withdrawal is covered."""
    from accounts import domain
    from accounts.app import runtime
    from cairn.events import NewEvent

    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "10.00")  # cached here at balance 10
    runtime().store.append(account_id, [NewEvent(data=domain.MoneyDeposited(amount="5.00"))], 2)
    reply = move(accounts_api, account_id, "withdrawals", "15.00")
    assert reply.status == 200 and reply.json["balance"] == "0.00" and reply.json["version"] == 4


def test_writers_winning_past_the_retry_budget_is_503(accounts_api: Api, monkeypatch: pytest.MonkeyPatch):
    from accounts.app import runtime

    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "10.00")
    monkeypatch.setattr(runtime(), "max_retries", 0)
    stop = _interleave_a_deposit_before_the_next_write(account_id)
    try:
        reply = move(accounts_api, account_id, "deposits", "1.00")
    finally:
        stop()
    assert reply.is_problem(503, "service-unavailable") and reply.headers["retry-after"] == "1"
    assert [e.data.amount for e in stored(account_id)[1:]] == [10, 5]  # the other write only


def test_if_match_is_never_retried(accounts_api: Api):
    account_id = open_account(accounts_api)
    move(accounts_api, account_id, "deposits", "10.00")
    stop = _interleave_a_deposit_before_the_next_write(account_id)
    try:
        reply = move(accounts_api, account_id, "deposits", "1.00", headers={"If-Match": '"2"'})
    finally:
        stop()
    assert reply.is_problem(412, "version-mismatch") and reply.json["current_version"] == 3
