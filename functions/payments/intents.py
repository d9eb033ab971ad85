"""The payment service's side of payment intents: redeem (read + decrypt) once, then delete.

See ``integration.payment_intents``. The payment role may read and delete intents and decrypt
with the intents key under the intent's encryption context; it can neither write intents nor
encrypt. An expired intent (TTL passed, whether or not DynamoDB has deleted it yet) is gone.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from integration.payment_intents import encryption_context, intent_key

__all__ = ["DynamoDBIntentVault", "IntentVault"]


class IntentVault(ABC):
    @abstractmethod
    def redeem(self, intent_id: str, order_id: str) -> str | None:
        """The token of the intent, or None when it expired or was already deleted."""

    @abstractmethod
    def discard(self, intent_id: str) -> None:
        """Delete the intent (idempotent)."""


class DynamoDBIntentVault(IntentVault):
    def __init__(self, dynamodb: Any, kms: Any, table: str):
        self.dynamodb = dynamodb
        self.kms = kms
        self.table = table

    def redeem(self, intent_id: str, order_id: str) -> str | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=intent_key(intent_id), ConsistentRead=True).get("Item")
        if not item or int(item["expires_at"]["N"]) <= time.time() or item["order_id"]["S"] != order_id:
            return None
        plaintext = self.kms.decrypt(
            CiphertextBlob=item["ciphertext"]["B"], EncryptionContext=encryption_context(intent_id, order_id)
        )["Plaintext"]
        return plaintext.decode()

    def discard(self, intent_id: str) -> None:
        self.dynamodb.delete_item(TableName=self.table, Key=intent_key(intent_id))
