"""AccountsQueries Lambda: the account, its balance as of a version or instant, its events.

Owner only — staff included: another user's account is a 404 like a missing one.
``?min_version=N`` falls back to the event store when the Account View lags.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cairn.http import HttpService, not_found
from cairn.http.queries import (
    EventPage,
    VerificationResult,
    current_view,
    event_page,
    json_response,
    seen_elsewhere,
    state_as_of,
    verification,
)

service = HttpService("accounts-queries")
app = service.app

ACCOUNT_ID = re.compile(r"^account-[A-Za-z0-9-]{1,64}$")
AccountId = Annotated[str, Path(description="account id, `account-<uuid>`", max_length=100)]
Money = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["100.00"])]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # API.md: fields may be added, none removed


class AccountView(_Open):
    account_id: str
    owner_id: str
    currency: str
    balance: Money
    version: int
    updated_at: str


class AccountAsOf(_Open):
    account_id: str
    version: int
    balance: Money
    as_of: str | None


@cache
def _dynamodb() -> Any:
    from cairn.aws import client

    return client("dynamodb")


def _runtime() -> Any:
    from accounts.app import runtime

    return runtime()


def _stream(account_id: str) -> str:
    if not ACCOUNT_ID.match(account_id):
        raise not_found(f"{account_id} not found")
    return account_id


def _owns(owner_id: str | None) -> bool:
    return owner_id is not None and owner_id == service.principal.sub


@service.get(
    "/accounts/<id>",
    summary="The account and its balance (owner)",
    description="`min_version=N`: never older than N (answers from the event store if the view lags).",
    tags=["accounts"],
    problems={412: "min_version is beyond the account's latest version (body has current_version)"},
)
def get_account(
    id: AccountId, min_version: Annotated[int | None, Query(ge=1, le=10**12)] = None
) -> Response[AccountView]:
    from accounts.read_models import AccountViews, account_view_from_events

    stream_id = _stream(id)
    return current_view(
        id,
        lambda: AccountViews(_dynamodb(), os.environ["ACCOUNT_VIEW_TABLE"]).get(stream_id),
        lambda: account_view_from_events(_runtime().store.read(stream_id)),
        min_version=min_version,
        visible=lambda view: _owns(view.get("owner_id")),
    )


@service.get(
    "/accounts/<id>/history",
    summary="The balance as of a version or an instant (owner)",
    description="Exactly one of `version` or `at` (ISO 8601). 404 if the account did not exist then.",
    tags=["accounts"],
)
def get_account_history(
    id: AccountId,
    version: Annotated[int | None, Query(ge=1, le=10**12)] = None,
    at: Annotated[str | None, Query(max_length=40, description="ISO 8601 instant, e.g. 2026-11-26T08:30:00Z")] = None,
) -> Response[AccountAsOf]:
    from kernel import money_str

    reached, state, last_at = state_as_of(
        id, _runtime(), _stream(id), version=version, at=at, visible=lambda state: _owns(state.owner_id)
    )
    body = {
        "account_id": state.account_id,
        "version": reached,
        "balance": money_str(state.balance),
        "currency": state.currency,
        "as_of": last_at,
    }
    return json_response(body, version=reached)


@service.get("/accounts/<id>/events", summary="The account's events, oldest first (owner)", tags=["accounts"])
def get_account_events(
    id: AccountId,
    after: Annotated[int, Query(ge=0, le=10**12)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response[EventPage]:
    page = event_page(
        _runtime().store, _stream(id), after, limit, lambda first: _owns(getattr(first.data, "owner_id", None))
    )
    return json_response(page)


@service.get(
    "/accounts/<id>/verification",
    summary="Is the account's stored history intact? (owner or staff)",
    description="Recomputes the hash chain from version 1 and compares the head with the account view "
    "and the snapshot. A broken chain is still 200: the answer is the verification.",
    tags=["accounts"],
)
def get_account_verification(id: AccountId) -> Response[VerificationResult]:
    from accounts.read_models import AccountViews

    stream_id = _stream(id)
    return verification(
        id,
        _runtime().store,
        stream_id,
        owner_of_first=lambda first: getattr(first, "owner_id", None),
        visible=lambda owner: service.principal.is_staff or _owns(owner),
        elsewhere=lambda: seen_elsewhere(
            stream_id,
            lambda: AccountViews(_dynamodb(), os.environ["ACCOUNT_VIEW_TABLE"]).get(stream_id),
            "owner_id",
            _runtime(),
        ),
    )


handler = service.handler
