"""Personal fields (issue 12): the schema marks them, the schema guard holds them to "sealed or
null, once personal always personal", and opening them never crashes a read (erased -> null +
marker, tampered -> null + "unreadable", logged)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import boto3
import pytest
from pydantic import BaseModel, ConfigDict

from cairn.events.schemas import check_schemas, personal_problems
from kernel.personal import Sealed, personal, personal_fields

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "events.json"


class Sealed1(BaseModel):
    model_config = ConfigDict(strict=True)
    email: Sealed | None = personal()


class Plain(BaseModel):
    model_config = ConfigDict(strict=True)
    email: str | None = personal()  # marked personal, but would store plaintext


def test_the_order_event_marks_its_personal_fields():
    from orders import domain

    assert domain.PERSONAL_FIELDS == {domain.OrderCreated: ("email", "shipping_address")}
    schema = json.loads(COMMITTED.read_text())["orders"]["OrderCreated"]
    assert schema["schema_version"] == 2 and schema["upcasters_from"] == [1]
    assert {f for f, s in schema["schema"]["properties"].items() if s.get("x-personal")} == {"email", "shipping_address"}
    assert personal_problems("OrderCreated", schema["schema"], schema["schema"]) == []


def test_a_personal_field_stored_in_plaintext_is_a_problem():
    assert personal_fields(Plain) == ("email",)
    assert personal_problems("Plain", Plain.model_json_schema(), None) == [
        "Plain: personal field 'email' is not stored sealed (kernel.personal.Sealed)"
    ]
    assert personal_problems("Sealed1", Sealed1.model_json_schema(), None) == []


def test_dropping_the_personal_mark_is_a_problem_even_with_a_version_bump():
    committed = json.loads(COMMITTED.read_text())["orders"]
    current = copy.deepcopy(committed)
    del current["OrderCreated"]["schema"]["properties"]["email"]["x-personal"]
    current["OrderCreated"]["schema_version"] = 3
    current["OrderCreated"]["upcasters_from"] = [1, 2]
    assert check_schemas(committed, current) == [
        "OrderCreated: field 'email' was personal and lost its x-personal mark"
    ]


def test_old_order_events_upcast_without_personal_data():
    from orders.app import registry

    event = registry.decode(
        "OrderCreated", 1,
        '{"order_id":"order-1","customer_id":"a","items":[],"currency":"USD","total":"0.00","payment_token":"tok"}',
    )
    assert (event.email, event.shipping_address) == (None, None)


# -- opening: erased, tampered, none ---------------------------------------------------------------
@pytest.fixture
def codec(aws: None):
    from cairn.privacy import InMemoryKeyStore, KmsKeyWrapper, PersonalDataCodec

    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return PersonalDataCodec(InMemoryKeyStore(), KmsKeyWrapper(kms, key))


def _view(codec, stream_id: str = "order-1") -> dict:
    sealed = codec.seal(
        {"email": "a@example.com", "shipping_address": {"city": "X"}},
        subject="alice", stream_id=stream_id, fields=("email", "shipping_address"),
    )
    return {"order_id": stream_id, **sealed}


def test_open_present_erased_and_none(codec):
    from orders.personal import open_personal

    view = _view(codec)
    opened = open_personal(view, "order-1", codec)
    assert (opened["email"], opened["shipping_address"], opened["personal_data"]) == (
        "a@example.com", {"city": "X"}, "present"
    )
    assert open_personal({"order_id": "order-2"}, "order-2", codec) == {
        "order_id": "order-2", "email": None, "shipping_address": None, "personal_data": "none"
    }
    codec.erase("alice", erased_by="alice")
    erased = open_personal(view, "order-1", codec)
    assert (erased["email"], erased["shipping_address"], erased["personal_data"]) == (None, None, "erased")


def test_tampered_or_moved_ciphertext_reads_unreadable_and_is_logged(codec, caplog):
    from orders.personal import open_personal

    view = _view(codec)
    moved = open_personal(view, "order-other", codec)  # sealed for order-1, presented as another order's
    assert (moved["email"], moved["personal_data"]) == (None, "unreadable")
    tampered = copy.deepcopy(view)
    ct = tampered["email"]["ct"]
    tampered["email"]["ct"] = ct[:-4] + ("AAAA" if ct[-4:] != "AAAA" else "BBBB")
    assert open_personal(tampered, "order-1", codec)["personal_data"] == "unreadable"
    assert any("failed authentication" in r.getMessage() for r in caplog.records)
