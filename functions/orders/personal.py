"""Opening an order's personal fields for the owner or staff (Order View, history, events).

Everything stored — events, snapshots, the Order View item — holds the fields sealed; only an
answer to an authorised caller carries the plaintext. ``personal_data`` says which case it is
(API.md): ``present``, ``erased`` (the subject's key was destroyed: the fields read ``null``) or
``none`` (the order never had any). A sealed value that fails authentication (tampered, moved)
is an integrity incident: logged loudly, answered ``null`` with ``"unreadable"``, never a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cairn.privacy import ERASED, MARKER, CiphertextError
from cairn.privacy.codec import is_sealed
from orders.domain import PERSONAL_FIELDS, OrderCreated

__all__ = ["FIELDS", "open_personal"]

FIELDS = PERSONAL_FIELDS[OrderCreated]
PRESENT, NONE, UNREADABLE = "present", "none", "unreadable"
logger = logging.getLogger(__name__)


def open_personal(payload: Mapping[str, Any], stream_id: str, codec: Any = None) -> dict[str, Any]:
    """A copy of ``payload`` with ``email``/``shipping_address`` in plaintext (or ``None``) and the
    ``personal_data`` marker. ``codec``: the crypto-shredding codec (default: the orders app's)."""
    sealed = [field for field in FIELDS if is_sealed(payload.get(field))]
    out = {**dict.fromkeys(FIELDS), **payload}
    if not sealed:
        out[MARKER] = NONE
        return out
    if codec is None:
        from orders.app import personal_data

        codec = personal_data()
    try:
        out = codec.open(out, stream_id=stream_id, fields=sealed)
    except CiphertextError:
        logger.error("personal data failed authentication", extra={"stream_id": stream_id, "fields": sealed})
        out.update(dict.fromkeys(sealed))
        out[MARKER] = UNREADABLE
        return out
    if out.get(MARKER) != ERASED:
        out[MARKER] = PRESENT
    return out
