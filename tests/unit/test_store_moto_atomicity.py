"""Is in-process moto atomic under concurrent requests? No — proven here, deterministically.

DynamoDB evaluates a condition and writes the item atomically, and a cancelled transaction
touches nothing. moto 5.2.5 in-process has no lock around either: a conditional PutItem reads
the current item and writes later (check-then-act), and a failed TransactWriteItems "rolls
back" by putting back a deep copy of each whole table taken before it started, erasing writes
other threads made meanwhile. Each test below pauses one request inside moto at the unguarded
point (a thread switch can happen there in any run; the pause only makes it certain) and
shows an acknowledged write being lost.

Consequence: concurrency tests against in-process moto serialize DynamoDB calls through a
documented test double (``SerializedClient`` in test_commands_race.py), which restores the
per-item atomicity DynamoDB guarantees. If moto gains a lock, these tests fail: drop the double.
"""

from __future__ import annotations

import threading
from typing import Any

import moto.dynamodb.models as moto_models
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import table as moto_table

KEY = {"stream_id": {"S": "s-1"}, "version": {"N": "1"}}


@pytest.fixture(autouse=True)
def _moto_s_own_transactions(aws: None) -> Any:
    """moto's own TransactWriteItems and Query, not the undo log the ``aws`` fixture turns on."""
    from local.cloud import moto_own

    with moto_own():
        yield


def _put(client: Any, table: str, item: dict[str, Any]) -> None:
    client.put_item(
        TableName=table,
        Item=item,
        ConditionExpression="attribute_not_exists(#v)",
        ExpressionAttributeNames={"#v": "version"},
    )


def test_conditional_put_is_check_then_act(
    dynamodb_client: Any, event_tables: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of the same version both get 200; the first acknowledged event is lost."""
    checked, resume = threading.Event(), threading.Event()
    real_get_item = moto_table.Table.get_item

    def get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = real_get_item(self, *args, **kwargs)
        if threading.current_thread().name == "slow-writer" and not checked.is_set():
            checked.set()  # the condition will be evaluated on ``found``, read now
            resume.wait(5)
        return found

    monkeypatch.setattr(moto_table.Table, "get_item", get_item)
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            _put(dynamodb_client, event_tables.events, {**KEY, "event_id": {"S": "slow"}})
        except BaseException as exc:  # pragma: no cover - would mean moto is atomic
            errors.append(exc)

    thread = threading.Thread(target=slow_writer, name="slow-writer")
    thread.start()
    assert checked.wait(5)
    _put(dynamodb_client, event_tables.events, {**KEY, "event_id": {"S": "fast"}})  # acknowledged
    resume.set()
    thread.join(5)
    assert errors == []  # DynamoDB would have failed one of the two conditional writes
    stored = dynamodb_client.get_item(TableName=event_tables.events, Key=KEY)["Item"]
    assert stored["event_id"] == {"S": "slow"}  # "fast" was acknowledged, then overwritten


def test_cancelled_transaction_rolls_back_other_writers(
    dynamodb_client: Any, event_tables: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing transaction restores a table copy taken before it ran: a concurrent,
    acknowledged PutItem disappears."""
    _put(dynamodb_client, event_tables.events, {**KEY, "event_id": {"S": "first"}})
    copied, resume = threading.Event(), threading.Event()
    real_copy = moto_models.copy

    class PausingCopy:
        @staticmethod
        def deepcopy(value: Any, *args: Any) -> Any:
            result = real_copy.deepcopy(value, *args)
            if threading.current_thread().name == "doomed-transaction" and not copied.is_set():
                copied.set()
                resume.wait(5)
            return result

    monkeypatch.setattr(moto_models, "copy", PausingCopy)
    outcome: list[str] = []

    def doomed() -> None:
        try:
            dynamodb_client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": event_tables.events,
                            "Item": {**KEY, "event_id": {"S": "dup"}},
                            "ConditionExpression": "attribute_not_exists(#v)",
                            "ExpressionAttributeNames": {"#v": "version"},
                        }
                    }
                ]
            )
            outcome.append("committed")
        except ClientError as exc:
            outcome.append(exc.response["Error"]["Code"])

    thread = threading.Thread(target=doomed, name="doomed-transaction")
    thread.start()
    assert copied.wait(5)
    other = {"stream_id": {"S": "s-2"}, "version": {"N": "1"}}
    _put(dynamodb_client, event_tables.events, {**other, "event_id": {"S": "acknowledged"}})
    assert "Item" in dynamodb_client.get_item(TableName=event_tables.events, Key=other)
    resume.set()
    thread.join(5)
    assert outcome == ["TransactionCanceledException"]
    assert "Item" not in dynamodb_client.get_item(TableName=event_tables.events, Key=other)  # lost
