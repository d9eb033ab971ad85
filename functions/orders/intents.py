"""The order service's side of payment intents: encrypt the token, store it briefly, hand out an id.

The token is encrypted with the payment-intents KMS key under an encryption context naming the
intent and the order (``integration.payment_intents``), and written with a TTL. Only the intent
id goes into the OrderCreated event; the plaintext token is never stored anywhere.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from typing import Any

from integration.payment_intents import INTENT_TTL_SECONDS, encryption_context, intent_key

__all__ = ["DynamoDBPaymentIntents", "PaymentIntents"]


class PaymentIntents(ABC):
    @abstractmethod
    def create(self, order_id: str, token: str) -> str:
        """Store the token encrypted for ``order_id``; returns the intent id."""


class DynamoDBPaymentIntents(PaymentIntents):
    def __init__(self, dynamodb: Any, kms: Any, table: str, key_id: str, ttl_seconds: int = INTENT_TTL_SECONDS):
        self.dynamodb = dynamodb
        self.kms = kms
        self.table = table
        self.key_id = key_id
        self.ttl_seconds = ttl_seconds

    def create(self, order_id: str, token: str) -> str:
        intent_id = str(uuid.uuid4())
        ciphertext = self.kms.encrypt(
            KeyId=self.key_id,
            Plaintext=token.encode(),
            EncryptionContext=encryption_context(intent_id, order_id),
        )["CiphertextBlob"]
        expires_at = int(time.time()) + self.ttl_seconds
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                **intent_key(intent_id),
                "order_id": {"S": order_id},
                "ciphertext": {"B": ciphertext},
                "expires_at": {"N": str(expires_at)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return intent_id
