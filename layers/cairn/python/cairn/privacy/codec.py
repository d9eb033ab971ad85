"""Crypto-shredding codec: personal fields sealed with AES-GCM under a data key per subject.

A sealed field is ``{"pii": 1, "sub": subject, "kid": key id, "ct": base64(nonce || ciphertext)}``
— self-describing, so folds that do not need the plaintext (most commands) never decrypt. The
associated data binds a ciphertext to (subject, stream id, field name, key id): moved to another
field, stream or subject it fails authentication (``CiphertextError``).

Decoding never fails because a key is *gone*: a field whose key was erased (no key, a tombstone,
or a newer key with another id) reads ``None`` and the payload gets ``"personal_data": "erased"``,
so folds, projections, rebuilds, time travel and verification (which hashes the sealed form) keep
working. Decrypted keys are cached per warm Lambda for ``ttl`` seconds: a warm decode makes no
call, a cold one at most one KMS Decrypt (plus the keys-table read).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cairn.privacy.base import CiphertextError, KeyStore, Tombstone, WrappedKey
from cairn.privacy.kms import KmsKeyWrapper

__all__ = ["DEFAULT_TTL_SECONDS", "ERASED", "MARKER", "PersonalDataCodec", "is_sealed"]

DEFAULT_TTL_SECONDS = 60.0
MARKER = "personal_data"
ERASED = "erased"
_NONCE = 12
_ERASED_KEY = object()


def is_sealed(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("pii") == 1 and {"sub", "kid", "ct"} <= value.keys()


def _aad(subject: str, stream_id: str, field: str, kid: str) -> bytes:
    return "\x00".join(("cairn-pii/1", subject, stream_id, field, kid)).encode()


def _aead(key: bytes) -> AESGCM:
    """The cipher object is what the cache keeps: building one costs ~10x a short field's decrypt."""
    return AESGCM(key)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PersonalDataCodec:
    """Seals and opens personal fields; erases a subject by destroying its wrapped data key."""

    def __init__(
        self,
        keys: KeyStore,
        kms: KmsKeyWrapper,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now_iso: Callable[[], str] = _now_iso,
    ) -> None:
        self.keys, self.kms, self.ttl, self.clock, self.now_iso = keys, kms, ttl, clock, now_iso
        # (subject, key id) -> (expiry, plaintext key | erased); (subject, None) -> the write key
        self._cache: dict[tuple[str, str | None], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    # -- keys ----------------------------------------------------------------------------------
    def _cached(self, subject: str, kid: str | None) -> Any:
        # lock-free read (a dict get is atomic); an expired entry is simply fetched again
        hit = self._cache.get((subject, kid))
        if hit is None or hit[0] <= self.clock():
            return None
        return hit[1]

    def _remember(self, subject: str, kid: str | None, value: Any) -> None:
        with self._lock:
            self._cache[(subject, kid)] = (self.clock() + self.ttl, value)

    def _key_for_write(self, subject: str) -> tuple[str, Any]:
        hit = self._cached(subject, None)
        if hit is not None:
            return hit
        current = self.keys.get(subject)
        if isinstance(current, WrappedKey):
            plaintext = self.kms.unwrap(subject, current.wrapped)
            winner = current
        else:  # never seen, or erased before: a new key for new data
            plaintext, wrapped = self.kms.generate(subject)
            candidate = WrappedKey(
                subject, base64.urlsafe_b64encode(os.urandom(12)).decode(), wrapped, self.now_iso()
            )
            winner = self.keys.put_if_absent(candidate)
            if winner is not candidate:  # another writer won the race: use its key
                plaintext = self.kms.unwrap(subject, winner.wrapped)
        key = (winner.key_id, _aead(plaintext))
        self._remember(subject, None, key)
        self._remember(subject, winner.key_id, key[1])
        return key

    def _key_for_read(self, subject: str, kid: str) -> Any:
        hit = self._cached(subject, kid)
        if hit is not None:
            return None if hit is _ERASED_KEY else hit
        current = self.keys.get(subject)
        if not isinstance(current, WrappedKey) or current.key_id != kid:
            self._remember(subject, kid, _ERASED_KEY)  # key ids are random: an erased one never returns
            return None
        plaintext = self.kms.unwrap(subject, current.wrapped)
        aead = _aead(plaintext)
        self._remember(subject, kid, aead)
        self._remember(subject, None, (kid, aead))
        return aead

    # -- fields --------------------------------------------------------------------------------
    def seal(
        self, payload: Mapping[str, Any], *, subject: str, stream_id: str, fields: Iterable[str]
    ) -> dict[str, Any]:
        """A copy of ``payload`` with each present, non-null personal field sealed."""
        out = dict(payload)
        todo = [f for f in fields if out.get(f) is not None and not is_sealed(out[f])]
        if not todo:
            return out
        kid, aead = self._key_for_write(subject)
        for field in todo:
            nonce = os.urandom(_NONCE)
            body = json.dumps(out[field], separators=(",", ":"), sort_keys=True).encode()
            ct = aead.encrypt(nonce, body, _aad(subject, stream_id, field, kid))
            out[field] = {"pii": 1, "sub": subject, "kid": kid, "ct": base64.b64encode(nonce + ct).decode()}
        return out

    def open(self, payload: Mapping[str, Any], *, stream_id: str, fields: Iterable[str]) -> dict[str, Any]:
        """A copy of ``payload`` with sealed personal fields in plaintext, or ``None`` + the erased
        marker when their key is gone. Raises ``CiphertextError`` on a tampered or moved field."""
        out = dict(payload)
        for field in fields:
            sealed = out.get(field)
            if not is_sealed(sealed):
                continue
            subject, kid = str(sealed["sub"]), str(sealed["kid"])
            aead = self._key_for_read(subject, kid)
            if aead is None:
                out[field] = None
                out[MARKER] = ERASED
                continue
            try:
                raw = binascii.a2b_base64(sealed["ct"], strict_mode=True)
                if len(raw) < _NONCE + 16:
                    raise ValueError("too short")
                body = aead.decrypt(raw[:_NONCE], raw[_NONCE:], _aad(subject, stream_id, field, kid))
                out[field] = json.loads(body)
            except (InvalidTag, binascii.Error, ValueError, TypeError) as exc:
                raise CiphertextError(
                    f"personal field {field!r} of {stream_id!r} failed authentication (tampered or moved)"
                ) from exc
        return out

    # -- erasure -------------------------------------------------------------------------------
    def erase(self, subject: str, *, erased_by: str) -> Tombstone:
        """Destroy the subject's data key (tombstone: when, by whom). Idempotent: a repeat answers
        the first erasure's tombstone. Other warm instances forget the key within ``ttl``."""
        tombstone = self.keys.erase(subject, erased_at=self.now_iso(), erased_by=erased_by)
        with self._lock:
            for cached in [k for k in self._cache if k[0] == subject]:
                del self._cache[cached]
        return tombstone
