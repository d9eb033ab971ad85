"""Headless Chromium for the page tests: a screenshot and the DOM after the page's scripts ran.

Every page a person looks at (the local ``/docs``, the ops dashboard) is checked in a real
browser, because a page can be served with 200 and still show nothing useful (Swagger UI 4
answering an OpenAPI 3.1 document with "Unable to render this definition"). Chromium is the
Debian ``chromium`` package; ``make test`` installs it when missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["BrowserError", "chromium", "dump_dom", "screenshot"]

# Virtual time lets the page's fetches and rendering finish without a wall-clock sleep: Chromium
# runs the page until it is idle or this much (virtual) time has passed, then acts.
VIRTUAL_TIME_BUDGET_MS = 15_000
TIMEOUT_S = 90
WINDOW = "1280,2000"


class BrowserError(RuntimeError):
    """Chromium is missing or did not produce what was asked."""


def chromium() -> str:
    """The Chromium executable (``$CHROMIUM`` or the first of the usual names on PATH)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    raise BrowserError("chromium is not installed: `make test` installs it (apt-get install -y chromium)")


def _run(url: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
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
            f"--window-size={WINDOW}",
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


def screenshot(url: str, path: str | Path) -> Path:
    """A PNG of the rendered page at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(url, f"--screenshot={path}")
    if not path.is_file() or path.stat().st_size == 0:
        raise BrowserError(f"chromium wrote no screenshot to {path}")
    return path
