"""The scale suites at toy sizes: what they measure must stay correct (the figures come from
``make bench``; these only prove the machinery — counting, checking, the model — works)."""

from __future__ import annotations

from typing import Any

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


class LosesTheThirdWrite:
    """A DynamoDB client that acknowledges its third PutItem without writing it."""

    def __init__(self, client: Any):
        self._client = client
        self.puts = 0

    def __getattr__(self, name: str) -> Any:
        if name != "put_item":
            return getattr(self._client, name)

        def put_item(**kwargs: Any) -> Any:
            self.puts += 1
            return {} if self.puts == 3 else self._client.put_item(**kwargs)

        return put_item


def test_hot_stream_check_catches_a_lost_write() -> None:
    from moto import mock_aws

    from bench import hot_stream
    from cairn.aws import client
    from cairn.store.dynamodb import create_tables

    with mock_aws():
        create_tables(client("dynamodb"), hot_stream.EVENTS_TABLE, hot_stream.IDEMPOTENCY_TABLE, stream=False)
        client("s3").create_bucket(Bucket=hot_stream.BUCKET)
        figures = hot_stream.run_writers(1, 5, seed=1, wrap=LosesTheThirdWrite)
    assert figures["acknowledged"] == 5 and figures["lost"] == 1


def test_stream_length_sees_the_cost_grow_without_the_snapshot_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import stream_length

    monkeypatch.setattr(stream_length, "SNAPSHOT_EVERY", 10_000)  # never snapshotted at these lengths
    figures = stream_length.run(lengths=(10, 400), worst_phase=False)
    # 400 events of ~340 B replayed on a cold load: ~34 RCU instead of 1
    assert figures["cold_units_ratio_400"] > 10
    assert figures["cold_calls_ratio_400"] == 1


def test_scale_model_names_the_first_bottleneck_and_moves_it_when_a_limit_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import scale_model

    monkeypatch.setattr(scale_model, "HOT_KEYS", 10_000)  # the streams placed one by one (toy size)
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
