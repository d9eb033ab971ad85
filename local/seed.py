"""The demo catalog ``make dev`` starts with (the README story orders ``BOOK-1`` at 9.99 USD).

Seeded through the API like a shop owner would (``PUT /catalog/{sku}`` as staff), then waited
for until the catalog's read model — what ``POST /orders`` prices from — shows every product.
``CAIRN_LOCAL_SEED_CATALOG=0`` starts with an empty catalog.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["DEMO_PRODUCTS", "seed_catalog", "seed_demo_catalog"]

DEMO_PRODUCTS: dict[str, tuple[str, str, str]] = {  # sku -> (name, unit_price, currency)
    "BOOK-1": ("The Cairn Book", "9.99", "USD"),
    "BOOK-2": ("Event Sourcing in Practice", "24.50", "USD"),
    "SKU-1": ("Demo item 1", "9.99", "USD"),
    "SKU-2": ("Demo item 2", "5.00", "USD"),
    "MUG-1": ("Cairn mug", "12.00", "EUR"),
}


def _call(base_url: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def seed_demo_catalog(base_url: str, token: str, timeout: float = 60.0) -> list[str]:
    """PUT every demo product, then wait (bounded) until the read model has each one's version."""
    return seed_catalog(base_url, token, DEMO_PRODUCTS, timeout)


def seed_catalog(base_url: str, token: str, products: dict[str, tuple[str, str, str]],
                 timeout: float = 60.0) -> list[str]:
    """PUT each product (sku -> name, unit_price, currency) as staff; wait until orders can price it."""
    versions = {}
    for sku, (name, price, currency) in products.items():
        status, body, _ = _call(base_url, "PUT", f"/catalog/{sku}",
                                token, {"name": name, "unit_price": price, "currency": currency})
        if status != 200:
            raise RuntimeError(f"seeding {sku}: {status} {body}")
        versions[sku] = body["version"]
    deadline = time.time() + timeout
    waiting = dict(versions)
    while waiting and time.time() < deadline:
        for sku, version in list(waiting.items()):
            status, body, headers = _call(base_url, "GET", f"/catalog/{sku}", token)
            source = {k.lower(): v for k, v in headers.items()}.get("x-cairn-source")
            if status == 200 and source == "read-model" and body["version"] >= version:
                waiting.pop(sku)
        if waiting:
            time.sleep(0.2)
    if waiting:
        raise RuntimeError(f"the catalog read model did not show {sorted(waiting)} in {timeout:.0f} s")
    return sorted(versions)
