"""One Lambda execution environment: a process that imports one handler and serves invocations.

Runs in a child forked from the runtime's fork server (``local.lambdas``). Like Lambda, it has
exactly its function's environment variables, the code directory and its layers on ``sys.path``
(task root first), one invocation at a time, and module state that survives warm invocations.
Messages on the pipe are small dicts; events and results cross it as JSON text, as they cross
Lambda's runtime API.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["LambdaContext", "serve"]


class LambdaContext:
    """The context object Lambda passes to a Python handler."""

    def __init__(self, spec: dict[str, Any], request_id: str, deadline: float):
        self.function_name = spec["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec["arn"]
        self.memory_limit_in_mb = int(spec["memory"])
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec['name']}"
        self.log_stream_name = spec.get("log_stream", "local")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _LogStream(io.TextIOBase):
    """stdout/stderr of the function: each line to its log file and, prefixed, to the console.
    EMF documents (what CloudWatch Logs would turn into metrics) are also kept for the invocation's
    reply: the runtime aggregates them for ``/_local/dashboard``."""

    def __init__(self, console: Any, logfile: Any, prefix: str, emf: list[str] | None = None):
        self._console = console
        self._file = logfile
        self._prefix = prefix
        self._pending = ""
        self._emf = emf

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        if self._console is not None:
            self._console.flush()
        if self._file is not None:
            self._file.flush()

    def _emit(self, line: str) -> None:
        if self._emf is not None and line.startswith('{"_aws"') and len(self._emf) < 1000:
            self._emf.append(line)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        if self._console is not None:
            self._console.write(f"{self._prefix}{line}\n")
            self._console.flush()

    def isatty(self) -> bool:
        return False


def _lambda_sys_path(spec: dict[str, Any]) -> list[str]:
    """Task root, then layers, then the interpreter's own stdlib and site-packages."""
    keep = [p for p in sys.path if p and ("site-packages" in p or p.startswith(sys.base_prefix))]
    layers: list[str] = []
    for layer in spec["layers"]:
        layers.append(layer)
        ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
        nested = os.path.join(layer, "lib", ver, "site-packages")
        if os.path.isdir(nested):
            layers.append(nested)
    return [spec["code_dir"], *layers, *[p for p in keep if p not in layers]]


def _error(exc: BaseException, request_id: str) -> dict[str, Any]:
    tb = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(tb),
    }


def serve(conn: Any, spec: dict[str, Any]) -> None:
    """Entry point of the execution environment (target of the fork-server process)."""
    os.environ.clear()
    os.environ.update(spec["environment"])
    sys.path[:] = _lambda_sys_path(spec)
    os.chdir(spec["code_dir"])
    logfile = open(spec["log_file"], "a", buffering=1) if spec.get("log_file") else None  # noqa: SIM115
    prefix = f"[{spec['logical_id']}] "
    console_out = sys.__stdout__ if spec.get("echo_logs") else None
    console_err = sys.__stderr__ if spec.get("echo_logs") else None
    emf: list[str] = []
    sys.stdout = _LogStream(console_out, logfile, prefix, emf)
    sys.stderr = _LogStream(console_err, logfile, prefix)
    # Lambda's Python runtime: one root handler on stdout, level from AWS_LAMBDA_LOG_LEVEL or WARNING.
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler_ = logging.StreamHandler(sys.stdout)
    handler_.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(message)s",
                                            "%Y-%m-%dT%H:%M:%S"))
    root.addHandler(handler_)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())

    started = time.time()
    handler: Callable[..., Any] | None = None
    init_error: dict[str, Any] | None = None
    module_name, _, func_name = spec["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, func_name, None)
        if handler is None:
            init_error = {
                "errorMessage": f"Handler '{func_name}' missing on module '{module_name}'",
                "errorType": "Runtime.HandlerNotFound",
                "stackTrace": [],
            }
    except Exception as exc:  # the import error is reported on every invocation, like Lambda
        init_error = _error(exc, "init")
        init_error["errorType"] = "Runtime.ImportModuleError"
        init_error["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        traceback.print_exc()
    init_ms = (time.time() - started) * 1000
    sys.stdout.flush()
    conn.send({"ready": True, "init_ms": init_ms})

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if msg is None:
            return
        request_id = msg["request_id"]
        ctx = LambdaContext(spec, request_id, msg["deadline"])
        print(f"START RequestId: {request_id} Version: $LATEST")
        t0 = time.time()
        reply: dict[str, Any]
        if init_error is not None:
            reply = {"error": dict(init_error, requestId=request_id)}
        else:
            assert handler is not None
            try:
                event = json.loads(msg["event"])
                result = handler(event, ctx)
                try:
                    payload = json.dumps(result)
                except (TypeError, ValueError) as exc:
                    reply = {"error": {
                        "errorMessage": f"Unable to marshal response: {exc}",
                        "errorType": "Runtime.MarshalError",
                        "requestId": request_id,
                        "stackTrace": [],
                    }}
                else:
                    reply = {"payload": payload}
            except Exception as exc:
                reply = {"error": _error(exc, request_id)}
                stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                print(
                    f"[ERROR] {stamp} {request_id} {type(exc).__name__}: {exc}\n"
                    + "".join(traceback.format_exception(exc)),
                    file=sys.stderr,
                )
        duration = (time.time() - t0) * 1000
        print(f"END RequestId: {request_id}")
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Memory Size: {spec['memory']} MB"
        )
        sys.stdout.flush()
        sys.stderr.flush()
        reply["duration_ms"] = duration
        if emf:
            reply["emf"], emf[:] = list(emf), []
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
