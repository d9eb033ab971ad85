"""A TCP server on 127.0.0.1 that accepts connections and never answers: a hung AWS endpoint.

Real sockets, so the client's own connect/read timeouts and retries are what is exercised
(an instantly raised ReadTimeoutError would test none of them).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["hanging_endpoint"]


@contextmanager
def hanging_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: accepts, reads whatever is sent, never writes a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=serve, name="hanging-endpoint", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()
