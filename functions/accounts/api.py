"""AccountsCommands Lambda: POST /accounts, deposits and withdrawals (owner only, even for staff)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ConfigDict, Field

from accounts import domain
from cairn.http import CommandRequest, HttpService, IdempotencyKey, IfMatch, execute, not_found
from kernel import Currency, money_str

service = HttpService("accounts")
app = service.app

ACCOUNT_ID = re.compile(r"^account-[A-Za-z0-9-]{1,64}$")
AccountId = Annotated[str, Path(description="account id, `account-<uuid>`", max_length=100)]
MONEY_PATTERN = r"^-?\d+\.\d{2}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAccountBody(_Body):
    currency: Currency


class AmountBody(_Body):
    amount: domain.Amount


class AccountCommandResult(BaseModel):
    account_id: str
    version: int
    balance: Annotated[str, Field(pattern=MONEY_PATTERN, examples=["100.00"])]
    currency: str


def _answer(state: domain.AccountState, version: int) -> dict:
    return {
        "account_id": state.account_id,
        "version": version,
        "balance": money_str(state.balance),
        "currency": state.currency,
    }


def _runtime():
    from accounts.app import runtime

    return runtime()


def _money_command(route: str, account_id: str, command: object, body: AmountBody, if_match, key) -> Response:
    if not ACCOUNT_ID.match(account_id):
        raise not_found(f"{account_id} not found")
    owner = service.principal.sub
    return execute(
        service,
        _runtime(),
        account_id,
        command,
        CommandRequest(route, body.model_dump(mode="json"), {"id": account_id}, if_match, key),
        answer=_answer,
        authorize=lambda state: state.owner_id == owner,  # staff too: money is the owner's alone
    )


COMMAND_PROBLEMS = {
    409: "A business rule said no (type …/insufficient-funds)",
    412: "If-Match does not match the stream's version (body has current_version)",
}


@service.post("/accounts", status_code=201, summary="Open an account", tags=["accounts"])
def open_account(body: OpenAccountBody, idempotency_key: IdempotencyKey = None) -> Response[AccountCommandResult]:
    account_id = f"account-{uuid.uuid4()}"
    command = domain.OpenAccount(account_id=account_id, owner_id=service.principal.sub, currency=body.currency)
    return execute(
        service,
        _runtime(),
        account_id,
        command,
        CommandRequest("POST /accounts", body.model_dump(mode="json"), {}, None, idempotency_key),
        answer=_answer,
        status=201,
        headers=lambda answer: {"Location": f"/accounts/{answer['account_id']}"},
    )


@service.post(
    "/accounts/<id>/deposits",
    summary="Deposit money (owner)",
    tags=["accounts"],
    problems=COMMAND_PROBLEMS,
)
def deposit(
    id: AccountId, body: AmountBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[AccountCommandResult]:
    command = domain.Deposit(amount=body.amount)
    return _money_command("POST /accounts/{id}/deposits", id, command, body, if_match, idempotency_key)


@service.post(
    "/accounts/<id>/withdrawals",
    summary="Withdraw money (owner); the balance never goes below zero",
    tags=["accounts"],
    problems=COMMAND_PROBLEMS,
)
def withdraw(
    id: AccountId, body: AmountBody, if_match: IfMatch = None, idempotency_key: IdempotencyKey = None
) -> Response[AccountCommandResult]:
    command = domain.Withdraw(amount=body.amount)
    return _money_command("POST /accounts/{id}/withdrawals", id, command, body, if_match, idempotency_key)


handler = service.handler
