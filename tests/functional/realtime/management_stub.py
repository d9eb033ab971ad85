"""API Gateway's WebSocket management API for tests: open connections record what they are sent,
``broken`` ones answer 500, any other id is gone (410 ``GoneException``), as deployed."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

__all__ = ["ManagementStub"]


class ManagementStub:
    def __init__(self, stage: str = "live"):
        self.stage = stage
        self.open: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.broken: set[str] = set()
        self.calls: list[tuple[str, str]] = []  # (method, connection id)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                prefix = f"/{stub.stage}/@connections/"
                path = unquote(self.path)
                connection_id = path.removeprefix(prefix) if path.startswith(prefix) else ""
                stub.calls.append(("POST", connection_id))
                if connection_id in stub.broken:
                    self._answer(500, {"message": "Internal server error"}, "InternalServerErrorException")
                elif connection_id in stub.open:
                    stub.open[connection_id].append(json.loads(body))
                    self._answer(200, None)
                else:
                    self._answer(410, {"message": None}, "GoneException")

            def _answer(self, status: int, body: Any, error: str | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{self.stage}"

    def connect(self, *connection_ids: str) -> None:
        for connection_id in connection_ids:
            self.open.setdefault(connection_id, [])

    def __enter__(self) -> ManagementStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
