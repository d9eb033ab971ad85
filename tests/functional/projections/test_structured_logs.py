"""Every log line of a function is structured: the library's and the contexts' loggers
(``logging.getLogger(__name__)``) go through the function's Powertools Logger, with its keys
(correlation id), at its level (INFO kept although Lambda's root logger is at WARNING).

The capture is not the service logger's: a handler on the ROOT logger at DEBUG sees whatever would
escape to Lambda's plain-text handler, and the process stdout is read line by line."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator

import pytest


class Everything(logging.Handler):
    """What reaches the root logger (Lambda's own handler): must be nothing of ours."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, Everything]]:
    root = logging.getLogger()
    everything = Everything()
    saved = root.level
    root.addHandler(everything)
    root.setLevel(logging.WARNING)  # the Lambda Python runtime's default
    stdout = io.StringIO()
    yield stdout, everything
    root.removeHandler(everything)
    root.setLevel(saved)


def lines_of(stdout: io.StringIO) -> list[dict]:
    out = []
    for line in stdout.getvalue().splitlines():
        assert line.startswith("{"), f"unstructured line: {line!r}"
        doc = json.loads(line)
        if "_aws" not in doc:
            out.append(doc)
    return out


def redirect(logger, stdout: io.StringIO):
    """Point the Powertools handler(s) at ``stdout`` for the test: the function's, and whatever the
    packages' loggers hold (other modules of this test process may have routed them last)."""
    from cairn.logs import PACKAGES

    handlers = {id(h): h for name in PACKAGES for h in logging.getLogger(name).handlers
                if isinstance(h, logging.StreamHandler) and type(h).__module__ == "logging"}
    handlers[id(logger.registered_handler)] = logger.registered_handler
    previous = [(h, h.setStream(stdout)) for h in handlers.values()]

    def restore() -> None:
        for handler, stream in previous:
            if stream is not None:
                handler.setStream(stream)

    return restore


def test_library_and_context_loggers_carry_the_correlation_id(captured, monkeypatch):
    from aws_lambda_powertools import Logger

    from cairn.logs import PACKAGES, structured

    stdout, everything = captured
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    logger = structured(Logger(service="probe"), force=True)
    restore = redirect(logger, stdout)
    try:
        logger.set_correlation_id("cid-123")
        logging.getLogger("cairn.projections.parking").info("parked", extra={"stream_id": "order-1"})
        logging.getLogger("payments.service").warning("refunding", extra={"stream_id": "order-2"})
        logging.getLogger("cairn.some.module.loaded.later").info("late module")
        logging.getLogger("cairn").debug("below the level: dropped")
    finally:
        restore()
    lines = lines_of(stdout)
    assert [line["message"] for line in lines] == ["parked", "refunding", "late module"]
    for line in lines:
        assert line["correlation_id"] == "cid-123" and line["service"] == "probe"
        assert {"level", "timestamp", "location"} <= set(line)
    assert lines[0]["stream_id"] == "order-1" and lines[0]["level"] == "INFO"
    assert lines[1]["stream_id"] == "order-2" and lines[1]["level"] == "WARNING"
    assert not [r for r in everything.records if r.name.split(".")[0] in PACKAGES]


def test_a_projection_batch_logs_its_park_as_structured_lines(harness, captured, monkeypatch):
    """The real handler on a poison record: engine, consumer and parking lines, all JSON."""
    from projection_support import seed_orders, stream_of, version_of

    from cairn.logs import PACKAGES
    from orders import projections

    stdout, everything = captured
    rng = random.Random(7)
    [victim] = seed_orders(harness, rng, 1)
    records = [r for r in harness.reader.new() if stream_of(r) == victim]
    for record in records:
        if version_of(record) == 1:
            record["dynamodb"]["NewImage"]["data"] = {"S": "{not json"}
    from cairn.logs import structured

    # as in the OrdersProjections process, where orders.projections is the one module routing them
    # (this test process imported other functions' modules too, each routing to its own logger)
    structured(projections.logger, force=True)
    restore = redirect(projections.logger, stdout)
    try:
        for _ in range(3):  # attempts, then parked
            projections.handler({"Records": records}, _Context())
    finally:
        restore()
    lines = lines_of(stdout)
    by_logger = {}
    for line in lines:
        by_logger.setdefault(line.get("location", "").split(":")[0], []).append(line)
    parked = [line for line in lines if "parked" in line["message"] and line.get("stream_id") == victim]
    assert parked and parked[0]["level"] == "ERROR" and parked[0]["projection"] in ("order_view", "user_orders", "analytics")
    failed = [line for line in lines if "failed at" in line["message"]]
    assert failed and all(line["stream_id"] == victim for line in failed)
    batch = [line for line in lines if line["message"].startswith("batch:")]
    assert batch and all(line["level"] == "INFO" and line["function_request_id"] == "req-1" for line in batch)
    assert not [r for r in everything.records if r.name.split(".")[0] in PACKAGES]


class _Context:
    function_name = "OrdersProjections"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:OrdersProjections"
    aws_request_id = "req-1"


def test_the_first_routing_wins(monkeypatch):
    """The handler module routes first; a module imported later (Ops builds /openapi.json from every
    HTTP module) does not take the library's lines to its own service."""
    from aws_lambda_powertools import Logger

    from cairn.logs import structured

    first = structured(Logger(service="first-service"), force=True)
    structured(Logger(service="later-service"))
    assert logging.getLogger("cairn").handlers == [first.registered_handler]
    assert logging.getLogger("orders").handlers == [first.registered_handler]
