"""The keys table on DynamoDB (PK ``subject``): one item per subject, a key pair or a tombstone.

A key item holds ``key_id``, ``wrapped_key`` (the KMS-wrapped X25519 private key), ``public_key``
(raw, in the clear: writers seal with one GetItem) and ``created_at``; a tombstone holds
``erased_at``, ``erased_by``, ``erased_key_id`` and no key material, neither half of the pair.

Erasure is one conditional PutItem that replaces the item: the wrapped key and the tombstone
never coexist, and there is no step after which a crash leaves the key half-deleted. PITR on the
table (CDK) keeps old items for 35 days: the erasure is complete once that window has passed —
see docs/privacy.md.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cairn.privacy.base import KeyServiceUnavailableError, KeyStore, Tombstone, WrappedKey
from cairn.privacy.errors import is_transient

__all__ = ["DynamoDBKeyStore", "create_keys_table"]


class DynamoDBKeyStore(KeyStore):
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def get(self, subject: str) -> WrappedKey | Tombstone | None:
        reply = self._call(
            "get_item", TableName=self.table_name, Key={"subject": {"S": subject}}, ConsistentRead=True
        )
        item = reply.get("Item")
        return None if item is None else _from_item(item)

    def put_if_absent(self, key: WrappedKey) -> WrappedKey:
        try:
            self._call(
                "put_item",
                TableName=self.table_name,
                Item={
                    "subject": {"S": key.subject},
                    "key_id": {"S": key.key_id},
                    "wrapped_key": {"B": key.wrapped},
                    "public_key": {"B": key.public_key},
                    "created_at": {"S": key.created_at},
                },
                ConditionExpression="attribute_not_exists(wrapped_key)",
            )
            return key
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
        current = self.get(key.subject)
        if isinstance(current, WrappedKey):
            return current
        return self.put_if_absent(key)  # erased between the two calls: try again over the tombstone

    def erase(self, subject: str, *, erased_at: str, erased_by: str) -> Tombstone:
        current = self.get(subject)
        if isinstance(current, Tombstone):
            return current
        erased_key_id = current.key_id if isinstance(current, WrappedKey) else None
        item: dict[str, Any] = {
            "subject": {"S": subject},
            "erased_at": {"S": erased_at},
            "erased_by": {"S": erased_by},
        }
        if erased_key_id is not None:
            item["erased_key_id"] = {"S": erased_key_id}
            condition, values = "key_id = :kid", {":kid": {"S": erased_key_id}}
        else:
            condition, values = "attribute_not_exists(subject)", None
        try:
            kwargs: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
            self._call(
                "put_item", TableName=self.table_name, Item=item, ConditionExpression=condition, **kwargs
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return self.erase(subject, erased_at=erased_at, erased_by=erased_by)  # raced: decide again
        return Tombstone(subject, erased_at, erased_by, erased_key_id)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise KeyServiceUnavailableError(f"keys table {operation}: {exc}") from exc
            raise


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _from_item(item: dict[str, Any]) -> WrappedKey | Tombstone:
    subject = item["subject"]["S"]
    if "erased_at" in item:
        kid = item.get("erased_key_id", {}).get("S")
        return Tombstone(subject, item["erased_at"]["S"], item["erased_by"]["S"], kid)
    return WrappedKey(
        subject,
        item["key_id"]["S"],
        bytes(item["wrapped_key"]["B"]),
        item["created_at"]["S"],
        bytes(item["public_key"]["B"]),
    )


def create_keys_table(client: Any, table_name: str) -> None:
    """The production key layout (tests, bench, local tools); the deployed table comes from CDK."""
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "subject", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "subject", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
