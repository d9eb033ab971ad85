"""The bank account service against a simple model (a balance), by hypothesis' stateful testing.

Random sequences of opening accounts, deposits and withdrawals (valid and invalid amounts, by
the owner or a stranger, with a current or stale ``If-Match``), repeats with the same
Idempotency-Key (and the key reused for another body), reads (read-your-writes and the read
model after the projection caught up), and withdrawals through a fault (throttled past the
SDK's retries, or a crash after a random AWS call) with a client that retries.

Every response code is the model's (201/200/404/409 insufficient-funds/412/422); invariants
after every step: versions 1..n in the store, n = the model's version, the fold of the store
has the model's balance, and no balance is ever negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.budget import examples
from tests.functional.conftest import Api, Reply
from tests.reliability.faults import Fault, FaultInjector, SimulatedCrash
from tests.reliability.world import World, cold_start, deliver, one_shard, problem_503

OWNERS = ("alice", "bob")
STRANGER = "mallory"
PROBLEM = "https://cairn.dev/problems/"
LIMIT = Decimal("1000000.00")


@dataclass
class Account:
    account_id: str
    owner: str
    balance: Decimal = Decimal("0.00")
    version: int = 1


valid_amounts = st.integers(1, 100_000_000).map(lambda cents: Decimal(cents) / 100)
small_amounts = st.integers(1, 50_000).map(lambda cents: Decimal(cents) / 100)
invalid_amounts = st.sampled_from(["0.00", "-5.00", "1000000.01", "12.345", "abc", "", "1.2.3"])


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


class AccountsMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")

    def __init__(self) -> None:
        super().__init__()
        from accounts.api import handler as commands
        from accounts.queries import handler as queries

        self.world = World(FaultInjector()).__enter__()  # a fresh cloud per example
        self.commands = Api(commands)
        self.queries = Api(queries)
        self.model: dict[str, Account] = {}
        self.sent: list[tuple[str, dict[str, Any], str, str, Reply]] = []
        self.counter = 0

    def teardown(self) -> None:
        self.world.__exit__(None, None, None)

    # -- helpers --------------------------------------------------------------------------------
    def post(self, path: str, body: dict[str, Any], user: str, headers: dict[str, str] | None = None) -> Reply:
        self.counter += 1
        key = f"key-{self.counter}"
        reply = self.commands.post(path, body, user=user, headers={"Idempotency-Key": key, **(headers or {})})
        self.sent.append((path, body, user, key, reply))
        return reply

    def expect(self, reply: Reply, status: int, code: str | None = None) -> None:
        assert reply.status == status, (status, reply.status, reply.text)
        if status >= 400:
            assert reply.content_type == "application/problem+json", reply.headers
            if code is not None:
                assert reply.json["type"] == PROBLEM + code, reply.json

    def move(self, account_id: str, kind: str, amount: Any, who: str, if_match: str | None) -> Reply | None:
        account = self.model[account_id]
        user = account.owner if who == "owner" else who
        headers = {}
        if if_match is not None:
            version = account.version if if_match == "current" else max(0, account.version - 1) or 99
            headers["If-Match"] = f'"{version}"'
        route = "deposits" if kind == "deposit" else "withdrawals"
        reply = self.post(f"/accounts/{account_id}/{route}", {"amount": str(amount)}, user, headers)
        if not isinstance(amount, Decimal):
            self.expect(reply, 422, "validation-failed")
            return None
        if user != account.owner:
            self.expect(reply, 404, "not-found")
            return None
        if if_match == "stale":
            self.expect(reply, 412, "version-mismatch")
            assert reply.json["current_version"] == account.version
            return None
        if kind == "withdraw" and amount > account.balance:
            self.expect(reply, 409, "insufficient-funds")
            return None
        self.expect(reply, 200)
        account.balance += amount if kind == "deposit" else -amount
        account.version += 1
        assert (reply.json["version"], reply.json["balance"]) == (account.version, money(account.balance))
        assert reply.headers["etag"] == f'"{account.version}"'
        return reply

    # -- rules ----------------------------------------------------------------------------------
    @rule(target=accounts, owner=st.sampled_from(OWNERS))
    def open(self, owner: str) -> str:
        reply = self.post("/accounts", {"currency": "USD"}, owner)
        self.expect(reply, 201)
        assert (reply.json["version"], reply.json["balance"]) == (1, "0.00")
        self.model[reply.json["account_id"]] = Account(reply.json["account_id"], owner)
        return reply.json["account_id"]

    @rule(
        account_id=accounts,
        amount=st.one_of(valid_amounts, small_amounts, invalid_amounts),
        who=st.sampled_from(["owner", "owner", "owner", STRANGER]),
        if_match=st.sampled_from([None, None, "current", "stale"]),
    )
    def deposit(self, account_id: str, amount: Any, who: str, if_match: str | None) -> None:
        if isinstance(amount, Decimal) and amount > LIMIT:
            amount = str(amount)  # over the per-transfer limit: 422 like any invalid amount
        self.move(account_id, "deposit", amount, who, if_match)

    @rule(
        account_id=accounts,
        amount=st.one_of(small_amounts, valid_amounts, invalid_amounts),
        who=st.sampled_from(["owner", "owner", "owner", STRANGER]),
        if_match=st.sampled_from([None, None, "current", "stale"]),
    )
    def withdraw(self, account_id: str, amount: Any, who: str, if_match: str | None) -> None:
        if isinstance(amount, Decimal) and amount > LIMIT:
            amount = str(amount)
        self.move(account_id, "withdraw", amount, who, if_match)

    @rule(account_id=accounts, share=st.sampled_from([Decimal(1), Decimal("0.5")]))
    def withdraw_everything_or_half(self, account_id: str, share: Decimal) -> None:
        """The boundary: exactly the balance (to 0.00) or half of it."""
        account = self.model[account_id]
        amount = (account.balance * share).quantize(Decimal("0.01"))
        if amount > 0:
            self.move(account_id, "withdraw", amount, "owner", None)

    @rule(data=st.data())
    def repeat_with_the_same_key(self, data: st.DataObject) -> None:
        done = [s for s in self.sent if s[4].status < 300]
        if not done:
            return
        path, body, user, key, first = data.draw(st.sampled_from(done))
        before = {a: m.version for a, m in self.model.items()}
        again = self.commands.post(path, body, user=user, headers={"Idempotency-Key": key})
        assert (again.status, again.json) == (first.status, first.json)
        assert again.headers.get("idempotent-replayed") == "true"
        if "amount" in body and data.draw(st.booleans()):
            other = self.commands.post(path, {"amount": "0.01"}, user=user, headers={"Idempotency-Key": key})
            if body["amount"] != "0.01":
                self.expect(other, 422, "idempotency-key-reused")
        store = self.world.store("accounts")
        for account_id, version in before.items():
            assert store.current_version(account_id) == version

    @rule(account_id=accounts, who=st.sampled_from(["owner", "owner", STRANGER]))
    def read_your_writes(self, account_id: str, who: str) -> None:
        account = self.model[account_id]
        user = account.owner if who == "owner" else who
        reply = self.queries.get(f"/accounts/{account_id}", user=user, query={"min_version": account.version})
        if user != account.owner:
            self.expect(reply, 404, "not-found")
            return
        self.expect(reply, 200)
        assert (reply.json["balance"], reply.json["version"]) == (money(account.balance), account.version)

    @rule()
    def project_and_read(self) -> None:
        from accounts.projections import handler

        records = [r for r in self.world.new_stream_records() if r["dynamodb"]["Keys"]["stream_id"]["S"].startswith("account-")]
        if records:
            deliver(handler, one_shard(records), batch_size=25)
        for account in self.model.values():
            view = self.queries.get(f"/accounts/{account.account_id}", user=account.owner).json
            assert (view["balance"], view["version"]) == (money(account.balance), account.version)

    @rule(account_id=accounts, kind=st.sampled_from(["throttle", "crash-after", "lost-response"]), at=st.integers(0, 3))
    def withdraw_through_a_fault(self, account_id: str, kind: str, at: int) -> None:
        account = self.model[account_id]
        amount = Decimal("1.00")
        self.counter += 1
        key = f"key-{self.counter}"
        reply: Reply | None = None
        with self.world.injector.armed(Fault(kind, at, persistent=kind != "crash-after")):
            for _ in range(4):
                try:
                    reply = self.commands.post(
                        f"/accounts/{account_id}/withdrawals", {"amount": "1.00"}, user=account.owner,
                        headers={"Idempotency-Key": key},
                    )
                except SimulatedCrash:
                    cold_start()
                    continue
                if reply.status == 503:
                    assert problem_503(reply), reply.text
                    continue
                break
        assert reply is not None and reply.status != 503
        if amount > account.balance:
            self.expect(reply, 409, "insufficient-funds")
            return
        self.expect(reply, 200)
        account.balance -= amount
        account.version += 1
        assert (reply.json["version"], reply.json["balance"]) == (account.version, money(account.balance))

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def the_store_is_the_model(self) -> None:
        from accounts import domain

        store = self.world.store("accounts")
        for account in self.model.values():
            events = list(store.read(account.account_id))
            assert [e.version for e in events] == list(range(1, account.version + 1)), account
            state = domain.initial_state()
            lowest = Decimal(0)
            for stored in events:
                state = domain.evolve(state, stored.data)
                lowest = min(lowest, state.balance)
            assert state.balance == account.balance and lowest >= 0, account


@pytest.mark.slow
def test_accounts_behave_like_the_model():
    run_state_machine_as_test(
        AccountsMachine,
        settings=settings(
            max_examples=examples(25),
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
