"""The scale suites at toy sizes: what they measure must stay correct (the figures come from
``make bench``; these only prove the machinery — counting, checking, the model — works)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_stream_length_counts_a_flat_cold_command_on_a_snapshotted_stream() -> None:
    from bench import stream_length

    figures = stream_length.run(lengths=(10, 200))
    # cold: snapshot GET + tail Query + PutItem, whatever the length (the snapshot policy at 100)
    assert figures["stream_len_10_cold_calls"] == figures["stream_len_200_cold_calls"] == 3
    assert figures["stream_len_10_warm_calls"] == figures["stream_len_200_warm_calls"] == 1
    assert figures["cold_units_ratio_200"] <= 1.5
    # the worst phase (a 99-event tail) reads more than one 4 KB unit: the sizes are really counted
    assert figures["stream_len_worst_phase_cold_units"] > 2


def test_hot_stream_loses_nothing_under_concurrent_writers() -> None:
    from bench import hot_stream

    figures = hot_stream.run(writer_counts=(1, 6), commands=18)
    assert figures["hot_stream_lost"] == 0
    assert figures["hot_stream_w1_retries_per_command"] == 0
    assert figures["hot_stream_w1_acknowledged"] == 18
    assert figures["hot_stream_w6_acknowledged"] + figures["hot_stream_w6_exhausted"] == 18
    # one writer: one conditional PutItem per command, no reads; a race costs failed writes and reads
    assert figures["hot_stream_w1_wcu_per_command"] == 1
    assert figures["hot_stream_w1_rcu_per_command"] == 0
    assert figures["hot_stream_w6_wcu_per_command"] >= 1


def test_scale_model_names_the_first_bottleneck_and_moves_it_when_a_limit_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import scale_model

    figures = scale_model.run(peaks=(10_000,))
    # classic Zipf over 10 M streams: the hottest stream hits its ceiling long before any quota
    assert figures["scale_10k_first_bottleneck_code"] == 1
    assert figures["scale_10k_first_bottleneck_at_commands_per_s"] < 10_000
    services = [k for k in figures if k.startswith("scale_10k_monthly_usd_") and not k.endswith("growth_per_month")]
    assert abs(sum(figures[k] for k in services) - figures["scale_10k_monthly_usd"]) < 1
    # a flatter skew: the API Gateway account quota (10,000 requests/s, a command + a query) binds first
    monkeypatch.setitem(scale_model.ASSUMPTIONS, "zipf_s", (0.5, "test"))
    flat = scale_model.run(peaks=(10_000,))
    assert flat["scale_10k_first_bottleneck_code"] == 2
    assert flat["scale_10k_first_bottleneck_at_commands_per_s"] == 5_000
    # fan-out: DynamoDB Streams reads are free; Kinesis and SQS FIFO are not
    assert figures["fan_out_usd_per_million_events_ddb_streams_4_readers"] == 0
    assert 0 < figures["fan_out_usd_per_million_events_kinesis_efo"] < figures["fan_out_usd_per_million_events_router_sqs_fifo"]
