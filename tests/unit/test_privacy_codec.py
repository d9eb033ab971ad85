"""The crypto-shredding codec against moto's KMS: sealing (ECIES, X25519), binding, tampering,
erasure, the cache, and the calls a cold or warm instance makes (writers: no KMS call at all)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import cairn.privacy.codec as codec_module
from cairn.http import transient_failure
from cairn.privacy import (
    ERASED,
    MARKER,
    CiphertextError,
    InMemoryKeyStore,
    KeyServiceUnavailableError,
    KeyUnwrapError,
    PersonalDataCodec,
    Tombstone,
    WrappedKey,
)
from cairn.privacy.dynamodb import DynamoDBKeyStore, create_keys_table
from cairn.privacy.kms import KmsKeyWrapper

FIELDS = ("email", "shipping_address")
STREAM = "order-0001"
PAYLOAD = {
    "order_id": "0001",
    "total": "19.98",
    "email": "ada.lovelace.7f3a@example.org",
    "shipping_address": {"line1": "12 Analytical Row", "city": "London", "country": "GB"},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kms_client(aws: None) -> Any:
    from cairn.aws import client

    return client("kms")


@pytest.fixture
def kms(kms_client: Any) -> KmsKeyWrapper:
    key_id = kms_client.create_key(Description="cairn personal data")["KeyMetadata"]["KeyId"]
    return KmsKeyWrapper(kms_client, key_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys() -> InMemoryKeyStore:
    return InMemoryKeyStore()


@pytest.fixture
def codec(keys: InMemoryKeyStore, kms: KmsKeyWrapper, clock: Clock) -> PersonalDataCodec:
    return PersonalDataCodec(keys, kms, ttl=30, clock=clock)


def cold(codec: PersonalDataCodec) -> PersonalDataCodec:
    """Another Lambda instance: same keys table and KMS key, empty cache."""
    return PersonalDataCodec(codec.keys, codec.kms, ttl=codec.ttl, clock=codec.clock)


def sealed(
    codec: PersonalDataCodec, payload: dict[str, Any] = PAYLOAD, subject: str = "user-1"
) -> dict[str, Any]:
    return codec.seal(payload, subject=subject, stream_id=STREAM, fields=FIELDS)


def test_round_trip_and_no_plaintext_at_rest(codec: PersonalDataCodec) -> None:
    stored = sealed(codec)
    text = json.dumps(stored)
    assert "ada.lovelace" not in text and "Analytical" not in text and "London" not in text
    assert stored["order_id"] == "0001" and stored["total"] == "19.98"  # the rest stays readable
    assert cold(codec).open(stored, stream_id=STREAM, fields=FIELDS) == PAYLOAD
    assert MARKER not in cold(codec).open(stored, stream_id=STREAM, fields=FIELDS)


def test_absent_and_null_fields_are_left_alone(codec: PersonalDataCodec, keys: InMemoryKeyStore) -> None:
    stored = codec.seal({"order_id": "1", "email": None}, subject="user-1", stream_id=STREAM, fields=FIELDS)
    assert stored == {"order_id": "1", "email": None}
    assert keys.get("user-1") is None  # no key is made for nothing to seal


def test_moved_to_another_field_or_stream_fails(codec: PersonalDataCodec) -> None:
    stored = sealed(codec)
    swapped = {**stored, "email": stored["shipping_address"], "shipping_address": stored["email"]}
    with pytest.raises(CiphertextError, match="email"):
        codec.open(swapped, stream_id=STREAM, fields=FIELDS)
    with pytest.raises(CiphertextError):
        codec.open(stored, stream_id="order-0002", fields=FIELDS)


def test_moved_to_another_subject_fails(codec: PersonalDataCodec) -> None:
    mine, theirs = sealed(codec, subject="user-1"), sealed(codec, subject="user-2")
    forged = {**theirs["email"], "sub": "user-1", "kid": mine["email"]["kid"]}  # relabelled
    with pytest.raises(CiphertextError):
        codec.open({**mine, "email": forged}, stream_id=STREAM, fields=FIELDS)


def _ct(value: dict[str, Any]) -> bytes:
    return base64.b64decode(value["ct"])


def _with_ct(stored: dict[str, Any], field: str, raw: bytes) -> dict[str, Any]:
    return {**stored, field: {**stored[field], "ct": base64.b64encode(raw).decode()}}


def test_ct_layout_is_ephemeral_key_nonce_body(codec: PersonalDataCodec) -> None:
    first, second = sealed(codec), sealed(codec)
    email, address = _ct(first["email"]), _ct(first["shipping_address"])
    assert email[:32] == address[:32]  # one ephemeral key pair per seal() ...
    assert email[32:44] != address[32:44]  # ... a fresh nonce per field
    assert email[:32] != _ct(second["email"])[:32]  # and a new ephemeral key per call
    body = json.dumps(PAYLOAD["email"]).encode()
    assert len(email) == 32 + 12 + len(body) + 16


@pytest.mark.parametrize(
    "position", [0, 31, 32, 44, -1], ids=["ephemeral-key", "ephemeral-key-last", "nonce", "body", "tag"]
)
def test_tampered_ciphertext_fails(codec: PersonalDataCodec, position: int) -> None:
    stored = sealed(codec)
    raw = bytearray(_ct(stored["email"]))
    raw[position] ^= 0x01
    with pytest.raises(CiphertextError, match="tampered"):
        cold(codec).open(_with_ct(stored, "email", bytes(raw)), stream_id=STREAM, fields=FIELDS)


def test_swapped_ephemeral_key_fails(codec: PersonalDataCodec) -> None:
    stored, other = sealed(codec), sealed(codec)  # same subject, same key, another seal()
    raw = _ct(other["email"])[:32] + _ct(stored["email"])[32:]
    with pytest.raises(CiphertextError):
        codec.open(_with_ct(stored, "email", raw), stream_id=STREAM, fields=FIELDS)


def test_low_order_ephemeral_key_fails(codec: PersonalDataCodec) -> None:
    stored = sealed(codec)
    raw = bytes(32) + _ct(stored["email"])[32:]  # the all-zero point: ECDH refuses it
    with pytest.raises(CiphertextError):
        codec.open(_with_ct(stored, "email", raw), stream_id=STREAM, fields=FIELDS)


@pytest.mark.parametrize(
    "ct",
    [
        "not base64!",
        "",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"\x09" * 59).decode(),  # one byte short of key + nonce + tag
        base64.b64encode(b"\x09" * 60).decode(),  # key + nonce + a tag over nothing
    ],
    ids=["not-base64", "empty", "short", "truncated", "no-body"],
)
def test_malformed_ciphertext_fails(codec: PersonalDataCodec, ct: str) -> None:
    stored = sealed(codec)
    with pytest.raises(CiphertextError):
        codec.open({**stored, "email": {**stored["email"], "ct": ct}}, stream_id=STREAM, fields=FIELDS)


def test_wrong_key_material_fails(
    codec: PersonalDataCodec, keys: InMemoryKeyStore, kms: KmsKeyWrapper
) -> None:
    stored = sealed(codec)
    current = keys.get("user-1")
    assert isinstance(current, WrappedKey)
    other, other_wrapped = kms.generate("user-1")  # a valid pair for this subject, same key id
    public = X25519PrivateKey.from_private_bytes(other).public_key().public_bytes_raw()
    keys._items["user-1"] = WrappedKey("user-1", current.key_id, other_wrapped, current.created_at, public)
    with pytest.raises(CiphertextError):
        cold(codec).open(stored, stream_id=STREAM, fields=FIELDS)


def test_a_public_key_that_does_not_match_the_private_key_is_refused(
    codec: PersonalDataCodec, keys: InMemoryKeyStore
) -> None:
    """Someone who replaced the public key in the table (so new data would be sealed to them) is
    noticed by the first reader that unwraps the private key."""
    stored = sealed(codec)
    current = keys.get("user-1")
    assert isinstance(current, WrappedKey)
    forged = X25519PrivateKey.generate().public_key().public_bytes_raw()
    keys._items["user-1"] = WrappedKey("user-1", current.key_id, current.wrapped, current.created_at, forged)
    with pytest.raises(KeyUnwrapError, match="does not match"):
        cold(codec).open(stored, stream_id=STREAM, fields=FIELDS)


def test_wrapped_key_of_another_subject_does_not_unwrap(
    codec: PersonalDataCodec, keys: InMemoryKeyStore, kms: KmsKeyWrapper
) -> None:
    stored = sealed(codec)
    current = keys.get("user-1")
    assert isinstance(current, WrappedKey)
    _, theirs = kms.generate("user-2")  # encryption context {"subject": "user-2"}
    keys._items["user-1"] = WrappedKey(
        "user-1", current.key_id, theirs, current.created_at, current.public_key
    )
    with pytest.raises(KeyUnwrapError):
        cold(codec).open(stored, stream_id=STREAM, fields=FIELDS)


def test_missing_key_reads_erased(codec: PersonalDataCodec, kms: KmsKeyWrapper, clock: Clock) -> None:
    stored = sealed(codec)
    lost = PersonalDataCodec(InMemoryKeyStore(), kms, clock=clock)  # a keys table without the subject
    opened = lost.open(stored, stream_id=STREAM, fields=FIELDS)
    assert opened == {**PAYLOAD, "email": None, "shipping_address": None, MARKER: ERASED}


def test_erasure_shreds_every_instance_and_is_idempotent(
    codec: PersonalDataCodec, keys: InMemoryKeyStore, clock: Clock
) -> None:
    stored = sealed(codec)
    other = cold(codec)
    assert other.open(stored, stream_id=STREAM, fields=FIELDS) == PAYLOAD  # warm elsewhere
    first = codec.erase("user-1", erased_by="user-1")
    assert isinstance(first, Tombstone) and first.erased_by == "user-1" and first.erased_key_id
    assert not isinstance(keys.get("user-1"), WrappedKey)
    erased = {**PAYLOAD, "email": None, "shipping_address": None, MARKER: ERASED}
    assert codec.open(stored, stream_id=STREAM, fields=FIELDS) == erased  # this instance: at once
    assert cold(codec).open(stored, stream_id=STREAM, fields=FIELDS) == erased  # a cold one: at once
    clock.now += codec.ttl + 0.001
    assert other.open(stored, stream_id=STREAM, fields=FIELDS) == erased  # a warm one: within the TTL
    clock.now += 1
    assert codec.erase("user-1", erased_by="staff-9") == first  # twice: the same answer


def test_new_data_after_erasure_gets_a_new_key(codec: PersonalDataCodec) -> None:
    old = sealed(codec)
    codec.erase("user-1", erased_by="user-1")
    new = sealed(codec, {**PAYLOAD, "email": "new@example.org"})
    assert new["email"]["kid"] != old["email"]["kid"]
    reader = cold(codec)
    assert reader.open(old, stream_id=STREAM, fields=FIELDS)[MARKER] == ERASED
    assert reader.open(new, stream_id=STREAM, fields=FIELDS)["email"] == "new@example.org"


def test_cache_ttl_kms_calls(codec: PersonalDataCodec, kms_client: Any, call_log: Any, clock: Clock) -> None:
    stream = [sealed(codec, {**PAYLOAD, "order_id": str(i)}) for i in range(5)]
    call_log.attach(kms_client)
    reader = cold(codec)
    for event in stream:  # cold: one Decrypt for the whole stream
        reader.open(event, stream_id=STREAM, fields=FIELDS)
    assert call_log.calls == ["Decrypt"]
    call_log.clear()
    for event in stream:  # warm: none
        reader.open(event, stream_id=STREAM, fields=FIELDS)
        codec.seal(PAYLOAD, subject="user-1", stream_id=STREAM, fields=FIELDS)
    assert call_log.calls == []
    clock.now += codec.ttl  # expired: one Decrypt again
    reader.open(stream[0], stream_id=STREAM, fields=FIELDS)
    assert call_log.calls == ["Decrypt"]


def test_first_write_is_one_kms_call(codec: PersonalDataCodec, kms_client: Any, call_log: Any) -> None:
    call_log.attach(kms_client)
    sealed(codec, subject="user-new")
    sealed(codec, subject="user-new")
    assert call_log.calls == ["GenerateDataKey"]


def test_with_the_dynamodb_keys_table(kms: KmsKeyWrapper, dynamodb_client: Any, clock: Clock) -> None:
    create_keys_table(dynamodb_client, "cairn-keys")
    codec = PersonalDataCodec(DynamoDBKeyStore(dynamodb_client, "cairn-keys"), kms, clock=clock)
    stored = sealed(codec)
    assert cold(codec).open(stored, stream_id=STREAM, fields=FIELDS) == PAYLOAD
    codec.erase("user-1", erased_by="staff-9")
    assert cold(codec).open(stored, stream_id=STREAM, fields=FIELDS)[MARKER] == ERASED


class _DownKms:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def generate_data_key(self, **_: Any) -> Any:
        raise self.error

    decrypt = generate_data_key


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "KMSInternalException", "Message": "down"}}, "Decrypt"),
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Decrypt"),
        EndpointConnectionError(endpoint_url="https://kms.us-east-1.amazonaws.com"),
    ],
    ids=["internal", "throttled", "unreachable"],
)
def test_key_service_outage_is_transient(codec: PersonalDataCodec, error: Exception) -> None:
    stored = sealed(codec)
    down = PersonalDataCodec(codec.keys, KmsKeyWrapper(_DownKms(error), "k"), clock=codec.clock)
    with pytest.raises(KeyServiceUnavailableError) as raised:
        down.open(stored, stream_id=STREAM, fields=FIELDS)
    assert transient_failure(raised.value)  # the HTTP layer answers 503 + Retry-After
    with pytest.raises(KeyServiceUnavailableError):
        down.seal(PAYLOAD, subject="user-other", stream_id=STREAM, fields=FIELDS)


def test_a_refusal_is_not_transient(codec: PersonalDataCodec) -> None:
    refused = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Decrypt")
    down = PersonalDataCodec(codec.keys, KmsKeyWrapper(_DownKms(refused), "k"), clock=codec.clock)
    with pytest.raises(KeyUnwrapError) as raised:
        down.open(sealed(codec), stream_id=STREAM, fields=FIELDS)
    assert not transient_failure(raised.value)


class _RacedKeyStore(InMemoryKeyStore):
    """Another instance stores its key between this one's read and its write."""

    def __init__(self, rival: WrappedKey) -> None:
        super().__init__()
        self.rival = rival

    def put_if_absent(self, key: WrappedKey) -> WrappedKey:
        super().put_if_absent(self.rival)
        return super().put_if_absent(key)


def test_racing_first_writers_share_one_key(
    kms: KmsKeyWrapper, kms_client: Any, call_log: Any, clock: Clock
) -> None:
    rival, rival_wrapped = kms.generate("user-1")
    public = X25519PrivateKey.from_private_bytes(rival).public_key().public_bytes_raw()
    keys = _RacedKeyStore(
        WrappedKey("user-1", "rival-kid", rival_wrapped, "2026-01-01T00:00:00.000Z", public)
    )
    codec = PersonalDataCodec(keys, kms, clock=clock)
    call_log.attach(kms_client)
    stored = sealed(codec)
    assert call_log.calls == ["GenerateDataKey"]  # the loser seals to the winner's public key: no Decrypt
    assert stored["email"]["kid"] == "rival-kid"  # sealed under the key that won, not its own
    assert PersonalDataCodec(keys, kms, clock=clock).open(stored, stream_id=STREAM, fields=FIELDS) == PAYLOAD


# -- calls: a writer needs only the public key (issue 12: <= 1 extra call cold, 0 warm) ---------
@pytest.fixture
def table_codec(kms: KmsKeyWrapper, dynamodb_client: Any, clock: Clock) -> PersonalDataCodec:
    create_keys_table(dynamodb_client, "cairn-keys")
    return PersonalDataCodec(DynamoDBKeyStore(dynamodb_client, "cairn-keys"), kms, clock=clock)


def test_a_cold_seal_for_a_known_subject_is_one_getitem_and_no_kms_call(
    table_codec: PersonalDataCodec, kms_client: Any, dynamodb_client: Any, call_log: Any
) -> None:
    sealed(table_codec)  # the subject's first write made the key
    call_log.attach(kms_client, dynamodb_client)
    writer = cold(table_codec)
    stored = sealed(writer, {**PAYLOAD, "email": "second@example.org"})
    assert call_log.calls == ["GetItem"]
    call_log.clear()
    sealed(writer)  # warm: none
    sealed(writer, subject="user-1")
    assert call_log.calls == []
    assert cold(table_codec).open(stored, stream_id=STREAM, fields=FIELDS)["email"] == "second@example.org"


def test_a_first_write_is_getitem_generate_putitem(
    table_codec: PersonalDataCodec, kms_client: Any, dynamodb_client: Any, call_log: Any
) -> None:
    call_log.attach(kms_client, dynamodb_client)
    sealed(table_codec, subject="user-new")
    assert call_log.calls == ["GetItem", "GenerateDataKey", "PutItem"]


def test_a_cold_open_is_getitem_and_decrypt_then_nothing(
    table_codec: PersonalDataCodec, kms_client: Any, dynamodb_client: Any, call_log: Any
) -> None:
    stored = sealed(table_codec)
    call_log.attach(kms_client, dynamodb_client)
    reader = cold(table_codec)
    assert reader.open(stored, stream_id=STREAM, fields=FIELDS) == PAYLOAD
    assert call_log.calls == ["GetItem", "Decrypt"]
    call_log.clear()
    assert reader.open(sealed(table_codec), stream_id=STREAM, fields=FIELDS) == PAYLOAD
    assert call_log.calls == []


def test_the_item_holds_the_public_half_of_the_wrapped_private_key(
    table_codec: PersonalDataCodec, kms: KmsKeyWrapper
) -> None:
    sealed(table_codec)
    key = table_codec.keys.get("user-1")
    assert isinstance(key, WrappedKey) and len(key.public_key) == 32
    private = X25519PrivateKey.from_private_bytes(kms.unwrap("user-1", key.wrapped))
    assert private.public_key().public_bytes_raw() == key.public_key


class _SealOnlyKms:
    """KMS for a function granted GenerateDataKey only: Decrypt is refused."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def generate_data_key(self, **kwargs: Any) -> Any:
        return self.real.generate_data_key(**kwargs)

    def decrypt(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Decrypt")


def test_a_writer_with_only_the_public_key_cannot_open(codec: PersonalDataCodec, kms: KmsKeyWrapper) -> None:
    sealed(codec)  # the subject has a key
    writer = PersonalDataCodec(
        codec.keys, KmsKeyWrapper(_SealOnlyKms(kms.client), kms.key_id), clock=codec.clock
    )
    stored = sealed(writer)  # sealing needs no Decrypt ...
    stored_new = sealed(writer, subject="user-new")  # ... not even for a new subject
    for payload in (stored, stored_new):
        with pytest.raises(KeyUnwrapError):  # ... opening does, even on the instance that sealed
            writer.open(payload, stream_id=STREAM, fields=FIELDS)
        assert cold(codec).open(payload, stream_id=STREAM, fields=FIELDS) == PAYLOAD


def test_one_key_agreement_per_sealed_payload(codec: PersonalDataCodec, monkeypatch: Any) -> None:
    stored = sealed(codec)
    derived: list[bytes] = []
    real = codec_module._derive

    def counting(shared: bytes, eph: bytes, public: bytes, kid: str) -> Any:
        derived.append(eph)
        return real(shared, eph, public, kid)

    monkeypatch.setattr(codec_module, "_derive", counting)
    assert cold(codec).open(stored, stream_id=STREAM, fields=FIELDS) == PAYLOAD
    assert len(derived) == 1  # two fields, one ephemeral key: one ECDH + HKDF


def test_the_key_cache_bound_comes_from_the_environment_and_rejects_anything_but_whole_seconds():
    from cairn.privacy.codec import DEFAULT_TTL_SECONDS, key_cache_seconds

    assert key_cache_seconds({}) == DEFAULT_TTL_SECONDS == 60
    assert key_cache_seconds({"PERSONAL_DATA_KEY_CACHE_SECONDS": "5"}) == 5.0
    assert key_cache_seconds({"PERSONAL_DATA_KEY_CACHE_SECONDS": " 3600 "}) == 3600.0
    for bad in ("0", "-1", "3601", "1.5", "1e3", "abc", "٥", "²"):
        with pytest.raises(ValueError, match="PERSONAL_DATA_KEY_CACHE_SECONDS"):
            key_cache_seconds({"PERSONAL_DATA_KEY_CACHE_SECONDS": bad})
