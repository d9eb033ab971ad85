"""The order service against a simple model, by hypothesis' stateful testing.

The machine drives the real HTTP Lambda handlers (commands, queries, the projection Lambda fed
from moto's stream) with random sequences of: placing orders, paying (right or wrong amount, a
repeated payment), shipping, delivering, cancelling — as the owner, staff or a stranger, with
or without a current or stale ``If-Match`` —, repeating a request with its Idempotency-Key (or
reusing the key for another body), reading (read-your-writes and after the projection caught
up), and running a command through a fault (throttled past the SDK's retries or a crash after
a random AWS call) with a client that retries.

The model is a dict of (owner, status, total, version, payment id). Every response code must be
the model's; invariants after every step: the store holds versions 1..n for every order, n is
the model's version, and the fold of the store has the model's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.budget import examples
from tests.functional.conftest import Api, Reply
from tests.reliability.faults import Fault, FaultInjector, SimulatedCrash
from tests.reliability.world import World, cold_start, deliver, one_shard, problem_503

OWNERS = ("alice", "bob")
STAFF = "clerk"
STRANGER = "mallory"
CENT = Decimal("0.01")
PROBLEM = "https://cairn.dev/problems/"


@dataclass
class Order:
    order_id: str
    owner: str
    total: Decimal
    currency: str
    status: str = "CREATED"
    version: int = 1
    payment_id: str | None = None


lines = st.lists(
    st.fixed_dictionaries(
        {
            "sku": st.sampled_from(["SKU-1", "SKU-2", "SKU-3"]),
            "quantity": st.integers(1, 5),
            "unit_price": st.integers(1, 99999).map(lambda c: str(Decimal(c) / 100)),
        }
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda line: line["sku"],  # one price per sku in an order: prices come from the catalog
)


class OrdersMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        from orders.api import handler as commands
        from orders.queries import handler as queries

        self.world = World(FaultInjector()).__enter__()  # a fresh cloud per example
        self.commands = Api(commands)
        self.queries = Api(queries)
        self.model: dict[str, Order] = {}
        self.sent: list[tuple[str, dict[str, Any], str, tuple[str, ...], str, Reply]] = []
        self.counter = 0

    def teardown(self) -> None:
        self.world.__exit__(None, None, None)

    # -- helpers --------------------------------------------------------------------------------
    def key(self) -> str:
        self.counter += 1
        return f"key-{self.counter}"

    def post(self, path: str, body: dict[str, Any], user: str, headers: dict[str, str] | None = None) -> Reply:
        groups = ("staff",) if user == STAFF else ()
        key = self.key()
        reply = self.commands.post(path, body, user=user, groups=groups, headers={"Idempotency-Key": key, **(headers or {})})
        self.sent.append((path, body, user, groups, key, reply))
        return reply

    def expect(self, reply: Reply, status: int, code: str | None = None) -> None:
        event(f"answer {status}")
        assert reply.status == status, (status, reply.status, reply.text)
        if status >= 400:
            assert reply.content_type == "application/problem+json", reply.headers
            if code is not None:
                assert reply.json["type"] == PROBLEM + code, reply.json

    def if_match(self, order: Order, choice: str | None) -> dict[str, str]:
        if choice is None:
            return {}
        version = order.version if choice == "current" else order.version - 1 if order.version > 1 else 99
        return {"If-Match": f'"{version}"'}

    def transition(
        self, order_id: str, route: str, body: dict[str, Any], user: str, if_match: str | None,
        *, staff_only: bool, owner_may: bool, allowed: tuple[str, ...], new_status: str,
        extra_check: Any = None,
    ) -> None:
        order = self.model[order_id]
        reply = self.post(f"/orders/{order_id}/{route}", body, user, self.if_match(order, if_match))
        is_staff = user == STAFF
        if staff_only and not is_staff:
            return self.expect(reply, 403, "forbidden")
        if not (is_staff or (owner_may and user == order.owner)):
            return self.expect(reply, 404, "not-found")
        if if_match == "stale":
            self.expect(reply, 412, "version-mismatch")
            assert reply.json["current_version"] == order.version
            return None
        verdict = extra_check(order) if extra_check else None
        if verdict == "no-op":
            self.expect(reply, 200)
            assert reply.json["version"] == order.version and reply.json["status"] == order.status
            return None
        if order.status not in allowed:
            return self.expect(reply, 409, "invalid-transition")
        if verdict is not None:
            return self.expect(reply, 409, verdict)
        self.expect(reply, 200)
        event(f"{route} -> {new_status}")
        order.status, order.version = new_status, order.version + 1
        assert reply.json["version"] == order.version and reply.json["status"] == new_status
        assert reply.headers["etag"] == f'"{order.version}"'
        return None

    # -- rules ----------------------------------------------------------------------------------
    @rule(target=orders, owner=st.sampled_from(OWNERS), items=lines, currency=st.sampled_from(["USD", "EUR"]))
    def place(self, owner: str, items: list[dict[str, Any]], currency: str) -> str:
        reply = self.post("/orders", {"items": items, "currency": currency}, owner)
        self.expect(reply, 201)
        total = sum((Decimal(i["unit_price"]) * i["quantity"] for i in items), Decimal(0)).quantize(CENT)
        body = reply.json
        assert (body["status"], body["version"], Decimal(body["total"])) == ("CREATED", 1, total)
        assert reply.headers["location"] == f"/orders/{body['order_id']}"
        self.model[body["order_id"]] = Order(body["order_id"], owner, total, currency)
        return body["order_id"]

    @rule(
        order_id=orders,
        user=st.sampled_from([STAFF, STAFF, "alice", STRANGER]),
        right_amount=st.booleans(),
        payment_id=st.sampled_from(["pay-1", "pay-2"]),
        if_match=st.sampled_from([None, None, "current", "stale"]),
    )
    def pay(self, order_id: str, user: str, right_amount: bool, payment_id: str, if_match: str | None) -> None:
        order = self.model[order_id]
        amount = order.total if right_amount else order.total + CENT

        def check(o: Order) -> str | None:
            if o.status == "PAID" and o.payment_id == payment_id:
                return "no-op"
            if o.status == "CREATED" and amount != o.total:
                return "payment-amount-mismatch"
            return None

        before = order.status
        self.transition(
            order_id, "payment", {"payment_id": payment_id, "amount": str(amount)}, user, if_match,
            staff_only=True, owner_may=False, allowed=("CREATED",), new_status="PAID", extra_check=check,
        )
        if before == "CREATED" and order.status == "PAID":
            order.payment_id = payment_id

    @rule(order_id=orders, if_match=st.sampled_from([None, "current"]))
    def advance(self, order_id: str, if_match: str | None) -> None:
        """Staff moves the order one step along the happy path (what the model says comes next)."""
        order = self.model[order_id]
        if order.status == "CREATED":
            self.pay(order_id, STAFF, True, "pay-1", if_match)
        elif order.status == "PAID":
            self.ship(order_id, STAFF, if_match)
        elif order.status == "SHIPPED":
            self.deliver(order_id, STAFF)
        else:  # final: every transition is refused
            self.ship(order_id, STAFF, if_match)

    @rule(order_id=orders, user=st.sampled_from([STAFF, STAFF, "bob"]), if_match=st.sampled_from([None, "current", "stale"]))
    def ship(self, order_id: str, user: str, if_match: str | None) -> None:
        self.transition(
            order_id, "shipment", {"tracking": "TRK1"}, user, if_match,
            staff_only=True, owner_may=False, allowed=("PAID",), new_status="SHIPPED",
        )

    @rule(order_id=orders, user=st.sampled_from([STAFF, STAFF, "alice"]))
    def deliver(self, order_id: str, user: str) -> None:
        self.transition(
            order_id, "delivery", {}, user, None, staff_only=True, owner_may=False, allowed=("SHIPPED",), new_status="DELIVERED"
        )

    @rule(order_id=orders, who=st.sampled_from(["owner", "owner", STAFF, STRANGER]), if_match=st.sampled_from([None, "stale"]))
    def cancel(self, order_id: str, who: str, if_match: str | None) -> None:
        user = self.model[order_id].owner if who == "owner" else who
        self.transition(
            order_id, "cancellation", {"reason": "changed my mind"}, user, if_match,
            staff_only=False, owner_may=True, allowed=("CREATED", "PAID"), new_status="CANCELLED",
        )

    @rule(data=st.data())
    def repeat_with_the_same_key(self, data: st.DataObject) -> None:
        """A success again with its key: the same answer, nothing appended; another body: 422.
        (Errors are not remembered: a repeat is decided afresh, which the other rules cover.)"""
        done = [s for s in self.sent if s[5].status < 300]
        if not done:
            return
        path, body, user, groups, key, first = data.draw(st.sampled_from(done))
        versions = {o: m.version for o, m in self.model.items()}
        again = self.commands.post(path, body, user=user, groups=groups, headers={"Idempotency-Key": key})
        assert (again.status, again.json) == (first.status, first.json)
        assert again.headers.get("idempotent-replayed") == "true"
        changed = {**body, "reason": "other"} if "reason" in body else {**body, "tracking": "OTHER"} if "tracking" in body else None
        if changed is not None and data.draw(st.booleans()):
            reused = self.commands.post(path, changed, user=user, groups=groups, headers={"Idempotency-Key": key})
            self.expect(reused, 422, "idempotency-key-reused")
        store = self.world.store("orders")
        for order_id, version in versions.items():
            assert store.current_version(order_id) == version

    @rule(order_id=orders, who=st.sampled_from(["owner", STAFF, STRANGER]))
    def read_your_writes(self, order_id: str, who: str) -> None:
        order = self.model[order_id]
        user = order.owner if who == "owner" else who
        groups = ("staff",) if user == STAFF else ()
        reply = self.queries.get(f"/orders/{order_id}", user=user, groups=groups, query={"min_version": order.version})
        if user == STRANGER:
            return self.expect(reply, 404, "not-found")
        self.expect(reply, 200)
        view = reply.json
        assert (view["status"], view["version"], Decimal(view["total"])) == (order.status, order.version, order.total)
        assert [t["version"] for t in view["timeline"]] == list(range(1, order.version + 1))
        return None

    @rule()
    def project_and_read(self) -> None:
        """The projection Lambda catches up; then a plain GET (the read model) equals the model."""
        from orders.projections import handler

        records = [r for r in self.world.new_stream_records() if r["dynamodb"]["Keys"]["stream_id"]["S"].startswith("order-")]
        if records:
            deliver(handler, one_shard(records), batch_size=25)
        for order in self.model.values():
            view = self.queries.get(f"/orders/{order.order_id}", user=order.owner).json
            assert (view["status"], view["version"]) == (order.status, order.version)

    @rule(order_id=orders, kind=st.sampled_from(["throttle", "crash-after"]), at=st.integers(0, 3))
    def ship_through_a_fault(self, order_id: str, kind: str, at: int) -> None:
        """Ship (staff) with a fault at the ``at``-th AWS call; the client retries with its key."""
        order = self.model[order_id]
        key = self.key()
        outcome: Reply | None = None
        with self.world.injector.armed(Fault(kind, at, persistent=True)):
            for _ in range(4):
                try:
                    outcome = self.commands.post(
                        f"/orders/{order_id}/shipment", {"tracking": "TRK2"}, user=STAFF, groups=("staff",),
                        headers={"Idempotency-Key": key},
                    )
                except SimulatedCrash:
                    cold_start()
                    continue
                if outcome.status == 503:
                    assert problem_503(outcome), outcome.text
                    continue
                break
        assert outcome is not None and outcome.status != 503
        if order.status == "PAID":
            self.expect(outcome, 200)
            order.status, order.version = "SHIPPED", order.version + 1
            assert outcome.json["version"] == order.version
        else:
            self.expect(outcome, 409, "invalid-transition")

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def the_store_is_the_model(self) -> None:
        from orders import domain

        store = self.world.store("orders")
        for order in self.model.values():
            events = list(store.read(order.order_id))
            assert [e.version for e in events] == list(range(1, order.version + 1)), order
            state = domain.initial_state()
            for stored in events:
                state = domain.evolve(state, stored.data)
            assert state.status.value == order.status and state.total == order.total, order


@pytest.mark.slow
def test_orders_behave_like_the_model():
    run_state_machine_as_test(
        OrdersMachine,
        settings=settings(
            max_examples=examples(25),
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
