"""Memoize what moto 5.2 recomputes on every request although its inputs never change.

Profiled under ``make dev`` with py-spy (``--gil``: only the thread holding the GIL; the local
process runs moto and every mapping and is bound to one core), a fifth of the process's time went
to work that gives the same answer every time:

- routing a request to a backend: ``DomainDispatcherApplication.get_backend_for_host`` lists
  moto's package directory and ``isdir``-s every entry (``backends.list_of_moto_modules``), then
  tries a few hundred URL regexes — 17 % of the GIL time;
- finding the action's method: ``method_names_from_class`` runs ``inspect.getmembers`` over the
  response class on every call — 2 %;
- EventBridge input transformers: ``EventTemplateParser.parse`` builds a new JSONPath parser (and
  reads its yacc tables) for every path of every event delivered — 5 %.

Each is a pure function of values fixed once moto is imported (the package directory, the URL
patterns, a class's methods, an expression string), so each is cached by its argument; the answers
are those of moto's own functions. ``install`` is idempotent and process-wide, like moto's mock.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["install", "originals"]

_installed = False
_originals: dict[str, Any] = {}  # moto's own functions, for the equivalence test
_HOSTS = 1024


def originals() -> dict[str, Any]:
    """moto's unmemoized functions by name (empty before ``install``)."""
    return dict(_originals)


def install() -> None:
    global _installed
    if _installed:
        return
    import jsonpath_ng.ext
    from moto import backends
    from moto.core import responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    _originals.update(
        list_of_moto_modules=backends.list_of_moto_modules,
        get_backend_for_host=DomainDispatcherApplication.get_backend_for_host,
        method_names_from_class=responses.method_names_from_class,
        jsonpath_parse=jsonpath_ng.ext.parse,
    )
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    for_host = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        cache = self.__dict__.setdefault("_cairn_backend_for_host", {})
        try:
            return cache[host]
        except KeyError:
            backend = for_host(self, host)
            if len(cache) < _HOSTS:  # hosts are "<service>.<region>.amazonaws.com": a few dozen
                cache[host] = backend
            return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]

    names = responses.method_names_from_class
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(names)  # type: ignore[assignment]

    # moto imports ``parse`` inside EventTemplateParser.parse, so the module attribute is the seam.
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
    _installed = True
