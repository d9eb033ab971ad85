"""Lambda functions of the template, run as local execution environments.

Why processes and not threads: Lambda gives every concurrent invocation its own execution
environment — its own environment variables, module globals and Powertools state (``Metrics``
keeps its metric set in class attributes shared by the whole interpreter). Running several
functions, or two concurrent invocations of one, as threads of one interpreter would mix them.
So each environment is a child process forked from a fork server that has preloaded boto3,
pydantic and Powertools (a cold start costs the handler's own imports, ~100 ms), serving one
invocation at a time and kept warm for reuse. The runtime stays one command and one supervisor
process; timeouts kill the environment like Lambda does, and an edited source file retires warm
environments so the next invocation runs the new code.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CapacityError",
    "FunctionError",
    "FunctionPool",
    "FunctionSpec",
    "InvokeResult",
    "LambdaService",
    "ThrottledError",
]

log = logging.getLogger("cairn.local")

PRELOAD = [
    "local.worker",
    "boto3",
    "botocore.session",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.typing",
]


class ThrottledError(Exception):
    """Rate exceeded: the function is at its reserved concurrency (or chaos said so)."""


class CapacityError(ThrottledError):
    """No execution environment of the function became free in time (the local cap was reached):
    the local runtime, not the function, could not serve."""


STOPPING = {"errorType": "Runtime.Stopping", "errorMessage": "the local runtime is stopping"}


class FunctionError(Exception):
    """The invocation failed (handler error, timeout, crash); ``error`` is Lambda's error object."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = error


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: str
    layers: tuple[str, ...]
    environment: dict[str, str]
    timeout: float
    memory: int
    reserved_concurrency: int | None = None

    def as_worker_spec(self, log_file: str | None, echo_logs: bool) -> dict[str, Any]:
        return {
            "logical_id": self.logical_id,
            "name": self.name,
            "arn": self.arn,
            "handler": self.handler,
            "code_dir": self.code_dir,
            "layers": list(self.layers),
            "environment": dict(self.environment),
            "memory": self.memory,
            "log_file": log_file,
            "echo_logs": echo_logs,
            "log_stream": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
        }


@dataclass
class InvokeResult:
    payload: Any
    request_id: str
    duration_ms: float
    cold_start: bool
    init_ms: float = 0.0


@dataclass(eq=False)
class _Env:
    """One execution environment (a worker process and our end of its pipe)."""

    process: Any
    conn: Any
    generation: int
    init_ms: float
    used: int = 0
    last_used: float = field(default_factory=time.time)

    def close(self, kill: bool = False) -> None:
        try:
            if kill:
                self.process.kill()
            else:
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.conn.close()
        except OSError:
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)


class FunctionPool:
    """The execution environments of one function: reuse warm ones, start more up to a limit."""

    def __init__(self, spec: FunctionSpec, service: LambdaService):
        self.spec = spec
        self.service = service
        self._idle: list[_Env] = []
        self._live: set[_Env] = set()  # idle and busy environments (their pids are in the status)
        self._busy = 0
        self._cond = threading.Condition()
        self.invocations = 0
        self.cold_starts = 0
        self.errors = 0
        self.throttles = 0

    @property
    def limit(self) -> int:
        if self.spec.reserved_concurrency is not None:
            return max(0, self.spec.reserved_concurrency)
        return self.service.max_concurrency

    def _acquire(self) -> tuple[_Env | None, bool]:
        """An idle environment, or None meaning 'start one'; waits while at the local cap (for
        ``LambdaService.capacity_wait_s``, by default the function's timeout + 30 s)."""
        wait = self.service.capacity_wait_s
        wait = self.spec.timeout + 30 if wait is None else wait
        deadline = time.time() + wait
        with self._cond:
            while True:
                if self.service.stopping:
                    raise FunctionError(dict(STOPPING))
                gen = self.service.code_generation
                while self._idle:
                    env = self._idle.pop()
                    if env.generation == gen and env.process.is_alive():
                        self._busy += 1
                        return env, False
                    self._retire(env)
                if self._busy < self.limit:
                    self._busy += 1
                    return None, True
                if self.spec.reserved_concurrency is not None:
                    self.throttles += 1
                    raise ThrottledError(
                        f"Rate Exceeded: {self.spec.name} is at its reserved concurrency ({self.limit})"
                    )
                if not self._cond.wait(timeout=max(0.0, deadline - time.time())):
                    raise CapacityError(
                        f"all {self.limit} execution environments of {self.spec.name} stayed busy for "
                        f"{wait:.0f} s (the local cap, --max-concurrency)")

    def _retire(self, env: _Env) -> None:
        """Close an environment in the background; say so when it died on its own."""
        self._live.discard(env)
        code = env.process.exitcode
        if code is not None:
            log.warning("%s: execution environment (pid %s) exited with status %s; the next invocation "
                        "starts a new one", self.spec.logical_id, env.process.pid, code)
        threading.Thread(target=env.close, daemon=True).start()

    def pids(self) -> list[int]:
        with self._cond:
            return sorted(e.process.pid for e in self._live if e.process.pid is not None)

    def _release(self, env: _Env | None) -> None:
        with self._cond:
            self._busy -= 1
            if env is not None:
                env.last_used = time.time()
                self._idle.append(env)
            self._cond.notify()

    def _start_env(self) -> _Env:
        ctx = self.service.mp_context
        parent, child = ctx.Pipe()
        spec = self.spec.as_worker_spec(self.service.log_file(self.spec), self.service.echo_logs)
        from local import worker

        proc = ctx.Process(
            target=worker.serve, args=(child, spec), name=f"lambda:{self.spec.logical_id}", daemon=True
        )
        try:
            proc.start()
        except (OSError, MemoryError) as exc:  # fork refused: out of memory, processes or files
            parent.close()
            child.close()
            raise FunctionError({"errorType": "Runtime.ResourceExhausted",
                                 "errorMessage": f"no execution environment of {self.spec.name} could be "
                                                 f"started: {type(exc).__name__}: {exc}"}) from exc
        child.close()
        if not parent.poll(60):
            proc.kill()
            raise FunctionError({"errorType": "Runtime.InitTimeout",
                                 "errorMessage": f"{self.spec.name} did not start within 60 s"})
        try:
            hello = parent.recv()
        except EOFError as exc:
            proc.join(timeout=2)
            raise FunctionError({"errorType": "Runtime.ExitError",
                                 "errorMessage": f"Runtime exited during init: exit status {proc.exitcode}"}) from exc
        env = _Env(proc, parent, self.service.code_generation, float(hello.get("init_ms", 0.0)))
        with self._cond:
            self._live.add(env)
        return env

    def invoke(self, event: Any, request_id: str | None = None, *, chaos: bool = True) -> InvokeResult:
        """Invoke synchronously. Raises FunctionError (with Lambda's error object) or ThrottledError.

        ``chaos``: whether injected throttling applies (event sources retry throttles; the HTTP
        API path opts out so chaos runs exercise delivery, not the client's patience).
        """
        request_id = request_id or str(uuid.uuid4())
        body = json.dumps(event)
        if len(body) > 6 * 1024 * 1024:
            raise FunctionError({"errorType": "RequestEntityTooLargeException",
                                 "errorMessage": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"})
        if chaos and self.service.chaos_throttle():
            self.throttles += 1
            raise ThrottledError(f"Rate Exceeded (local chaos) for {self.spec.name}")
        env, cold = self._acquire()
        self.invocations += 1
        keep: _Env | None = None
        try:
            if env is None:
                self.cold_starts += 1
                env = self._start_env()
            deadline = time.time() + self.spec.timeout
            try:
                env.conn.send({"request_id": request_id, "event": body, "deadline": deadline})
            except OSError:
                # died while idle (killed, out of memory) after _acquire looked: the request was
                # never delivered, so a new environment takes it, as Lambda never routes to a dead one
                log.warning("%s: execution environment (pid %s) was gone before request %s; a new one "
                            "takes it", self.spec.logical_id, env.process.pid, request_id)
                with self._cond:
                    self._live.discard(env)
                env.close(kill=True)
                self.cold_starts += 1
                env, cold = self._start_env(), True
                env.conn.send({"request_id": request_id, "event": body, "deadline": deadline})
            if not env.conn.poll(self.spec.timeout):
                with self._cond:
                    self._live.discard(env)
                env.close(kill=True)
                self.errors += 1
                raise FunctionError({
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {self.spec.timeout:.2f} seconds",
                })
            try:
                reply = env.conn.recv()
            except (EOFError, OSError) as exc:
                env.process.join(timeout=2)
                code = env.process.exitcode
                with self._cond:
                    self._live.discard(env)
                env.close(kill=True)
                self.errors += 1
                log.error("%s: execution environment (pid %s) exited with status %s during request %s; "
                          "the next invocation starts a new one", self.spec.logical_id, env.process.pid,
                          code, request_id)
                raise FunctionError({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
                }) from exc
            env.used += 1
            keep = env
            if reply.get("emf") and self.service.metrics is not None:
                for line in reply["emf"]:
                    self.service.metrics.ingest_emf(line)
            if "error" in reply:
                self.errors += 1
                raise FunctionError(reply["error"])
            payload = json.loads(reply["payload"])
            return InvokeResult(payload, request_id, reply.get("duration_ms", 0.0), cold,
                                env.init_ms if cold else 0.0)
        finally:
            self._release(keep)

    def reap(self, idle_seconds: float) -> int:
        """Close environments idle for longer than ``idle_seconds`` or built from old code; how
        many (dead ones included)."""
        now = time.time()
        with self._cond:
            dead = [e for e in self._idle if not e.process.is_alive()]
            stale = [e for e in self._idle if e not in dead and (
                now - e.last_used > idle_seconds or e.generation != self.service.code_generation)]
            self._idle = [e for e in self._idle if e not in stale and e not in dead]
            for env in stale:
                self._live.discard(env)
        for env in dead:
            self._retire(env)
        for env in stale:
            env.close()
        return len(dead) + len(stale)

    def shutdown(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._live.difference_update(idle)
        for env in idle:
            env.close()


class LambdaService:
    """All functions of the template, addressable by logical id, name or ARN."""

    def __init__(
        self,
        specs: Iterable[FunctionSpec],
        *,
        log_dir: Path | None = None,
        echo_logs: bool = True,
        max_concurrency: int = 8,
        idle_seconds: float = 300.0,
        throttle_probability: float = 0.0,
        watch_paths: Iterable[Path] = (),
    ):
        self.pools: dict[str, FunctionPool] = {}
        self.stopping = False
        self._by_key: dict[str, FunctionPool] = {}
        self.metrics: Any = None  # local.metrics.MetricStore: EMF and AWS/Lambda metrics (dashboard)
        self.log_dir = log_dir
        self.echo_logs = echo_logs
        self.max_concurrency = max_concurrency
        self.capacity_wait_s: float | None = None  # how long a request waits at the cap (None: timeout + 30 s)
        self.idle_seconds = idle_seconds
        self.throttle_probability = throttle_probability
        self.code_generation = 0
        self._watch_paths = [Path(p) for p in watch_paths]
        self._stop = threading.Event()
        self._rng_lock = threading.Lock()
        import random

        self._rng = random.Random()
        self.mp_context = multiprocessing.get_context("forkserver")
        self.mp_context.set_forkserver_preload(PRELOAD)
        for spec in specs:
            self.add(spec)

    def add(self, spec: FunctionSpec) -> None:
        pool = FunctionPool(spec, self)
        self.pools[spec.logical_id] = pool
        for key in (spec.logical_id, spec.name, spec.arn):
            self._by_key[key] = pool

    def get(self, key: str) -> FunctionPool:
        """By logical id, function name, ARN, or ARN with a qualifier."""
        pool = self._by_key.get(key)
        if pool is None and key.startswith("arn:") and key.count(":") > 6:
            pool = self._by_key.get(key.rsplit(":", 1)[0])
        if pool is None:
            raise KeyError(f"no local function {key!r}")
        return pool

    def invoke(self, key: str, event: Any, *, chaos: bool = True) -> InvokeResult:
        pool = self.get(key)
        if self.metrics is None:
            return pool.invoke(event, chaos=chaos)
        from local.metrics import observe_invoke

        return observe_invoke(self.metrics, pool.spec.name, event, lambda: pool.invoke(event, chaos=chaos))

    def chaos_throttle(self) -> bool:
        if self.throttle_probability <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < self.throttle_probability

    def log_file(self, spec: FunctionSpec) -> str | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return str(self.log_dir / f"{spec.logical_id}.log")

    def start(self) -> None:
        """Start the fork server now (not on the first request) and the janitor thread."""
        from multiprocessing import forkserver

        forkserver.ensure_running()
        threading.Thread(target=self._janitor, name="lambda-janitor", daemon=True).start()

    def _snapshot(self) -> dict[str, float]:
        stamps: dict[str, float] = {}
        for root in self._watch_paths:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
                for f in filenames:
                    if f.endswith((".py", ".json")):
                        p = os.path.join(dirpath, f)
                        try:
                            stamps[p] = os.stat(p).st_mtime
                        except OSError:
                            pass
        return stamps

    def _janitor(self) -> None:
        seen = self._snapshot()
        while not self._stop.wait(1.0):
            now = self._snapshot()
            if now != seen:
                seen = now
                self.code_generation += 1
                log.info("source changed: warm environments retire, next invocations load the new code")
            for pool in self.pools.values():
                pool.reap(self.idle_seconds)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            lid: {"invocations": p.invocations, "cold_starts": p.cold_starts, "errors": p.errors,
                  "throttles": p.throttles, "warm": len(p._idle), "busy": p._busy, "pids": p.pids()}
            for lid, p in self.pools.items()
        }

    def begin_stop(self) -> None:
        """The runtime is stopping: no invocation starts from now on (each raises
        ``FunctionError`` Runtime.Stopping at once), and callers waiting for an environment leave."""
        self.stopping = True
        for pool in self.pools.values():
            with pool._cond:
                pool._cond.notify_all()

    def close_idle(self) -> int:
        """Close every idle environment now; how many. ``make dev`` calls it when start-up's
        seeding is done: the environments it warmed (Public, Catalog, the catalog projections)
        would otherwise stay resident for the whole idle timeout (docs/local.md)."""
        return sum(pool.reap(-1.0) for pool in self.pools.values())

    def shutdown(self) -> None:
        self._stop.set()
        for pool in self.pools.values():
            pool.shutdown()
