"""The dashboard shows what an operator needs, and only the custom metrics of docs/architecture.md.

That the code emits them is tests/functional/test_emitted_metrics.py's job (it runs the handlers).
"""

from __future__ import annotations

import json

import pytest

from tests.infrastructure.cdk_helpers import Synth, architecture_metrics, flatten_join


@pytest.fixture(scope="module")
def widgets(synth: Synth) -> list[dict]:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(flatten_join(dashboard["Properties"]["DashboardBody"]))
    return body["widgets"]


def _metrics(widgets: list[dict]) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, name, dimensions, options) of every metric on every graph."""
    found = []
    for widget in widgets:
        for entry in widget.get("properties", {}).get("metrics", []):
            options = entry[-1] if isinstance(entry[-1], dict) else {}
            values = [v for v in entry if not isinstance(v, dict)]
            namespace, name, *dims = values
            found.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)), options))
    return found


def _has(metrics, namespace: str, name: str, stat: str | None = None, **dims: str) -> bool:
    return any(
        ns == namespace and n == name and all(d.get(k) == v for k, v in dims.items())
        and (stat is None or o.get("stat") == stat)
        for ns, n, d, o in metrics
    )


def test_api_widgets(widgets: list[dict]) -> None:
    metrics = _metrics(widgets)
    for name in ("Count", "4xx", "5xx"):
        assert _has(metrics, "AWS/ApiGateway", name, "Sum"), name
    assert _has(metrics, "AWS/ApiGateway", "Latency", "p50")
    assert _has(metrics, "AWS/ApiGateway", "Latency", "p99")


def test_command_widgets(widgets: list[dict]) -> None:
    metrics = _metrics(widgets)
    for service in ("orders", "accounts", "payments"):
        assert _has(metrics, "Cairn", "CommandLatency", "p50", service=service)
        assert _has(metrics, "Cairn", "CommandLatency", "p99", service=service)
        assert _has(metrics, "Cairn", "ConflictsRetried", "Sum", service=service)
        assert _has(metrics, "Cairn", "IdempotentReplays", "Sum", service=service)


@pytest.mark.parametrize("function", ["OrdersProjections", "AccountsProjections", "Snapshotter", "Publisher"])
def test_stream_consumer_widgets(widgets: list[dict], function: str) -> None:
    metrics = _metrics(widgets)
    assert _has(metrics, "AWS/Lambda", "IteratorAge", "Maximum", FunctionName="TOKEN")
    titles = " ".join(w.get("properties", {}).get("title", "") for w in widgets)
    assert f"{function}: lag" in titles
    assert f"{function}: errors" in titles
    assert f"{function}: parked streams / failed batches" in titles
    assert _has(metrics, "Cairn", "LagSeconds", "Maximum", consumer=function)


def test_parked_streams_per_projection(widgets: list[dict], synth: Synth) -> None:
    metrics = _metrics(widgets)
    for function in ("OrdersProjections", "AccountsProjections"):
        service = synth.resources[function]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        assert _has(metrics, "Cairn", "StreamsParked", "Sum", service=service), function
    assert _has(metrics, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum")


def test_dynamodb_and_lambda_widgets(widgets: list[dict], synth: Synth) -> None:
    metrics = _metrics(widgets)
    assert _has(metrics, "AWS/DynamoDB", "ReadThrottleEvents", "Sum")
    assert _has(metrics, "AWS/DynamoDB", "WriteThrottleEvents", "Sum")
    functions = len(synth.of_type("AWS::Lambda::Function"))
    for name, stat in (("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "p99")):
        shown = [m for m in metrics if m[0] == "AWS/Lambda" and m[1] == name and m[3].get("stat") == stat]
        assert len(shown) >= functions, name


def test_custom_metrics_are_only_the_architecture_metrics(widgets: list[dict]) -> None:
    shown = {name for ns, name, _, _ in _metrics(widgets) if ns == "Cairn"}
    assert shown and shown <= architecture_metrics()


# Whether the code really emits each custom metric shown here (name, namespace and the `service`
# dimension value the graph queries) is checked by running the handlers, not by reading source:
# tests/functional/test_emitted_metrics.py.


def test_alarm_status_widget_lists_every_alarm(widgets: list[dict], synth: Synth) -> None:
    (status,) = [w for w in widgets if w.get("type") == "alarm"]
    assert len(status["properties"]["alarms"]) == len(synth.of_type("AWS::CloudWatch::Alarm"))


def test_helper_reads_metrics_from_a_known_body() -> None:
    """The parser above is what the other tests rely on: check it on a hand-written body."""
    body = [{"properties": {"metrics": [["Cairn", "CommandLatency", "service", "orders", {"stat": "p50"}]]}}]
    assert _metrics(body) == [("Cairn", "CommandLatency", {"service": "orders"}, {"stat": "p50"})]
