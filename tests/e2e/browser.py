"""Headless Chromium for the page tests: a screenshot, the DOM after the page's scripts ran, and
the pixels of a screenshot.

Every page a person looks at (the local ``/docs``, the ops dashboard) is checked in a real
browser, because a page can be served with 200 and still show nothing useful (Swagger UI 4
answering an OpenAPI 3.1 document with "Unable to render this definition"). Chromium is the
Debian ``chromium`` package; ``make test`` installs it when missing.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

__all__ = ["BrowserError", "chromium", "dump_dom", "png_pixels", "screenshot"]

# Virtual time lets the page's fetches and rendering finish without a wall-clock sleep: Chromium
# runs the page until it is idle or this much (virtual) time has passed, then acts.
VIRTUAL_TIME_BUDGET_MS = 15_000
TIMEOUT_S = 90
WINDOW = (1280, 2000)


class BrowserError(RuntimeError):
    """Chromium is missing or did not produce what was asked."""


def chromium() -> str:
    """The Chromium executable (``$CHROMIUM`` or the first of the usual names on PATH)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    raise BrowserError("chromium is not installed: `make test` installs it (apt-get install -y chromium)")


def _run(url: str, *extra: str, window: tuple[int, int] = WINDOW) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="cairn-chromium-") as profile:
        args = [
            chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            *extra,
            url,
        ]
        done = subprocess.run(args, capture_output=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise BrowserError(f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return done


def dump_dom(url: str) -> str:
    """The page's DOM serialized after its scripts ran (``--dump-dom``)."""
    return _run(url, "--dump-dom").stdout.decode(errors="replace")


def screenshot(url: str, path: str | Path, *, width: int = WINDOW[0], height: int = WINDOW[1]) -> Path:
    """A PNG of the rendered page, ``width`` × ``height``, at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(url, f"--screenshot={path}", window=(width, height))
    if not path.is_file() or path.stat().st_size == 0:
        raise BrowserError(f"chromium wrote no screenshot to {path}")
    return path


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6), f"unsupported PNG (depth {depth}, color type {color})"
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(b for j, b in enumerate(line) if j % 4 != 3))
        previous = line
    return width, height, rows
