"""Payment intents: how a payment token reaches the payment service without ever being stored
in plaintext or put on the bus.

The order service encrypts the token with the payment-intents KMS key (encryption context: the
intent and order ids, so a ciphertext cannot be replayed for another order) and writes it to the
payment-intents table with a TTL; ``OrderCreated`` carries only the intent id. The payment service
reads the intent once, decrypts, charges, and deletes it. An intent not redeemed in time expires
(the table's TTL, and readers refuse expired items before TTL deletion happens).
This module is the shared contract of that table (item layout, context, lifetime).
"""

from __future__ import annotations

__all__ = ["INTENT_TTL_SECONDS", "encryption_context", "intent_key"]

INTENT_TTL_SECONDS = 3600


def intent_key(intent_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"intent#{intent_id}"}, "sk": {"S": "intent"}}


def encryption_context(intent_id: str, order_id: str) -> dict[str, str]:
    return {"cairn:intent": intent_id, "cairn:order": order_id}
