"""The command path under every fault at every AWS call: no loss, no duplicate, honest answers.

A clean run of a scenario (through the real HTTP Lambda handlers, on moto) records its AWS calls;
then, for every call index and every fault kind, a fresh world runs the same scenario with that
one fault injected at that call. Whatever happens, the client that retries (same Idempotency-Key)
must end with the clean run's answers, the store must hold the clean run's events exactly once,
every event inside its idempotency marker's range (nothing partially written), and a repeat of
every request must replay the first answers and append nothing.

Fault kinds (tests/reliability/faults.py): throttling, 500, a timeout before the service saw the
request, a lost response (the service did it, the caller timed out), each once (botocore's retries
absorb it: no visible effect at all) or on every attempt (the SDK gives up: the HTTP layer answers
503 problem+json with Retry-After, or the call was optional, e.g. the snapshot GET); and a crash
right after the call returned (the Lambda dies; the retry lands in a new container).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.reliability.faults import Fault
from tests.reliability.scenarios import (
    ORDER_STEPS,
    SCENARIOS,
    apis,
    check_attempts,
    event_data,
    normalized,
    replay_all,
    run,
    send,
    shape,
)
from tests.reliability.world import check_store, problem_503

FAULTS = (
    ("throttle", False),
    ("throttle", True),
    ("server-error", False),
    ("server-error", True),
    ("timeout", False),
    ("timeout", True),
    ("lost-response", False),
    ("lost-response", True),
    ("crash-after", False),
)
# Cold containers add a snapshot GET and a Query before every append; the kinds that behave
# differently there (the SDK giving up, a write whose answer is lost, a crash) run on every call.
FAULTS_COLD = (("throttle", True), ("lost-response", True), ("crash-after", False))


def baseline(new_world: Any, scenario: str, cold: bool) -> dict[str, Any]:
    steps = SCENARIOS[scenario]
    with new_world() as world:
        with world.injector.armed():
            outcome = run(world, steps, cold_each_step=cold)
        trace = world.injector.trace()
        check_store(world)
        result = {
            "trace": trace,
            "outcome": outcome,
            "answers": {s: normalized(r, outcome.ids) for s, r in outcome.finals.items()},
            "shape": shape(world),
            "data": event_data(world, outcome.ids),
        }
    assert [outcome.finals[s.name].status for s in steps] == [s.expect for s in steps], {
        s: (r.status, r.text) for s, r in outcome.finals.items()
    }
    assert len(outcome.attempts) == len(steps)
    return result


def run_with_fault(new_world: Any, scenario: str, cold: bool, fault: Fault, base: dict[str, Any]) -> None:
    steps = SCENARIOS[scenario]
    planned = base["trace"][fault.at]
    with new_world() as world:
        with world.injector.armed(fault):
            outcome = run(world, steps, cold_each_step=cold)
        trace = world.injector.trace()
        fired = list(world.injector.fired)
        assert fired, "the fault never fired"
        assert trace[fault.at].operation == planned.operation, "the path changed before the fault"
        check_attempts(outcome)
        answers = {s: normalized(r, outcome.ids) for s, r in outcome.finals.items()}
        assert answers == base["answers"]
        assert shape(world) == base["shape"]
        assert event_data(world, outcome.ids) == base["data"]
        check_store(world)
        if fault.kind != "crash-after" and not fault.persistent:
            # absorbed by botocore's retries: the client never noticed
            assert len(outcome.attempts) == len(steps), [(a.step, a.status) for a in outcome.attempts]
        if fault.persistent:
            visible = [a for a in outcome.attempts if a.reply is not None and a.reply.status == 503]
            optional = planned.service == "s3"  # the snapshot is an optimisation: replay instead
            assert bool(visible) != optional, [(a.step, a.status) for a in outcome.attempts]
        if fault.kind == "crash-after":
            assert any(a.reply is None for a in outcome.attempts)
        replay_all(world, steps, outcome)


def enumerate_faults(new_world: Any, scenario: str, cold: bool) -> tuple[int, list[str]]:
    base = baseline(new_world, scenario, cold)
    trace = base["trace"]
    operations = {c.operation for c in trace}
    assert {"Query", "GetItem"} <= operations and operations & {"PutItem", "TransactWriteItems"}, operations
    failures: list[str] = []
    runs = 0
    for call in trace:
        for kind, persistent in FAULTS_COLD if cold else FAULTS:
            fault = Fault(kind, call.index, persistent)
            runs += 1
            try:
                run_with_fault(new_world, scenario, cold, fault, base)
            except AssertionError as exc:
                step = base["outcome"].step_of_call(call.index)
                failures.append(f"{fault} on {call} (step {step}): {str(exc)[:600]}")
    return runs, failures


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
def test_every_fault_at_every_call_of_the_command_path(new_world, scenario, cold):
    runs, failures = enumerate_faults(new_world, scenario, cold)
    assert runs >= len(SCENARIOS[scenario]) * len(FAULTS_COLD if cold else FAULTS)
    assert not failures, f"{len(failures)} of {runs} runs failed:\n" + "\n".join(failures[:15])


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"])
def test_exhausted_throttling_of_the_append_is_a_503_problem_and_writes_nothing(world, code):
    """The append throttled on every attempt: the client sees 503 problem+json with Retry-After,
    the store has nothing of the command, and the retry (same key) writes it exactly once."""
    api = apis()["orders"]
    create = ORDER_STEPS[0]
    with world.injector.armed():
        send(api, replace(create, key="k-warm-up"), {})  # the same path: learn where the append is
    append = next(c for c in world.injector.trace() if c.operation == "TransactWriteItems")
    assert len(world.event_items()) == 1

    with world.injector.armed(Fault("throttle", append.index, persistent=True, code=code)):
        reply = send(api, create, {})
        fired = list(world.injector.fired)
    assert problem_503(reply), (reply.status, reply.headers, reply.text)
    assert reply.json["type"] == "https://cairn.dev/problems/service-unavailable"
    assert [f.attempt for f in fired] == [1, 2, 3]  # botocore tried 3 times, every one throttled
    assert len(world.event_items()) == 1 and len(world.markers()) == 1  # nothing of it was written

    retry = send(api, create, {})
    assert retry.status == 201 and retry.headers.get("idempotent-replayed") is None
    assert len(world.event_items()) == 2
    again = send(api, create, {})
    assert again.json == retry.json and again.headers.get("idempotent-replayed") == "true"
    assert len(world.event_items()) == 2
    check_store(world)
