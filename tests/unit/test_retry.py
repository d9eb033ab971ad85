"""One transient-error classifier and one backoff for every retry in Cairn (issue 17, defect 9).

The HTTP layer (503 vs 500), the projection engine and the snapshotter (retry vs park) used to
keep two different lists, and three loops computed their own jitter. Now all of them ask
``cairn.retry``; these tests pin its answers and that nobody keeps a private copy.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from cairn import retry
from cairn.commands import RetriesExhaustedError
from cairn.http import transient_failure
from cairn.projections import engine
from cairn.store import CorruptEventError, EventStoreError, EventTooLargeError, TransactionConflictError

ROOT = Path(__file__).resolve().parents[2]


def client_error(code: str, reasons: list[str] | None = None) -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": "x"}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "Op")


TRANSIENT = [
    client_error("ProvisionedThroughputExceededException"),
    client_error("ThrottlingException"),
    client_error("TransactionConflictException"),  # in the engine's old list only
    client_error("TooManyRequestsException"),  # in the HTTP layer's old list only
    client_error("SlowDown"),
    client_error("InternalError"),
    client_error("TransactionCanceledException", ["None", "TransactionConflict"]),
    client_error("TransactionCanceledException", ["ThrottlingError"]),
    EndpointConnectionError(endpoint_url="http://x"),
    ConnectTimeoutError(endpoint_url="http://x"),
    ReadTimeoutError(endpoint_url="http://x"),
    RetriesExhaustedError("s", 1, 2),
    TransactionConflictError("s", 1),
    engine.TransientProjectionError("x"),
    EventStoreError("append cancelled: ThrottlingError"),
]
PERMANENT = [
    client_error("ValidationException"),
    client_error("ConditionalCheckFailedException"),
    client_error("TransactionCanceledException", ["ConditionalCheckFailed", "None"]),
    client_error("ResourceNotFoundException"),
    EventTooLargeError("big"),
    CorruptEventError("s", 1, "bad"),
    KeyError("x"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=repr)
def test_transient_everywhere(exc):
    assert retry.is_transient(exc) and transient_failure(exc) and engine.is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=repr)
def test_permanent_everywhere(exc):
    assert not retry.is_transient(exc) and not transient_failure(exc) and not engine.is_transient(exc)


def test_a_wrapped_aws_error_is_classified_by_its_cause():
    try:
        try:
            raise client_error("ThrottlingException")
        except ClientError as cause:
            raise RuntimeError("adapter failed") from cause
    except RuntimeError as wrapped:
        assert retry.is_transient(wrapped)


def test_full_jitter_stays_below_a_doubling_capped_ceiling():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(0.2, 0.005 * 2 ** (attempt - 1))
        waits = [retry.full_jitter(attempt, 0.005, 0.2, draw=rng.uniform) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits) and max(waits) > ceiling / 2


def test_nobody_keeps_a_private_classifier_or_backoff():
    """Guards the "one of each": a second list of AWS error codes, or a second jitter formula,
    anywhere in the deployed code fails here."""
    offenders = []
    for path in [*ROOT.joinpath("layers", "cairn").rglob("*.py"), *ROOT.joinpath("functions").rglob("*.py")]:
        if path.name == "retry.py":
            continue
        text = path.read_text()
        if re.search(r"ProvisionedThroughputExceeded|\"SlowDown\"|random\.uniform|\* 2 \*\* ", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
