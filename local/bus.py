"""EventBridge rules whose targets are Lambda functions, and scheduled rules.

moto delivers a matching event to a rule's SQS (and cross-bus) targets itself; it does not
invoke Lambda targets nor fire schedules. Those are done here, from the template's rules: each
PutEvents accepted by moto is matched against every rule of its bus (the pattern grammar of
``local.filters``), transformed as the target says (``Input``, ``InputPath``,
``InputTransformer``) and the function is invoked asynchronously, retried as the target's
``RetryPolicy`` says (bounded locally), then sent to its ``DeadLetterConfig`` queue.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from local.cloud import aws_client
from local.filters import matches
from local.lambdas import FunctionError, LambdaService, ThrottledError
from local.template import ACCOUNT_ID, REGION, Template

__all__ = ["LambdaTarget", "RuleTargets", "transform_input"]

log = logging.getLogger("cairn.local")

MAX_LOCAL_RETRIES = 2


@dataclass(frozen=True)
class LambdaTarget:
    rule: str
    bus: str
    pattern: dict[str, Any] | None
    schedule: str | None
    function: str
    target: dict[str, Any]


def _json_path(event: Any, path: str) -> Any:
    """The subset of JSONPath EventBridge input paths use: ``$.a.b[0]``."""
    value = event
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path.removeprefix("$")):
        if part.startswith("["):
            value = value[int(part[1:-1])]
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def transform_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return _json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if transformer:
        values = {k: _json_path(event, v) for k, v in (transformer.get("InputPathsMap") or {}).items()}
        template = transformer["InputTemplate"]
        if not isinstance(template, str):
            template = json.dumps(template)

        def sub(m: re.Match[str]) -> str:
            v = values.get(m.group(1))
            return v if isinstance(v, str) else json.dumps(v)

        text = re.sub(r"<([\w.-]+)>", sub, template)
        try:
            return json.loads(text)
        except ValueError:
            return text
    return event


def schedule_override(setting: str, rule: str) -> int | None:
    """``CAIRN_LOCAL_SCHEDULE_SECONDS``: ``N`` fires every rate() rule every N s at most, ``N:a,b``
    only the rules whose name contains ``a`` or ``b`` (e2e: the payment timeouts sweep, not the
    archiver, digest and snapshot schedules too). Anything else (empty, not a number) is no override."""
    seconds, _, names = setting.strip().partition(":")
    if not (seconds.isascii() and seconds.isdigit()):  # "²".isdigit() is True, int("²") raises
        return None
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if wanted and not any(n in rule for n in wanted):
        return None
    return max(1, int(seconds))


class RuleTargets:
    """Delivers to Lambda targets of the template's rules."""

    def __init__(self, template: Template, lambdas: LambdaService, endpoint: str):
        self.lambdas = lambdas
        self.endpoint = endpoint
        self.targets: list[LambdaTarget] = []
        self.stats = {"matched": 0, "invoked": 0, "failed": 0, "dead_lettered": 0}
        self._stop = threading.Event()
        self._inflight = 0
        self._lock = threading.Lock()
        for res in template.of_type("AWS::Events::Rule"):
            p = template.resolve(res.properties)
            if p.get("State", "ENABLED") != "ENABLED":
                continue
            bus = str(p.get("EventBusName") or "default").rsplit("/", 1)[-1]
            for target in p.get("Targets") or []:
                arn = str(target.get("Arn", ""))
                if ":lambda:" not in arn:
                    continue
                self.targets.append(LambdaTarget(
                    rule=template.physical_name(res), bus=bus, pattern=p.get("EventPattern"),
                    schedule=p.get("ScheduleExpression"), function=arn, target=target,
                ))

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._inflight == 0

    def start(self) -> None:
        for t in self.targets:
            if t.schedule:
                m = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", t.schedule.strip())
                if not m:
                    log.warning("rule %s: schedule %s is not fired locally (only rate())", t.rule, t.schedule)
                    continue
                unit = {"minute": 60, "hour": 3600, "day": 86400}[m.group(2).rstrip("s")]
                seconds = int(m.group(1)) * unit
                faster = schedule_override(os.environ.get("CAIRN_LOCAL_SCHEDULE_SECONDS", ""), t.rule)
                seconds = min(seconds, faster) if faster else seconds
                threading.Thread(target=self._tick, args=(t, seconds), daemon=True,
                                 name=f"schedule:{t.rule}").start()

    def stop(self) -> None:
        self._stop.set()

    def _tick(self, t: LambdaTarget, seconds: int) -> None:
        while not self._stop.wait(seconds):
            event = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                "source": "aws.events", "account": ACCOUNT_ID, "time": _now(), "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{t.rule}"], "detail": {},
            }
            self._dispatch(t, event)

    def on_put_events(self, request: dict[str, Any]) -> None:
        """Observer of moto's PutEvents: the request as the SDK sent it."""
        for entry in request.get("Entries") or []:
            bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except ValueError:
                continue
            event = {
                "version": "0", "id": str(uuid.uuid4()), "detail-type": entry.get("DetailType"),
                "source": entry.get("Source"), "account": ACCOUNT_ID, "time": _now(), "region": REGION,
                "resources": entry.get("Resources") or [], "detail": detail,
            }
            for t in self.targets:
                if t.schedule or t.bus != bus:
                    continue
                if t.pattern is not None and not matches(t.pattern, event):
                    continue
                self.stats["matched"] += 1
                self._dispatch(t, event)

    def _dispatch(self, t: LambdaTarget, event: dict[str, Any]) -> None:
        with self._lock:
            self._inflight += 1
        threading.Thread(target=self._deliver, args=(t, event), daemon=True).start()

    def _deliver(self, t: LambdaTarget, event: dict[str, Any]) -> None:
        try:
            payload = transform_input(t.target, event)
            policy = t.target.get("RetryPolicy") or {}
            attempts = 1 + min(MAX_LOCAL_RETRIES, int(policy.get("MaximumRetryAttempts", MAX_LOCAL_RETRIES)))
            for attempt in range(attempts):
                try:
                    self.lambdas.invoke(t.function, payload)
                    self.stats["invoked"] += 1
                    return
                except (FunctionError, ThrottledError) as exc:
                    log.warning("rule %s -> %s failed (attempt %d): %s", t.rule, t.function, attempt + 1, exc)
                    time.sleep(0.2 * (attempt + 1))
            self.stats["failed"] += 1
            dlq = (t.target.get("DeadLetterConfig") or {}).get("Arn")
            if dlq:
                sqs = aws_client("sqs", self.endpoint)
                url = sqs.get_queue_url(QueueName=str(dlq).rsplit(":", 1)[-1])["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
                self.stats["dead_lettered"] += 1
        finally:
            with self._lock:
                self._inflight -= 1


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
