"""One contract for every KeyStore (the keys table): in-memory fake and DynamoDB on moto."""

from __future__ import annotations

from typing import Any

import pytest

from cairn.privacy import InMemoryKeyStore, KeyStore, Tombstone, WrappedKey
from cairn.privacy.dynamodb import DynamoDBKeyStore, create_keys_table

KEY = WrappedKey("user-1", "kid-1", b"\x01wrapped", "2026-01-01T00:00:00.000Z", b"\x02" * 32)


class KeyStoreContract:
    @pytest.fixture
    def keys(self) -> KeyStore:
        raise NotImplementedError

    def test_unknown_subject_is_none(self, keys: KeyStore) -> None:
        assert keys.get("nobody") is None

    def test_round_trip(self, keys: KeyStore) -> None:
        assert keys.put_if_absent(KEY) == KEY
        assert keys.get("user-1") == KEY

    def test_a_key_read_back_carries_its_public_key(self, keys: KeyStore) -> None:
        keys.put_if_absent(KEY)
        back = keys.get("user-1")
        assert isinstance(back, WrappedKey)
        assert back.public_key == b"\x02" * 32 and back.wrapped == b"\x01wrapped"
        assert isinstance(back.public_key, bytes)  # not a boto3 Binary or bytearray

    def test_first_key_wins(self, keys: KeyStore) -> None:
        keys.put_if_absent(KEY)
        other = WrappedKey("user-1", "kid-2", b"other", "2026-01-02T00:00:00.000Z", b"\x03" * 32)
        assert keys.put_if_absent(other) == KEY
        assert keys.get("user-1") == KEY

    def test_erase_replaces_the_key_by_a_tombstone(self, keys: KeyStore) -> None:
        keys.put_if_absent(KEY)
        tomb = keys.erase("user-1", erased_at="2026-02-01T00:00:00.000Z", erased_by="staff-9")
        assert tomb == Tombstone("user-1", "2026-02-01T00:00:00.000Z", "staff-9", "kid-1")
        assert keys.get("user-1") == tomb  # no wrapped key left

    def test_erase_twice_answers_the_first_tombstone(self, keys: KeyStore) -> None:
        keys.put_if_absent(KEY)
        first = keys.erase("user-1", erased_at="2026-02-01T00:00:00.000Z", erased_by="user-1")
        again = keys.erase("user-1", erased_at="2026-03-01T00:00:00.000Z", erased_by="staff-9")
        assert again == first

    def test_erase_a_subject_without_data(self, keys: KeyStore) -> None:
        tomb = keys.erase("nobody", erased_at="2026-02-01T00:00:00.000Z", erased_by="nobody")
        assert tomb == Tombstone("nobody", "2026-02-01T00:00:00.000Z", "nobody", None)
        assert keys.erase("nobody", erased_at="2026-03-01T00:00:00.000Z", erased_by="x") == tomb

    def test_a_new_key_after_erasure(self, keys: KeyStore) -> None:
        keys.put_if_absent(KEY)
        keys.erase("user-1", erased_at="2026-02-01T00:00:00.000Z", erased_by="user-1")
        fresh = WrappedKey("user-1", "kid-2", b"fresh", "2026-02-02T00:00:00.000Z", b"\x04" * 32)
        assert keys.put_if_absent(fresh) == fresh
        assert keys.get("user-1") == fresh

    def test_subjects_are_independent(self, keys: KeyStore) -> None:
        keys.put_if_absent(KEY)
        keys.erase("user-2", erased_at="2026-02-01T00:00:00.000Z", erased_by="user-2")
        assert keys.get("user-1") == KEY


class TestInMemoryKeyStore(KeyStoreContract):
    @pytest.fixture
    def keys(self) -> KeyStore:
        return InMemoryKeyStore()


class TestDynamoDBKeyStore(KeyStoreContract):
    @pytest.fixture
    def keys(self, dynamodb_client: Any) -> KeyStore:
        create_keys_table(dynamodb_client, "cairn-keys")
        return DynamoDBKeyStore(dynamodb_client, "cairn-keys")

    def test_erasure_leaves_no_key_material_in_the_item(self, keys: DynamoDBKeyStore) -> None:
        keys.put_if_absent(KEY)
        keys.erase("user-1", erased_at="2026-02-01T00:00:00.000Z", erased_by="user-1")
        item = keys.client.get_item(TableName="cairn-keys", Key={"subject": {"S": "user-1"}})["Item"]
        assert set(item) == {"subject", "erased_at", "erased_by", "erased_key_id"}
        assert b"wrapped" not in repr(item).encode()  # neither half of the pair remains

    def test_the_item_holds_the_public_key_as_binary(self, keys: DynamoDBKeyStore) -> None:
        keys.put_if_absent(KEY)
        item = keys.client.get_item(TableName="cairn-keys", Key={"subject": {"S": "user-1"}})["Item"]
        assert item["public_key"] == {"B": b"\x02" * 32} and item["wrapped_key"] == {"B": b"\x01wrapped"}

    def test_get_is_one_call(self, keys: DynamoDBKeyStore, call_log: Any) -> None:
        keys.put_if_absent(KEY)
        call_log.attach(keys.client)
        keys.get("user-1")
        assert call_log.calls == ["GetItem"]


class _StaleReads(DynamoDBKeyStore):
    """Its first read is stale: another instance changed the item just after it."""

    def __init__(self, client: Any, table: str, stale: Any) -> None:
        super().__init__(client, table)
        self.stale: list[Any] = [stale]

    def get(self, subject: str) -> WrappedKey | Tombstone | None:
        return self.stale.pop() if self.stale else super().get(subject)


def test_dynamodb_erase_decides_again_when_the_key_changed_meanwhile(dynamodb_client: Any) -> None:
    create_keys_table(dynamodb_client, "cairn-keys")
    DynamoDBKeyStore(dynamodb_client, "cairn-keys").put_if_absent(KEY)
    stale = _StaleReads(dynamodb_client, "cairn-keys", None)  # read "no key", but KEY is there
    tomb = stale.erase("user-1", erased_at="2026-02-01T00:00:00.000Z", erased_by="user-1")
    assert tomb.erased_key_id == "kid-1"  # the key that was really there is the one destroyed
    assert stale.get("user-1") == tomb


def test_dynamodb_put_decides_again_when_erased_meanwhile(dynamodb_client: Any) -> None:
    create_keys_table(dynamodb_client, "cairn-keys")
    plain = DynamoDBKeyStore(dynamodb_client, "cairn-keys")
    plain.erase("user-1", erased_at="2026-02-01T00:00:00.000Z", erased_by="user-1")
    fresh = WrappedKey("user-1", "kid-2", b"fresh", "2026-02-02T00:00:00.000Z", b"\x04" * 32)
    assert plain.put_if_absent(fresh) == fresh  # a tombstone never blocks a new key
