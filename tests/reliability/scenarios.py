"""Command scenarios driven through the real HTTP Lambda handlers, with a client that retries.

The client does what API.md asks of one: every POST carries an ``Idempotency-Key``; a crashed
invocation (API Gateway answers 502) or a 503 is retried with the same key and body. After a
crash the next invocation runs in a new container (cold: nothing cached).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.functional.conftest import ORDER_BODY, ORDER_TOTAL, Api, Reply
from tests.reliability.faults import SimulatedCrash
from tests.reliability.world import World, cold_start, problem_503


@dataclass(frozen=True)
class Step:
    name: str
    api: str  # "orders" | "accounts"
    path: str  # placeholders {order}, {account}: ids the earlier steps created
    body: dict[str, Any]
    user: str
    expect: int
    groups: tuple[str, ...] = ()
    key: str | None = None
    if_match: str | None = None
    creates: str | None = None  # the id field of the response to remember ("order_id" -> {order})
    as_name: str | None = None  # the placeholder for it (default: "order" / "account")


ORDER_STEPS = (
    Step("create", "orders", "/orders", ORDER_BODY, "alice", 201, key="k-create", creates="order_id"),
    Step(
        "pay",
        "orders",
        "/orders/{order}/payment",
        {"payment_id": "pay-1", "amount": ORDER_TOTAL},
        "clerk",
        200,
        groups=("staff",),
        key="k-pay",
    ),
    Step("ship", "orders", "/orders/{order}/shipment", {"tracking": "TRK123"}, "clerk", 200, ("staff",), "k-ship"),
    Step("deliver", "orders", "/orders/{order}/delivery", {}, "clerk", 200, ("staff",), "k-deliver"),
    Step("cancel-late", "orders", "/orders/{order}/cancellation", {"reason": "too late"}, "alice", 409, key="k-cancel"),
)

ACCOUNT_STEPS = (
    Step("open", "accounts", "/accounts", {"currency": "USD"}, "bob", 201, key="k-open", creates="account_id"),
    Step("deposit", "accounts", "/accounts/{account}/deposits", {"amount": "100.00"}, "bob", 200, key="k-dep-1"),
    Step(
        "withdraw",
        "accounts",
        "/accounts/{account}/withdrawals",
        {"amount": "30.00"},
        "bob",
        200,
        key="k-wd-1",
        if_match='"2"',
    ),
    Step("overdraw", "accounts", "/accounts/{account}/withdrawals", {"amount": "500.00"}, "bob", 409, key="k-wd-2"),
    Step("deposit-cent", "accounts", "/accounts/{account}/deposits", {"amount": "0.01"}, "bob", 200, key="k-dep-2"),
)

SCENARIOS = {"orders": ORDER_STEPS, "accounts": ACCOUNT_STEPS}

# what the projection tests project: both scenarios and a second order, cancelled, in EUR
SECOND_ORDER_STEPS = (
    Step(
        "create-2",
        "orders",
        "/orders",
        {"items": [{"sku": "SKU-9", "quantity": 3, "unit_price": "5.25"}], "currency": "EUR"},
        "carol",
        201,
        key="k-create-2",
        creates="order_id",
        as_name="order2",
    ),
    Step("cancel-2", "orders", "/orders/{order2}/cancellation", {"reason": "changed my mind"}, "carol", 200, key="k-c2"),
)
PROJECTED_STEPS = ORDER_STEPS + ACCOUNT_STEPS + SECOND_ORDER_STEPS
_CREATED = {"order_id": "order", "account_id": "account"}


@dataclass
class Attempt:
    step: str
    reply: Reply | None  # None: the invocation crashed

    @property
    def status(self) -> int:
        return 502 if self.reply is None else self.reply.status  # API Gateway's answer to a crash


@dataclass
class Outcome:
    finals: dict[str, Reply] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    calls_before: dict[str, int] = field(default_factory=dict)  # step -> AWS calls made before it

    def step_of_call(self, index: int) -> str:
        current = "?"
        for step, first in self.calls_before.items():
            if index >= first:
                current = step
        return current


def apis() -> dict[str, Api]:
    from accounts.api import handler as accounts_handler
    from orders.api import handler as orders_handler

    return {"orders": Api(orders_handler), "accounts": Api(accounts_handler)}


def send(api: Api, step: Step, ids: dict[str, str]) -> Reply:
    headers: dict[str, str] = {}
    if step.key is not None:
        headers["Idempotency-Key"] = step.key
    if step.if_match is not None:
        headers["If-Match"] = step.if_match
    return api.post(step.path.format(**ids), step.body, user=step.user, groups=step.groups, headers=headers)


def run(world: World, steps: tuple[Step, ...], *, cold_each_step: bool = False, max_attempts: int = 8) -> Outcome:
    """Every step until it gets a final answer (not a crash, not a 503)."""
    outcome = Outcome()
    handlers = apis()
    for step in steps:
        if cold_each_step:
            cold_start()
        outcome.calls_before[step.name] = len(world.injector.calls)
        for _ in range(max_attempts):
            try:
                reply = send(handlers[step.api], step, outcome.ids)
            except SimulatedCrash:
                outcome.attempts.append(Attempt(step.name, None))
                cold_start()  # Lambda replaces the dead container
                continue
            outcome.attempts.append(Attempt(step.name, reply))
            if reply.status == 503:
                continue  # the client honours Retry-After (instantly here) on the warm container
            break
        else:
            raise AssertionError(f"{step.name}: no final answer after {max_attempts} attempts")
        outcome.finals[step.name] = reply
        if step.creates is not None and reply.status < 300:
            outcome.ids[step.as_name or _CREATED[step.creates]] = reply.json[step.creates]
    return outcome


def normalized(reply: Reply, ids: dict[str, str]) -> dict[str, Any]:
    """Status, body and the headers a client relies on, with generated ids as placeholders."""
    text = reply.text
    for name, value in ids.items():
        text = text.replace(value, "{" + name + "}")
    body = json.loads(text) if text else None
    if isinstance(body, dict):
        body.pop("correlation_id", None)
    headers = {k: reply.headers.get(k) for k in ("content-type", "etag", "location")}
    if headers["location"]:
        for name, value in ids.items():
            headers["location"] = headers["location"].replace(value, "{" + name + "}")
    return {"status": reply.status, "body": body, "headers": headers}


def shape(world: World) -> list[tuple[str, tuple[str, ...]]]:
    """What the store holds, ids aside: per stream its aggregate type and event types in order."""
    streams = world.event_items()
    return sorted((sid.split("-", 1)[0], tuple(i["type"]["S"] for i in items)) for sid, items in streams.items())


def event_data(world: World, ids: dict[str, str]) -> list[tuple[str, int, str, Any]]:
    """Every event's payload (ids as placeholders, timestamps aside): equal across runs."""
    out = []
    for stream_id, items in world.event_items().items():
        for item in items:
            text = item["data"]["S"]
            for name, value in ids.items():
                text = text.replace(value, "{" + name + "}")
            name = stream_id
            for placeholder, value in ids.items():
                name = name.replace(value, "{" + placeholder + "}")
            out.append((name, int(item["version"]["N"]), item["type"]["S"], json.loads(text)))
    return sorted(out, key=lambda e: (e[0], e[1]))


def check_attempts(outcome: Outcome) -> None:
    """A client only ever sees the final answer, a crash (502) or a 503 problem+json with Retry-After."""
    for attempt in outcome.attempts:
        reply = attempt.reply
        if reply is None or reply is outcome.finals.get(attempt.step):
            continue
        assert problem_503(reply), f"{attempt.step}: {reply.status} {reply.headers} {reply.text}"
    for step, reply in outcome.finals.items():
        assert reply.status < 500, f"{step}: {reply.status} {reply.text}"


def replay_all(world: World, steps: tuple[Step, ...], outcome: Outcome) -> None:
    """Every request again (same keys): the same answers, nothing appended."""
    before = sum(len(v) for v in world.event_items().values())
    handlers = apis()
    for step in steps:
        again = send(handlers[step.api], step, outcome.ids)
        first = outcome.finals[step.name]
        got, want = normalized(again, outcome.ids), normalized(first, outcome.ids)
        if first.status >= 400:
            # a refusal is not remembered: the repeat is decided again (later steps may have
            # changed the details), but it is refused the same way and appends nothing
            got, want = (got["status"], got["body"]["type"]), (want["status"], want["body"]["type"])
        assert got == want, f"{step.name}: the repeat answered {got}, the first answer was {want}"
        if again.status < 300:
            assert again.headers.get("idempotent-replayed") == "true", step.name
    assert sum(len(v) for v in world.event_items().values()) == before


ID_PATTERN = re.compile(r"(order|account)-[0-9a-f-]{36}")
