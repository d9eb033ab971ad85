"""The query path under every fault at every AWS call: the clean answer or a 503 problem+json
with Retry-After (never a 500, never a wrong answer), and the clean answer again once it passed."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Api
from tests.reliability.faults import Fault
from tests.reliability.scenarios import ACCOUNT_STEPS, ORDER_STEPS, run
from tests.reliability.world import cold_start, deliver, one_shard, problem_503

FAULTS = (("throttle", True), ("server-error", True), ("timeout", True), ("throttle", False), ("lost-response", False))


def reads(ids: dict[str, str]) -> list[tuple[str, str, dict, str, tuple[str, ...]]]:
    order, account = ids["order"], ids["account"]
    return [
        ("orders", f"/orders/{order}", {}, "alice", ()),
        ("orders", f"/orders/{order}", {"min_version": 4}, "alice", ()),
        ("orders", f"/orders/{order}/history", {"version": 2}, "alice", ()),
        ("orders", f"/orders/{order}/events", {"after": 1, "limit": 2}, "alice", ()),
        ("orders", "/users/me/orders", {}, "alice", ()),
        ("orders", "/analytics/daily", {"from": "2020-01-01", "to": "2020-12-31"}, "clerk", ("staff",)),
        ("accounts", f"/accounts/{account}", {"min_version": 4}, "bob", ()),
        ("accounts", f"/accounts/{account}/history", {"version": 3}, "bob", ()),
    ]


@pytest.mark.slow
def test_every_fault_at_every_call_of_the_query_path(world):
    from accounts.projections import handler as accounts_projections
    from accounts.queries import handler as accounts_queries
    from orders.projections import handler as orders_projections
    from orders.queries import handler as orders_queries

    outcome = run(world, ORDER_STEPS + ACCOUNT_STEPS)
    deliver(orders_projections, one_shard(world.stream_records("order-")))
    deliver(accounts_projections, one_shard(world.stream_records("account-")[:2]))  # the account view lags
    apis = {"orders": Api(orders_queries), "accounts": Api(accounts_queries)}

    failures: list[str] = []
    runs = 0
    for api, path, query, user, groups in reads(outcome.ids):
        cold_start()
        with world.injector.armed():
            clean = apis[api].get(path, query=query, user=user, groups=groups)
            trace = world.injector.trace()
        assert clean.status == 200 and trace, (path, clean.status, clean.text)
        for call in trace:
            for kind, persistent in FAULTS:
                runs += 1
                cold_start()
                with world.injector.armed(Fault(kind, call.index, persistent)):
                    reply = apis[api].get(path, query=query, user=user, groups=groups)
                    fired = bool(world.injector.fired)
                again = apis[api].get(path, query=query, user=user, groups=groups)
                label = f"{kind}{'*' if persistent else ''} on {call} of GET {path}"
                if not fired:
                    failures.append(f"{label}: never fired")
                elif reply.status == 503:
                    if not persistent or not problem_503(reply):
                        failures.append(f"{label}: {reply.status} {reply.headers} {reply.text[:200]}")
                elif (reply.status, reply.json) != (clean.status, clean.json):
                    failures.append(f"{label}: {reply.status} {reply.text[:300]}")
                if (again.status, again.json) != (clean.status, clean.json):
                    failures.append(f"{label}: afterwards {again.status} {again.text[:300]}")
    assert runs > 40
    assert not failures, f"{len(failures)} of {runs} runs failed:\n" + "\n".join(failures[:15])
