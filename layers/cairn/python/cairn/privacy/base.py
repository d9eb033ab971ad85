"""The keys table's interface: one key pair (private key wrapped), or one erasure tombstone, per subject.

Why an ABC: the codec and the erasure use case depend on this, not on DynamoDB; the in-memory
fake and the DynamoDB adapter honour one contract suite (tests/contract/test_key_store.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = [
    "CiphertextError",
    "KeyServiceUnavailableError",
    "KeyStore",
    "KeyUnwrapError",
    "PrivacyError",
    "Tombstone",
    "WrappedKey",
]


class PrivacyError(Exception):
    """Base of the personal-data errors."""


class KeyServiceUnavailableError(PrivacyError):
    """KMS or the keys table is throttled or unreachable: retry later (HTTP 503 + Retry-After)."""


class KeyUnwrapError(PrivacyError):
    """KMS refused a wrapped key (another KMS key, another subject's context, corrupted blob)."""


class CiphertextError(PrivacyError):
    """A personal field failed authentication: tampered, moved to another field/stream, or sealed
    under other key material with the same key id. An integrity incident, never "erased"."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A subject's X25519 key pair as stored: the private key only KMS-wrapped, never in plaintext;
    the public key in the clear (it seals, it cannot open)."""

    subject: str
    key_id: str  # random id written next to every ciphertext: tells "erased" from "tampered"
    wrapped: bytes  # KMS CiphertextBlob of the 32-byte private key (encryption context: {"subject": subject})
    created_at: str
    public_key: bytes  # raw 32-byte X25519 public key: all a writer needs (no KMS call to seal)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What remains of a subject's key after erasure: when, by whom, which key — no key material."""

    subject: str
    erased_at: str
    erased_by: str
    erased_key_id: str | None  # None: the subject had no key (nothing to destroy, same answer)


class KeyStore(ABC):
    """One item per subject: its key pair (wrapped private key + public key) or its tombstone."""

    @abstractmethod
    def get(self, subject: str) -> WrappedKey | Tombstone | None:
        """The subject's current key, its tombstone, or None if never seen."""

    @abstractmethod
    def put_if_absent(self, key: WrappedKey) -> WrappedKey:
        """Store ``key`` unless the subject already has a live key; return the key that won.

        A tombstone does not block: a subject erased earlier may be given a new key for new data.
        """

    @abstractmethod
    def erase(self, subject: str, *, erased_at: str, erased_by: str) -> Tombstone:
        """Replace the subject's key by a tombstone in one write; idempotent: if it is already a
        tombstone, that tombstone (first erasure's when/by) is returned unchanged."""
