"""Item sizes by DynamoDB's rules (names + values, UTF-8 bytes; numbers by significant digits)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from cairn.events import EventMetadata, EventRegistry, NewEvent
from cairn.store import InMemoryEventStore
from cairn.store.base import EVENT_ITEM_ATTRIBUTES, item_size, number_size
from cairn.store.dynamodb import _flat, item_from_encoded
from tests.budget import examples


class Blob(BaseModel):
    text: str


def test_number_size_counts_significant_digits() -> None:
    assert number_size(0) == 2
    assert number_size(7) == 2  # 1 digit -> 1 byte + 1
    assert number_size(12) == 2
    assert number_size(123) == 3
    assert number_size(1000) == 2  # trailing zeros are trimmed
    assert number_size(10**37 + 1) == 20  # 38 digits -> 19 + 1


def test_item_size_counts_names_and_utf8_bytes() -> None:
    assert item_size({"a": "xyz"}) == 1 + 3
    assert item_size({"é": "€"}) == 2 + 3
    assert item_size({"n": 123, "gone": None}) == 1 + 3


def test_item_attributes_are_the_dynamodb_layout() -> None:
    assert EVENT_ITEM_ATTRIBUTES == (
        "stream_id",
        "version",
        "event_id",
        "type",
        "schema_version",
        "occurred_at",
        "data",
        "metadata",
        "hash",
        "prev_hash",
    )


@settings(max_examples=examples(200), deadline=None)
@given(
    text=st.text(max_size=200),
    stream_id=st.text(min_size=1, max_size=40),
    version=st.integers(min_value=0, max_value=10**9),
    actor=st.none() | st.text(max_size=20),
)
def test_encoded_size_equals_the_size_of_the_written_item(text: str, stream_id: str, version: int, actor: str | None) -> None:
    registry = EventRegistry()
    registry.register(Blob)
    store = InMemoryEventStore(registry)
    (encoded,) = store.encode_batch(stream_id, [NewEvent(data=Blob(text=text), metadata=EventMetadata(actor=actor))], version)
    item = item_from_encoded(stream_id, encoded)
    assert set(item) == set(EVENT_ITEM_ATTRIBUTES)
    assert encoded.item_size(stream_id) == item_size(_flat(item))
