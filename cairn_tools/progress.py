"""A one-line progress bar on stderr (a TTY redraws in place; logs get a line every few seconds)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["CountBar", "ProgressBar", "format_duration"]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28, interval: float = 2.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_line = 0.0

    def render(self, progress: Any) -> str:
        total = progress.total_estimate
        fraction = min(progress.scanned / total, 1.0) if total else 0.0
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        percent = f"{fraction * 100:5.1f}%" if total else "  ?  "
        of_total = f"/{total:,}" if total else ""
        return (
            f"{self.label} g{progress.generation} [{bar}] {percent} "
            f"{progress.scanned:,}{of_total} events read  {progress.events:,} applied  "
            f"{progress.streams:,} streams  {progress.rate:,.0f} events/s  ETA {format_duration(progress.eta_seconds)}"
        )

    def __call__(self, progress: Any) -> None:
        line = self.render(progress)
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self, progress: Any) -> None:
        line = self.render(progress)
        self.stream.write(("\r" + line + "\n") if self.tty else (line + "\n"))
        self.stream.flush()


class CountBar:
    """``label [#####-----] 12/40 batches  <extra>`` on stderr, like :class:`ProgressBar`."""

    def __init__(self, label: str, unit: str = "items", stream: TextIO | None = None, width: int = 28,
                 interval: float = 2.0):
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_line = 0.0

    def render(self, done: int, total: int, extra: str = "") -> str:
        fraction = min(done / total, 1.0) if total else 1.0
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self.label} [{bar}] {done:,}/{total:,} {self.unit}" + (f"  {extra}" if extra else "")

    def update(self, done: int, total: int, extra: str = "") -> None:
        line = self.render(done, total, extra)
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self, done: int, total: int, extra: str = "") -> None:
        line = self.render(done, total, extra)
        self.stream.write(("\r" + line + "\n") if self.tty else (line + "\n"))
        self.stream.flush()
