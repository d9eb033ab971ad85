"""CloudWatch metrics, locally: what the functions emit (EMF on stdout) plus the AWS metrics the
local runtime can observe itself (Lambda invocations, errors, throttles, duration, iterator age;
HTTP API count, 4xx, 5xx, latency), kept in memory as one-minute aggregates (bounded), and the
synthesized dashboard and alarms evaluated over them (``GET /_local/dashboard``).

The dashboard is the template's ``AWS::CloudWatch::Dashboard`` ``DashboardBody`` resolved with
the local physical names, so a widget changed in CDK changes here; alarms are the template's
``AWS::CloudWatch::Alarm`` resources (metric, statistic, period, threshold, comparison).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MetricStore", "alarms_of", "dashboard_model", "observe_invoke", "observe_request"]

Dims = tuple[tuple[str, str], ...]
MINUTE = 60


@dataclass
class _Minute:
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    samples: list[float] = field(default_factory=list)

    def add(self, value: float, limit: int) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if len(self.samples) < limit:
            self.samples.append(value)


def _dims(pairs: Iterable[tuple[str, Any]]) -> Dims:
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


class MetricStore:
    """``(namespace, name, dimensions) -> {minute: aggregate}``, the last ``keep_minutes`` only,
    at most ``max_series`` series (least recently written dropped) and ``max_samples`` values a
    minute for percentiles."""

    def __init__(self, keep_minutes: int = 180, max_series: int = 2000, max_samples: int = 500,
                 clock: Callable[[], float] = time.time):
        self.keep_minutes = keep_minutes
        self.max_series = max_series
        self.max_samples = max_samples
        self.clock = clock
        self._series: OrderedDict[tuple[str, str, Dims], dict[int, _Minute]] = OrderedDict()
        self._lock = threading.Lock()
        self.emf_documents = 0

    # -- writing -------------------------------------------------------------------------------
    def put(self, namespace: str, name: str, dims: Mapping[str, Any] | Iterable[tuple[str, Any]], value: float,
            at: float | None = None) -> None:
        pairs = dims.items() if isinstance(dims, Mapping) else dims
        key = (namespace, name, _dims(pairs))
        minute = int((self.clock() if at is None else at) // MINUTE) * MINUTE
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = {}
                while len(self._series) > self.max_series:
                    self._series.popitem(last=False)
            else:
                self._series.move_to_end(key)
            series.setdefault(minute, _Minute()).add(float(value), self.max_samples)
            oldest = minute - self.keep_minutes * MINUTE
            for stale in [m for m in series if m < oldest]:
                del series[stale]

    def ingest_emf(self, line: str) -> int:
        """One EMF document (a line a function printed); returns the values recorded."""
        try:
            doc = json.loads(line)
            meta = doc["_aws"]
        except (ValueError, KeyError, TypeError):
            return 0
        at = meta.get("Timestamp")
        at = at / 1000 if isinstance(at, int | float) else None
        recorded = 0
        for directive in meta.get("CloudWatchMetrics", ()):
            namespace = directive.get("Namespace", "")
            for dimension_set in directive.get("Dimensions", ()):
                if not all(isinstance(doc.get(d), str) for d in dimension_set):
                    continue
                dims = [(d, doc[d]) for d in dimension_set]
                for metric in directive.get("Metrics", ()):
                    raw = doc.get(metric.get("Name"))
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float) and not isinstance(value, bool):
                            self.put(namespace, metric["Name"], dims, value, at)
                            recorded += 1
        self.emf_documents += 1
        return recorded

    # -- reading -------------------------------------------------------------------------------
    def series(self, namespace: str, name: str, dims: Mapping[str, Any], stat: str, period: int = 60,
               minutes: int = 60) -> list[tuple[int, float]]:
        """``[(period start, value)]`` for the last ``minutes``, periods with data only."""
        key = (namespace, name, _dims(dims.items()))
        period = max(MINUTE, int(period) // MINUTE * MINUTE)
        now = int(self.clock())
        start = (now - minutes * MINUTE) // period * period
        with self._lock:
            data = dict(self._series.get(key, {}))
        buckets: dict[int, list[_Minute]] = {}
        for minute, agg in data.items():
            if minute >= start:
                buckets.setdefault(minute // period * period, []).append(agg)
        return [(t, _stat(aggs, stat)) for t, aggs in sorted(buckets.items())]

    def names(self) -> list[tuple[str, str, dict[str, str]]]:
        with self._lock:
            return [(ns, n, dict(d)) for ns, n, d in self._series]


def _stat(aggs: list[_Minute], stat: str) -> float:
    count = sum(a.count for a in aggs)
    if stat == "Sum":
        return sum(a.total for a in aggs)
    if stat == "SampleCount":
        return float(count)
    if stat == "Average":
        return sum(a.total for a in aggs) / count if count else 0.0
    if stat == "Maximum":
        return max(a.high for a in aggs)
    if stat == "Minimum":
        return min(a.low for a in aggs)
    if stat.startswith("p"):
        samples = sorted(v for a in aggs for v in a.samples)
        if not samples:
            return 0.0
        rank = float(stat[1:]) / 100 * (len(samples) - 1)
        return samples[int(round(rank))]
    raise ValueError(f"statistic {stat!r} is not supported locally")


# -- the dashboard ------------------------------------------------------------------------------
_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def _resolve_parts(template: Any, value: Any, alarm_ids: set[str]) -> Any:
    """The DashboardBody with local names; alarm ARNs become ``alarm:<logical id>``."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::GetAtt" and isinstance(arg, list) and arg and arg[0] in alarm_ids:
            return f"alarm:{arg[0]}"
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(str(_resolve_parts(template, p, alarm_ids)) for p in parts)
        try:
            return template.resolve(value)
        except Exception:  # a resource the local cloud does not provision
            return "unresolved"
    if isinstance(value, list):
        return [_resolve_parts(template, v, alarm_ids) for v in value]
    return value


def _metric_key(entry: list[Any]) -> tuple[str, str, dict[str, str], dict[str, Any]]:
    options = entry[-1] if entry and isinstance(entry[-1], dict) else {}
    plain = entry[:-1] if options else entry
    namespace, name, rest = str(plain[0]), str(plain[1]), plain[2:]
    dims = {str(rest[i]): str(rest[i + 1]) for i in range(0, len(rest) - 1, 2)}
    return namespace, name, dims, options


@dataclass
class _Alarm:
    logical_id: str
    description: str
    namespace: str
    name: str
    dims: dict[str, str]
    stat: str
    period: int
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints: int

    def evaluate(self, store: MetricStore) -> tuple[str, float | None]:
        points = store.series(self.namespace, self.name, self.dims, self.stat, self.period,
                              minutes=max(1, self.period * self.evaluation_periods // MINUTE + 1))
        recent = points[-self.evaluation_periods:]
        compare = _COMPARE.get(self.comparison, _COMPARE["GreaterThanOrEqualToThreshold"])
        breaching = sum(1 for _, v in recent if compare(v, self.threshold))
        latest = recent[-1][1] if recent else None
        return ("ALARM" if breaching >= self.datapoints else "OK"), latest


def alarms_of(template: Any) -> dict[str, _Alarm]:
    found = {}
    for res in template.of_type("AWS::CloudWatch::Alarm"):
        p = res.properties
        if "MetricName" not in p:
            continue
        dims = {}
        for d in p.get("Dimensions") or []:
            try:
                dims[d["Name"]] = str(template.resolve(d["Value"]))
            except Exception:
                dims[d["Name"]] = "unresolved"
        evaluation = int(p.get("EvaluationPeriods", 1))
        found[res.logical_id] = _Alarm(
            res.logical_id, str(p.get("AlarmDescription", "")), str(p.get("Namespace", "")), str(p["MetricName"]),
            dims, str(p.get("ExtendedStatistic") or p.get("Statistic") or "Average"), int(p.get("Period", 60)),
            float(p.get("Threshold", 0)), str(p.get("ComparisonOperator", "GreaterThanOrEqualToThreshold")),
            evaluation, int(p.get("DatapointsToAlarm") or evaluation),
        )
    return found


def dashboard_model(template: Any, store: MetricStore, minutes: int = 60) -> dict[str, Any]:
    """Every dashboard of the template, its widgets with their series (the data the page draws)."""
    alarms = alarms_of(template)
    states = {lid: a.evaluate(store) for lid, a in alarms.items()}
    by_metric: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[_Alarm]] = {}
    for alarm in alarms.values():
        by_metric.setdefault((alarm.namespace, alarm.name, _dims(alarm.dims.items())), []).append(alarm)
    dashboards = []
    for res in template.of_type("AWS::CloudWatch::Dashboard"):
        body = _resolve_parts(template, res.properties.get("DashboardBody"), set(alarms))
        parsed = json.loads(body) if isinstance(body, str) else body
        widgets = []
        for widget in parsed.get("widgets", []):
            props = widget.get("properties", {})
            out: dict[str, Any] = {
                "type": widget.get("type"), "x": widget.get("x", 0), "y": widget.get("y", 0),
                "width": widget.get("width", 6), "height": widget.get("height", 6),
                "title": props.get("title", ""),
            }
            if widget.get("type") == "text":
                out["markdown"] = props.get("markdown", "")
            elif "alarms" in props:
                out["type"] = "alarm"
                out["alarms"] = []
                for ref in props["alarms"]:
                    lid = str(ref).removeprefix("alarm:")
                    alarm = alarms.get(lid)
                    state, latest = states.get(lid, ("INSUFFICIENT_DATA", None))
                    out["alarms"].append({
                        "id": lid, "state": state, "value": latest,
                        "threshold": alarm.threshold if alarm else None,
                        "description": alarm.description if alarm else "",
                    })
            else:
                series, annotations = [], []
                for entry in props.get("metrics", []):
                    namespace, name, dims, options = _metric_key(entry)
                    stat = str(options.get("stat", "Average"))
                    period = int(options.get("period", 300))
                    points = store.series(namespace, name, dims, stat, period, minutes)
                    series.append({
                        "label": options.get("label") or f"{name} {stat}", "namespace": namespace, "name": name,
                        "dimensions": dims, "stat": stat, "period": period,
                        "axis": options.get("yAxis", "left"), "points": points,
                    })
                    for alarm in by_metric.get((namespace, name, _dims(dims.items())), []):
                        annotations.append({"label": alarm.logical_id, "value": alarm.threshold,
                                            "state": states[alarm.logical_id][0],
                                            "axis": options.get("yAxis", "left")})
                out["series"] = series
                out["annotations"] = annotations
            widgets.append(out)
        dashboards.append({"id": res.logical_id, "widgets": widgets})
    return {
        "generated_at": int(store.clock()), "minutes": minutes, "dashboards": dashboards,
        "alarms": [{"id": lid, "state": s, "value": v, "threshold": alarms[lid].threshold,
                    "metric": f"{alarms[lid].namespace}/{alarms[lid].name}", "description": alarms[lid].description}
                   for lid, (s, v) in sorted(states.items())],
        "emf_documents": store.emf_documents,
    }


# -- what the local runtime observes itself ---------------------------------------------------------
def observe_invoke(store: MetricStore, function_name: str, event: Any, call: Callable[[], Any]) -> Any:
    """AWS/Lambda Invocations, Errors, Throttles, Duration and (stream events) IteratorAge."""
    from local.lambdas import FunctionError, ThrottledError

    dims = {"FunctionName": function_name}
    records = event.get("Records") if isinstance(event, dict) else None
    created = [
        r["dynamodb"]["ApproximateCreationDateTime"] for r in records or ()
        if isinstance(r, dict) and isinstance((r.get("dynamodb") or {}).get("ApproximateCreationDateTime"), int | float)
    ]
    if created:  # Lambda: the age of the batch's last record when it was read
        store.put("AWS/Lambda", "IteratorAge", dims, max(0.0, (time.time() - max(created)) * 1000))
    started = time.perf_counter()
    try:
        result = call()
    except ThrottledError:
        store.put("AWS/Lambda", "Throttles", dims, 1)
        raise
    except FunctionError:
        store.put("AWS/Lambda", "Invocations", dims, 1)
        store.put("AWS/Lambda", "Errors", dims, 1)
        store.put("AWS/Lambda", "Duration", dims, (time.perf_counter() - started) * 1000)
        raise
    store.put("AWS/Lambda", "Invocations", dims, 1)
    store.put("AWS/Lambda", "Errors", dims, 0)
    store.put("AWS/Lambda", "Throttles", dims, 0)
    store.put("AWS/Lambda", "Duration", dims, getattr(result, "duration_ms", 0.0) or
              (time.perf_counter() - started) * 1000)
    return result


def observe_request(store: MetricStore, api_id: str, status: int, latency_ms: float) -> None:
    """AWS/ApiGateway Count, 4xx, 5xx, Latency of an HTTP API (dimension ApiId)."""
    dims = {"ApiId": api_id}
    store.put("AWS/ApiGateway", "Count", dims, 1)
    store.put("AWS/ApiGateway", "4xx", dims, 1 if 400 <= status < 500 else 0)
    store.put("AWS/ApiGateway", "5xx", dims, 1 if status >= 500 else 0)
    store.put("AWS/ApiGateway", "Latency", dims, latency_ms)
