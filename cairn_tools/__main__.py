"""``python -m cairn_tools <command> [args]``: the one ops CLI (``<command> --help`` for each).

Commands are modules of this package with a ``main(argv) -> int``.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import sys

import cairn_tools  # noqa: F401  (puts the runtime code on sys.path)

__all__ = ["COMMANDS", "available", "main"]

COMMANDS = ("status", "rebuild", "audit", "unpark", "redrive", "snapshot", "verify", "archive")


def available() -> list[str]:
    return list(COMMANDS)


def _summary(name: str) -> str:
    try:
        doc = importlib.import_module(f"cairn_tools.{name}").__doc__ or ""
    except Exception as exc:  # a broken module must not break the others' help
        return f"(unavailable: {exc})"
    first = doc.strip().split("\n\n", 1)[0].replace("\n", " ")
    first = first.split("``:", 1)[1].strip() if first.startswith("``") and "``:" in first else first
    return first if len(first) <= 90 else first[:89].rsplit(" ", 1)[0] + " …"


def usage() -> str:
    names = available()
    width = max(len(n) for n in names)
    lines = [
        "usage: python -m cairn_tools <command> [--help] [args]",
        "",
        "Operate Cairn: projections, snapshots, on-failure queues (tables from .local/outputs.json,",
        "environment variables or flags; --json on every command for scripts).",
        "",
        "commands:",
    ]
    lines += [f"  {n.ljust(width)}  {_summary(n)}" for n in names]
    return "\n".join(lines)


class _Stderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written (a handler never holds a closed stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def logs_to_stderr() -> None:
    """A command answers on stdout (a table, or ``--json`` for scripts); the runtime code it calls
    logs through Powertools, which writes to stdout by default and would break that JSON. The
    service's handler is built here on stderr first (later ``Logger()`` calls share it), and any
    Powertools handler that already exists is moved there."""
    import logging

    from aws_lambda_powertools import Logger

    stderr = _Stderr()
    Logger(stream=stderr)
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler and type(handler.formatter).__module__.startswith(
                "aws_lambda_powertools"
            ):
                handler.stream = stderr  # not setStream: it flushes the old stream, which may be closed


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0].replace("-", "_"), args[1:]
    if name not in available():
        print(f"error: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    logs_to_stderr()
    module = importlib.import_module(f"cairn_tools.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
