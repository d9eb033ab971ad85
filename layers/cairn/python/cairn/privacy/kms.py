"""KMS as the key-encryption service: GenerateDataKey (AES_256) and Decrypt, with an injected client.

The encryption context ``{"subject": …}`` binds a wrapped key to its subject: a blob copied to
another subject's item does not unwrap (and the context is written to CloudTrail, which is how an
operator shows an auditor which subject a key served — docs/privacy.md).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cairn.privacy.base import KeyServiceUnavailableError, KeyUnwrapError
from cairn.privacy.errors import is_transient

__all__ = ["KmsKeyWrapper"]


class KmsKeyWrapper:
    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id

    def generate(self, subject: str) -> tuple[bytes, bytes]:
        """A fresh 256-bit data key: (plaintext, wrapped CiphertextBlob)."""
        reply = self._call(
            "generate_data_key", KeyId=self.key_id, KeySpec="AES_256", EncryptionContext={"subject": subject}
        )
        return bytes(reply["Plaintext"]), bytes(reply["CiphertextBlob"])

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        reply = self._call(
            "decrypt", KeyId=self.key_id, CiphertextBlob=wrapped, EncryptionContext={"subject": subject}
        )
        plaintext = bytes(reply["Plaintext"])
        if len(plaintext) != 32:
            raise KeyUnwrapError(f"the data key of {subject!r} is not 256 bits")
        return plaintext

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise KeyServiceUnavailableError(f"KMS {operation}: {exc}") from exc
            raise KeyUnwrapError(f"KMS {operation} refused: {exc}") from exc
