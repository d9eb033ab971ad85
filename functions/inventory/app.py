"""Composition root of the inventory context."""

from __future__ import annotations

import os
from functools import cache

from inventory.store import InventoryStore


@cache
def store() -> InventoryStore:
    from cairn.aws import client

    return InventoryStore(client("dynamodb"), os.environ["INVENTORY_TABLE"])
