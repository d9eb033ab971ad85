"""Cairn's local runtime: the synthesized CDK template, run on moto in one command (no Docker).

Imports are lazy: ``local.worker`` is preloaded by the execution environments' fork server,
which must not pull in the supervisor (moto, the HTTP front) with it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalRuntime", "RuntimeOptions", "Template", "TemplateError"]


def __getattr__(name: str) -> Any:
    if name in ("LocalRuntime", "RuntimeOptions"):
        from local import runtime

        return getattr(runtime, name)
    if name in ("Template", "TemplateError"):
        from local import template

        return getattr(template, name)
    raise AttributeError(name)
