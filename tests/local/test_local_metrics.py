"""The local runtime's metrics: EMF documents -> one-minute aggregates (bounded), CloudWatch
statistics, the template's dashboard resolved with local names and its alarms evaluated."""

from __future__ import annotations

import json

import pytest

from local.metrics import MetricStore, dashboard_model


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def emf(name: str, values: list[float], at_ms: int, **dims: str) -> str:
    return json.dumps({
        "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [
            {"Namespace": "Cairn", "Dimensions": [sorted(dims)], "Metrics": [{"Name": name, "Unit": "Count"}]}]},
        **dims, name: values,
    })


def test_emf_values_become_minute_statistics():
    clock = Clock()
    store = MetricStore(clock=clock)
    minute = int(clock.now) // 60 * 60
    assert store.ingest_emf(emf("CommandLatency", [10, 20, 30, 40], minute * 1000, service="orders")) == 4
    assert store.ingest_emf(emf("CommandLatency", [100], (minute + 61) * 1000, service="orders")) == 1
    assert store.ingest_emf("not json") == 0
    assert store.ingest_emf(json.dumps({"message": "plain log"})) == 0
    clock.now = minute + 90
    dims = {"service": "orders"}
    assert store.series("Cairn", "CommandLatency", dims, "Sum") == [(minute, 100.0), (minute + 60, 100.0)]
    assert store.series("Cairn", "CommandLatency", dims, "Maximum") == [(minute, 40.0), (minute + 60, 100.0)]
    assert store.series("Cairn", "CommandLatency", dims, "Average")[0] == (minute, 25.0)
    assert store.series("Cairn", "CommandLatency", dims, "SampleCount")[0] == (minute, 4.0)
    assert store.series("Cairn", "CommandLatency", dims, "p50")[0][1] in (20.0, 30.0)
    assert store.series("Cairn", "CommandLatency", dims, "Sum", period=300) == [(minute // 300 * 300, 200.0)]
    assert store.series("Cairn", "CommandLatency", {"service": "accounts"}, "Sum") == []
    with pytest.raises(ValueError):
        store.series("Cairn", "CommandLatency", dims, "tm99")


def test_memory_is_bounded():
    clock = Clock()
    store = MetricStore(keep_minutes=5, max_series=3, max_samples=10, clock=clock)
    for i in range(5):
        store.put("Cairn", f"M{i}", {}, 1)
    assert [n for _, n, _ in store.names()] == ["M2", "M3", "M4"]
    for minute in range(20):
        store.put("Cairn", "M4", {}, 1, at=clock.now + minute * 60)
    clock.now += 19 * 60
    assert len(store.series("Cairn", "M4", {}, "Sum", minutes=60)) == 6  # keep_minutes + the current one
    for value in range(100):
        store.put("Cairn", "M3", {}, value)
    [(_, p99)] = store.series("Cairn", "M3", {}, "p99", minutes=1)
    assert p99 <= 9  # percentiles from the first max_samples values of a minute


def test_dashboard_model_resolves_the_template_and_evaluates_alarms():
    class Res:
        def __init__(self, logical_id, props):
            self.logical_id, self.properties = logical_id, props

    class Template:
        resources = [
            Res("Dash", {"DashboardBody": {"Fn::Join": ["", [
                '{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"title":"Lag",'
                '"metrics":[["Cairn","LagSeconds","consumer","',
                {"Ref": "Fn"},
                '",{"stat":"Maximum","period":60,"label":"lag"}]]}},'
                '{"type":"alarm","properties":{"title":"Alarms","alarms":["',
                {"Fn::GetAtt": ["LagAlarm", "Arn"]},
                '"]}}]}',
            ]]}}),
            Res("LagAlarm", {"MetricName": "LagSeconds", "Namespace": "Cairn", "Statistic": "Maximum", "Period": 60,
                             "Threshold": 300, "EvaluationPeriods": 1,
                             "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                             "Dimensions": [{"Name": "consumer", "Value": {"Ref": "Fn"}}]}),
        ]

        def of_type(self, kind):
            wanted = {"AWS::CloudWatch::Dashboard": "Dash", "AWS::CloudWatch::Alarm": "LagAlarm"}[kind]
            return [r for r in self.resources if r.logical_id == wanted]

        def resolve(self, value):
            if value == {"Ref": "Fn"}:
                return "Cairn-Fn-local"
            raise KeyError(value)

    store = MetricStore()
    store.put("Cairn", "LagSeconds", {"consumer": "Cairn-Fn-local"}, 2.5)
    model = dashboard_model(Template(), store)
    [dashboard] = model["dashboards"]
    chart, alarms = dashboard["widgets"]
    assert chart["title"] == "Lag" and chart["series"][0]["points"][0][1] == 2.5
    assert chart["annotations"] == [{"label": "LagAlarm", "value": 300.0, "state": "OK", "axis": "left"}]
    assert alarms["alarms"][0]["id"] == "LagAlarm" and alarms["alarms"][0]["state"] == "OK"
    store.put("Cairn", "LagSeconds", {"consumer": "Cairn-Fn-local"}, 301)
    assert dashboard_model(Template(), store)["alarms"][0]["state"] == "ALARM"
