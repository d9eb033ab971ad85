"""Personal data that can be forgotten: crypto-shredding (issue 12, docs/privacy.md).

Personal fields of events are sealed to a per-subject X25519 public key (ephemeral ECDH + HKDF +
AES-256-GCM); the private key comes from KMS GenerateDataKey and is stored only KMS-wrapped, next
to the public key, in a keys table; erasing a subject destroys the pair. ``cairn.privacy.dynamodb`` (the keys table adapter) is imported lazily so importing
this package never pulls in botocore.
"""

from typing import Any

from cairn.privacy.base import (
    CiphertextError,
    KeyServiceUnavailableError,
    KeyStore,
    KeyUnwrapError,
    PrivacyError,
    Tombstone,
    WrappedKey,
)
from cairn.privacy.memory import InMemoryKeyStore

__all__ = [
    "ERASED",
    "MARKER",
    "CiphertextError",
    "DynamoDBKeyStore",
    "InMemoryKeyStore",
    "KeyServiceUnavailableError",
    "KeyStore",
    "KeyUnwrapError",
    "KmsKeyWrapper",
    "PersonalDataCodec",
    "PrivacyError",
    "Tombstone",
    "WrappedKey",
]

ERASED, MARKER = "erased", "personal_data"


def __getattr__(name: str) -> Any:
    if name == "DynamoDBKeyStore":
        from cairn.privacy.dynamodb import DynamoDBKeyStore

        return DynamoDBKeyStore
    if name == "KmsKeyWrapper":
        from cairn.privacy.kms import KmsKeyWrapper

        return KmsKeyWrapper
    if name == "PersonalDataCodec":
        from cairn.privacy.codec import PersonalDataCodec

        return PersonalDataCodec
    raise AttributeError(f"module 'cairn.privacy' has no attribute {name!r}")
