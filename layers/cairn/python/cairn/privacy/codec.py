"""Crypto-shredding codec: personal fields sealed to a per-subject X25519 public key (ECIES).

A subject's key is an X25519 key pair. Its private key is the 32 random bytes of a KMS
``GenerateDataKey`` (context ``{"subject": …}``), stored only wrapped; its public key sits in the
clear in the keys table. **Sealing needs only the public key**: one ephemeral key pair per
``seal()``, ``shared = ECDH(ephemeral, subject public)``, an AES-256 key =
HKDF-SHA256(shared, salt = ephemeral public || subject public, info = "cairn-pii/1" || kid), then
AES-GCM per field (fresh 96-bit nonce). So a writer makes no KMS call (cold: one keys-table GetItem,
warm: none) and never holds a key that can read; **opening** needs the private key (GetItem + KMS
Decrypt cold, none warm), and erasing the wrapped private key shreds every ciphertext, since the
ephemeral private keys are never stored.

A sealed field is ``{"pii": 1, "sub": subject, "kid": key id, "ct": base64(ephemeral public(32) ||
nonce(12) || ciphertext+tag)}`` — self-describing, so folds that do not need the plaintext (most
commands) never decrypt. The associated data binds a ciphertext to (subject, stream id, field name,
key id): moved to another field, stream or subject it fails authentication (``CiphertextError``).

Decoding never fails because a key is *gone*: a field whose key was erased (no key, a tombstone,
or a newer key with another id) reads ``None`` and the payload gets ``"personal_data": "erased"``,
so folds, projections, rebuilds, time travel and verification (which hashes the sealed form) keep
working. Keys are cached per warm Lambda for ``ttl`` seconds (public keys for writers, private
keys for readers).
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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cairn.privacy.base import CiphertextError, KeyStore, KeyUnwrapError, Tombstone, WrappedKey
from cairn.privacy.kms import KmsKeyWrapper

__all__ = ["DEFAULT_TTL_SECONDS", "ERASED", "MARKER", "PersonalDataCodec", "is_sealed", "key_cache_seconds"]

DEFAULT_TTL_SECONDS = 60.0
MARKER = "personal_data"
ERASED = "erased"
_INFO = b"cairn-pii/1"
_POINT = 32  # raw X25519 public key
_NONCE = 12
_TAG = 16
_ERASED_KEY = object()


def key_cache_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """``PERSONAL_DATA_KEY_CACHE_SECONDS`` (CDK sets 60): how long a warm instance keeps a key,
    i.e. the bound on how long an erasure takes to reach it. Misconfigured is an init error."""
    raw = environ.get("PERSONAL_DATA_KEY_CACHE_SECONDS", "").strip()
    if not raw:
        return DEFAULT_TTL_SECONDS
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= 3600:
        raise ValueError(f"PERSONAL_DATA_KEY_CACHE_SECONDS must be whole seconds in 1..3600, not {raw!r}")
    return float(raw)


def is_sealed(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("pii") == 1 and {"sub", "kid", "ct"} <= value.keys()


def _aad(subject: str, stream_id: str, field: str, kid: str) -> bytes:
    return "\x00".join(("cairn-pii/1", subject, stream_id, field, kid)).encode()


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes_raw()


def _derive(shared: bytes, eph_public: bytes, subject_public: bytes, kid: str) -> AESGCM:
    """The AES-256-GCM key of one seal: HKDF over the ECDH secret, bound to both public keys and
    the key id (a ciphertext's ephemeral key swapped for another derives another key)."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=eph_public + subject_public, info=_INFO + kid.encode()
    ).derive(shared)
    return AESGCM(key)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PersonalDataCodec:
    """Seals and opens personal fields; erases a subject by destroying its wrapped private key."""

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
        # (subject, None) -> (expiry, (key id, public key, raw public key)): what a writer needs;
        # (subject, key id) -> (expiry, (private key, raw public key) | erased): what a reader needs
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

    def _key_for_write(self, subject: str) -> tuple[str, X25519PublicKey, bytes]:
        """The subject's public key: cached, or one GetItem; a new subject's key pair is made
        (GenerateDataKey + conditional PutItem) and its private half dropped at once."""
        hit = self._cached(subject, None)
        if hit is not None:
            return hit
        current = self.keys.get(subject)
        if isinstance(current, WrappedKey):
            winner = current
        else:  # never seen, or erased before: a new key pair for new data
            plaintext, wrapped = self.kms.generate(subject)
            public = _raw(X25519PrivateKey.from_private_bytes(plaintext).public_key())
            kid = base64.urlsafe_b64encode(os.urandom(12)).decode()
            winner = self.keys.put_if_absent(WrappedKey(subject, kid, wrapped, self.now_iso(), public))
            # lost the race: the winner's public key, no Decrypt (a writer never needs one)
        try:
            key = (winner.key_id, X25519PublicKey.from_public_bytes(winner.public_key), winner.public_key)
        except ValueError as exc:
            raise KeyUnwrapError(f"the public key of {subject!r} is malformed") from exc
        self._remember(subject, None, key)
        return key

    def _key_for_read(self, subject: str, kid: str) -> tuple[X25519PrivateKey, bytes] | None:
        """The subject's private key for ``kid`` (cached, or GetItem + KMS Decrypt), or None if
        that key was erased or superseded."""
        hit = self._cached(subject, kid)
        if hit is not None:
            return None if hit is _ERASED_KEY else hit
        current = self.keys.get(subject)
        if not isinstance(current, WrappedKey) or current.key_id != kid:
            self._remember(subject, kid, _ERASED_KEY)  # key ids are random: an erased one never returns
            return None
        private = X25519PrivateKey.from_private_bytes(self.kms.unwrap(subject, current.wrapped))
        public = _raw(private.public_key())
        if public != current.public_key:  # the item's halves disagree: writers seal to another key
            raise KeyUnwrapError(f"the public key of {subject!r} does not match its private key")
        key = (private, public)
        self._remember(subject, kid, key)
        return key

    # -- fields --------------------------------------------------------------------------------
    def seal(
        self, payload: Mapping[str, Any], *, subject: str, stream_id: str, fields: Iterable[str]
    ) -> dict[str, Any]:
        """A copy of ``payload`` with each present, non-null personal field sealed (one ephemeral
        key pair per call, a fresh nonce per field)."""
        out = dict(payload)
        todo = [f for f in fields if out.get(f) is not None and not is_sealed(out[f])]
        if not todo:
            return out
        kid, public, public_raw = self._key_for_write(subject)
        ephemeral = X25519PrivateKey.generate()
        eph_raw = _raw(ephemeral.public_key())
        aead = _derive(ephemeral.exchange(public), eph_raw, public_raw, kid)
        for field in todo:
            nonce = os.urandom(_NONCE)
            body = json.dumps(out[field], separators=(",", ":"), sort_keys=True).encode()
            sealed = aead.encrypt(nonce, body, _aad(subject, stream_id, field, kid))
            ct = base64.b64encode(eph_raw + nonce + sealed).decode()
            out[field] = {"pii": 1, "sub": subject, "kid": kid, "ct": ct}
        return out

    def open(self, payload: Mapping[str, Any], *, stream_id: str, fields: Iterable[str]) -> dict[str, Any]:
        """A copy of ``payload`` with sealed personal fields in plaintext, or ``None`` + the erased
        marker when their key is gone. Raises ``CiphertextError`` on a tampered or moved field."""
        out = dict(payload)
        derived: dict[tuple[str, str, bytes], AESGCM] = {}  # one ECDH per seal, not per field
        for field in fields:
            sealed = out.get(field)
            if not is_sealed(sealed):
                continue
            subject, kid = str(sealed["sub"]), str(sealed["kid"])
            key = self._key_for_read(subject, kid)
            if key is None:
                out[field] = None
                out[MARKER] = ERASED
                continue
            try:
                raw = binascii.a2b_base64(sealed["ct"], strict_mode=True)
                if len(raw) < _POINT + _NONCE + _TAG:
                    raise ValueError("too short")
                eph_raw, nonce, body = raw[:_POINT], raw[_POINT : _POINT + _NONCE], raw[_POINT + _NONCE :]
                aead = derived.get((subject, kid, eph_raw))
                if aead is None:
                    private, public_raw = key
                    # a low-order ephemeral point makes exchange() raise ValueError
                    shared = private.exchange(X25519PublicKey.from_public_bytes(eph_raw))
                    aead = derived[(subject, kid, eph_raw)] = _derive(shared, eph_raw, public_raw, kid)
                plain = aead.decrypt(nonce, body, _aad(subject, stream_id, field, kid))
                out[field] = json.loads(plain)
            except (InvalidTag, binascii.Error, ValueError, TypeError) as exc:
                raise CiphertextError(
                    f"personal field {field!r} of {stream_id!r} failed authentication (tampered or moved)"
                ) from exc
        return out

    # -- erasure -------------------------------------------------------------------------------
    def erase(self, subject: str, *, erased_by: str) -> Tombstone:
        """Destroy the subject's key pair (tombstone: when, by whom). Idempotent: a repeat answers
        the first erasure's tombstone. Other warm instances forget the key within ``ttl`` (a
        writer's cached public key too: it would seal data nobody can open)."""
        tombstone = self.keys.erase(subject, erased_at=self.now_iso(), erased_by=erased_by)
        with self._lock:
            for cached in [k for k in self._cache if k[0] == subject]:
                del self._cache[cached]
        return tombstone
