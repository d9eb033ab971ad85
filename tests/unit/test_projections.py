"""Pure parts of the projections: codec, coalesced writes, record grouping, cursors, view folds."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.events import EventEnvelope, EventMetadata
from cairn.projections import StreamBatch, Writes, group_records
from cairn.projections.codec import from_attr, from_item, to_attr, to_item
from cairn.projections.consumer import RecordPosition, lowest_failed_record
from orders import domain
from orders.read_models import (
    InvalidCursorError,
    _decode_cursor,
    _encode_cursor,
    analytics_row,
    order_stream_id,
    order_view_from_events,
    user_order_evolve,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=20) | st.integers(-(10**12), 10**12)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_codec_round_trips_by_value(value):
    assert from_attr(to_attr(value)) == value


def test_codec_refuses_floats_and_keeps_integers_integers():
    with pytest.raises(TypeError):
        to_attr(1.5)
    assert from_item(to_item({"v": 7, "m": Decimal("19.99"), "z": Decimal("3.00")})) == {"v": 7, "m": Decimal("19.99"), "z": Decimal("3")}
    assert isinstance(from_attr({"N": "7"}), int)


def test_writes_coalesce_per_item():
    writes = Writes()
    writes.add("d", "1", {"n": 1, "r": Decimal("2.50")}, {"date": "x"})
    writes.add("d", "1", {"n": 2, "r": Decimal("1.25")})
    writes.put("p", "1", {"a": 1})
    writes.add("p", "1", {"a": 2, "b": 1})  # an ADD after a put updates the put
    writes.delete("q", "1")
    writes.add("q", "1", {"n": 5})  # an ADD after a delete starts from zero
    by_key = {(w.pk, w.sk): w for w in writes}
    assert len(writes) == 3
    assert (by_key[("d", "1")].kind, by_key[("d", "1")].counters, by_key[("d", "1")].attrs) == (
        "add", {"n": 3, "r": Decimal("3.75")}, {"date": "x"}
    )
    assert (by_key[("p", "1")].kind, by_key[("p", "1")].attrs) == ("put", {"a": 3, "b": 1})
    assert (by_key[("q", "1")].kind, by_key[("q", "1")].attrs) == ("put", {"n": 5})
    with pytest.raises(ValueError):
        writes.add("d", "1", {"x": 1}, {"x": 2})


def record(stream_id: str, version: int, seq: int, image: dict | None = None, name: str = "INSERT") -> dict:
    body = {"Keys": {"stream_id": {"S": stream_id}, "version": {"N": str(version)}}, "SequenceNumber": str(seq)}
    if image is not None:
        body["NewImage"] = image
    return {"eventName": name, "dynamodb": body}


def envelope(stream_id: str, version: int) -> EventEnvelope:
    return EventEnvelope("id", stream_id, version, "OrderDelivered", 1, "2026-01-01T00:00:00.000Z", domain.OrderDelivered(), EventMetadata())


def test_group_records_orders_nothing_and_keeps_decode_errors_in_place():
    def decode(image):
        if image.get("bad"):
            raise ValueError("corrupt")
        return envelope(image["s"], image["v"])

    records = [
        record("order-b", 2, 30, {"s": "order-b", "v": 2}),
        record("order-a", 3, 20, {"s": "order-a", "v": 3}),
        record("order-a", 1, 10, {"s": "order-a", "v": 1}),
        record("order-a", 1, 11, {"s": "order-a", "v": 1}),  # duplicate
        record("order-a", 2, 12, {"bad": True}),
        record("order-c", 1, 13, None),  # KEYS_ONLY: read from the store later
        record("order-d", 1, 14, {"s": "order-x", "v": 1}),  # image does not match its keys
        record("order-e", 1, 15, {"s": "order-e", "v": 1}, name="MODIFY"),  # events never change
        {"eventName": "INSERT", "dynamodb": {}},  # no keys at all
    ]
    batches, positions = group_records(records, decode)
    assert sorted(batches) == ["order-a", "order-b", "order-c", "order-d"]
    a = batches["order-a"]
    assert sorted(a.events) == [1, 2, 3] and isinstance(a.events[2], ValueError)
    assert a.duplicate_records == 1 and a.head == 3
    assert batches["order-c"].events == {} and batches["order-c"].delivered == {1} and batches["order-c"]
    assert isinstance(batches["order-d"].events[1], ValueError)
    assert [p.sequence_number for p in positions["order-a"]] == ["20", "10", "11", "12"]


def test_lowest_failed_record_is_the_earliest_at_or_after_the_failure():
    positions = [RecordPosition("30", 3), RecordPosition("10", 1), RecordPosition("20", 2), RecordPosition("5", 4)]
    assert lowest_failed_record(positions, 2).sequence_number == "5"  # shuffled delivery: lowest seq wins
    assert lowest_failed_record(positions[:3], 2).sequence_number == "20"
    assert lowest_failed_record([RecordPosition("7", 5)], 2).sequence_number == "7"  # failed in a repaired gap


def test_stream_batch_prefers_a_decodable_duplicate():
    batch = StreamBatch("order-a")
    batch.add(1, ValueError("flaky decode"))
    batch.add(1, envelope("order-a", 1))
    assert isinstance(batch.events[1], EventEnvelope) and batch.duplicate_records == 1


def test_cursor_round_trip_and_garbage():
    sk = "2026-11-26T08:30:00.000Z#order-123e4567-e89b-12d3-a456-426614174000"
    assert _decode_cursor(_encode_cursor(sk)) == sk
    forged = base64.urlsafe_b64encode(json.dumps({"v": 1, "after": "u#someone-else"}).encode()).decode()
    for garbage in ("", "x", "%%%", "a" * 600, forged, base64.urlsafe_b64encode(b"[1,2]").decode(), base64.urlsafe_b64encode(b"\xff\xfe").decode()):
        with pytest.raises(InvalidCursorError):
            _decode_cursor(garbage)
    assert issubclass(InvalidCursorError, ValueError)


def test_analytics_row_average_and_money_strings():
    assert analytics_row("2026-11-26", "USD", 3, 2, 1, Decimal("30.01")) == {
        "date": "2026-11-26", "currency": "USD", "orders_created": 3, "orders_paid": 2, "orders_cancelled": 1,
        "revenue": "30.01", "average_order_value": "15.00",  # 15.005 -> banker's rounding
        "orders_refunded": 0, "refunds": "0.00", "net_revenue": "30.01",
    }
    assert analytics_row("2026-11-26", "EUR", 1, 0, 0, 0)["average_order_value"] == "0.00"


def test_order_stream_id():
    assert order_stream_id("order-abc") == "order-abc"
    assert order_stream_id("abc") == "order-abc"


PATHS = [
    [],
    ["pay"],
    ["pay", "ship"],
    ["pay", "ship", "deliver"],
    ["cancel"],
    ["pay", "cancel"],
    ["fail"],
]


@pytest.mark.parametrize("path", PATHS)
def test_order_view_fold_agrees_with_the_domain(path):
    lines = [domain.OrderLine(sku="A", quantity=3, unit_price=Decimal("1.10"))]
    events = [domain.OrderCreated(order_id="order-1", customer_id="u", items=lines, currency="USD", total=Decimal("3.30"))]
    steps = {
        "pay": domain.PaymentProcessed(payment_id="p", amount=Decimal("3.30")),
        "ship": domain.OrderShipped(tracking="T1"),
        "deliver": domain.OrderDelivered(),
        "cancel": domain.OrderCancelled(reason="r"),
        "fail": domain.PaymentFailed(payment_id="p", reason="declined"),
    }
    events += [steps[s] for s in path]
    envelopes = [
        EventEnvelope(f"e{i}", "order-1", i, type(e).__name__, 1, f"2026-11-2{i}T00:00:00.000Z", e, EventMetadata())
        for i, e in enumerate(events, start=1)
    ]
    state = domain.initial_state()
    for e in events:
        state = domain.evolve(state, e)
    view = order_view_from_events(envelopes)
    assert (view["status"], view["total"], view["tracking"], view["version"]) == (state.status.value, "3.30", state.tracking, len(events))
    assert view["created_at"] == "2026-11-21T00:00:00.000Z" and view["updated_at"] == envelopes[-1].occurred_at
    assert [t["type"] for t in view["timeline"]] == [type(e).__name__ for e in events]
    entry = None
    for env in envelopes:
        entry = user_order_evolve(entry, env)
    assert entry == {"order_id": "order-1", "customer_id": "u", "status": view["status"], "total": "3.30",
                     "currency": "USD", "created_at": view["created_at"], "version": len(events)}


def test_progress_bar_line():
    import io

    from cairn.projections.maintenance import RebuildProgress
    from cairn_tools.progress import ProgressBar, format_duration

    assert (format_duration(None), format_duration(65), format_duration(3725)) == ("--:--", "01:05", "1:02:05")
    progress = RebuildProgress(generation=3, total_estimate=1000, scanned=250, events=240, streams=12)
    out = io.StringIO()
    bar = ProgressBar("rebuild analytics", stream=out, width=8)
    bar(progress)
    line = out.getvalue()
    assert line.startswith("rebuild analytics g3 [##------]  25.0% 250/1,000 events read  240 applied  12 streams")
    assert "events/s" in line and "ETA " in line
    assert progress.eta_seconds is not None and progress.eta_seconds > 0


def test_tool_settings_from_flags_env_or_outputs(tmp_path, monkeypatch):
    import argparse

    from cairn_tools.config import add_common_arguments, projection_names, resolve

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"Cairn": {
        "EventsTableName": "ev-local", "AnalyticsTableName": "an-local", "AwsEndpointUrl": "http://127.0.0.1:4566"
    }}))
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    for name in ("EVENTS_TABLE", "ANALYTICS_TABLE", "AWS_ENDPOINT_URL", "PARKED_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    local = resolve("analytics", parser.parse_args(["--outputs", str(outputs)]))
    assert (local.table, local.events_table, local.endpoint_url) == ("an-local", "ev-local", "http://127.0.0.1:4566")
    # tables named by the environment: the outputs file's endpoint belongs to another deployment
    monkeypatch.setenv("EVENTS_TABLE", "ev-env")
    monkeypatch.setenv("ANALYTICS_TABLE", "an-env")
    deployed = resolve("analytics", parser.parse_args(["--outputs", str(outputs)]))
    assert (deployed.table, deployed.events_table, deployed.endpoint_url) == ("an-env", "ev-env", None)
    flagged = resolve("analytics", parser.parse_args(["--outputs", str(outputs), "--table", "t", "--endpoint-url", "http://x"]))
    assert (flagged.table, flagged.endpoint_url) == ("t", "http://x")
    assert projection_names("Order-View") == ["order_view"] and len(projection_names("all")) == 4
