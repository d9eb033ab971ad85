"""The projection path under every fault at every AWS call: read models == fold of the store.

A world runs the command scenarios (two orders, one account); its stream records (moto's
GetRecords, in Lambda's shape) are delivered to the OrdersProjections and AccountsProjections
handlers in two batches each, through an emulated event source mapping (bisect on a function
error, resume from the lowest reported failure). The clean delivery records its AWS calls; then,
for every call and fault kind, the read models are emptied and the same records delivered again
with that one fault.

Whatever the fault, once the mapping has drained: every read model equals the fold of the store
(checked through the query-side readers, by an independent analytics computation, and by the
strict audit), analytics counters moved exactly once, and no stream was parked — a transient
fault or a crash must never be mistaken for a poison event.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tests.reliability.faults import Fault
from tests.reliability.scenarios import PROJECTED_STEPS, run
from tests.reliability.world import (
    PROJECTION_TABLES,
    MappingStats,
    World,
    check_read_models,
    deliver,
    one_shard,
)

FAULTS = (
    ("throttle", False),
    ("throttle", True),
    ("server-error", True),
    ("timeout", True),
    ("lost-response", False),
    ("lost-response", True),
    ("crash-after", False),
)
CONSUMERS = (("order-", "orders.projections"), ("account-", "accounts.projections"))


def project(records: dict[str, list[dict[str, Any]]]) -> dict[str, MappingStats]:
    """Each consumer's records in two batches (the second meets existing checkpoints)."""
    stats = {}
    for prefix, module in CONSUMERS:
        handler = importlib.import_module(module).handler
        mine = records[prefix]
        stats[prefix] = deliver(handler, one_shard(mine), batch_size=max(1, (len(mine) + 1) // 2))
    return stats


def checkpoint_puts(call: Any) -> set[tuple[str, str]]:
    """(table, pk) of the checkpoints a TransactWriteItems call advances."""
    if call.operation != "TransactWriteItems":
        return set()
    return {
        (op["Put"]["TableName"], op["Put"]["Item"]["pk"]["S"])
        for op in call.request().get("TransactItems", [])
        if op.get("Put", {}).get("Item", {}).get("sk") == {"S": "cp"}
    }


def nothing_parked(world: World) -> None:
    for var in PROJECTION_TABLES.values():
        parked = [i for i in world.scan(world.env[var]) if i["pk"]["S"] == "_parked"]
        assert not parked, parked
    assert not world.sqs.receive_message(QueueUrl=world.queue_url).get("Messages")


@pytest.mark.slow
def test_every_fault_at_every_call_of_the_projection_path(world):
    outcome = run(world, PROJECTED_STEPS)
    assert [r.status for r in outcome.finals.values()] == [s.expect for s in PROJECTED_STEPS]
    records = {prefix: world.stream_records(prefix) for prefix, _ in CONSUMERS}
    assert len(records["order-"]) == 6 and len(records["account-"]) == 4

    with world.injector.armed():
        clean = project(records)
    trace = world.injector.trace()
    check_read_models(world)
    nothing_parked(world)
    assert all(s.crashes == s.partial_failures == s.function_errors == 0 for s in clean.values())
    operations = [c.operation for c in trace]
    # orders: its 3 projections share one transaction per batch; accounts: one; two batches each
    assert operations.count("TransactWriteItems") >= 4, operations
    assert "BatchGetItem" in operations, operations

    failures: list[str] = []
    for call in trace:
        for kind, persistent in FAULTS:
            fault = Fault(kind, call.index, persistent)
            world.reset_read_models()
            try:
                with world.injector.armed(fault):
                    stats = project(records)
                assert world.injector.fired, "the fault never fired"
                assert world.injector.calls[fault.at].operation == call.operation, "the path changed"
                check_read_models(world)
                nothing_parked(world)
                shared = checkpoint_puts(call)
                if kind == "crash-after":
                    assert sum(s.crashes for s in stats.values()) == 1
                elif persistent and len(shared) > 1:
                    # a shared transaction (several projections/streams) that keeps failing is
                    # absorbed in the same invocation: each of its checkpoints is then advanced
                    # by a per-stream transaction (docs/projections.md, "Shared transactions")
                    later = [checkpoint_puts(c) for c in world.injector.calls[fault.at + 1 :]]
                    assert all(any(single == {cp} for single in later) for cp in shared), later
                elif persistent:
                    assert sum(s.partial_failures + s.function_errors for s in stats.values()) >= 1, stats
            except AssertionError as exc:
                failures.append(f"{fault} on {call}: {str(exc)[:800]}")
    runs = len(trace) * len(FAULTS)
    assert not failures, f"{len(failures)} of {runs} runs failed:\n" + "\n".join(failures[:15])
