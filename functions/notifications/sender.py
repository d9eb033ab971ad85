"""Email delivery behind a port: SES when switched on (``NOTIFICATIONS_SEND_EMAIL=true``).

Integration events carry no plaintext address (it would reach every consumer and the bus
archive): an order's own ``email`` travels sealed (issue 12) and the sender opens it with the key
service; without one (or once the customer's data is erased) the sender resolves the customer's
account address from the user pool by the JWT subject.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from notifications.domain import Notification


class EmailSender(ABC):
    @abstractmethod
    def send(self, n: Notification) -> bool:
        """Send ``n`` to its user; False if the user has no known address (nothing to retry)."""


class RecipientDirectory(ABC):
    @abstractmethod
    def email_of(self, user_id: str) -> str | None:
        """The user's email address, or None."""


class CognitoDirectory(RecipientDirectory):
    """Looks a user up by ``sub`` in the Cognito user pool (ListUsers filter)."""

    def __init__(self, client: Any, user_pool_id: str):
        self.client = client
        self.user_pool_id = user_pool_id

    def email_of(self, user_id: str) -> str | None:
        if '"' in user_id or "\\" in user_id:
            return None  # not a Cognito sub; never build a filter from it
        users = self.client.list_users(
            UserPoolId=self.user_pool_id, Filter=f'sub = "{user_id}"', Limit=1, AttributesToGet=["email"]
        ).get("Users", [])
        for user in users:
            for attribute in user.get("Attributes", []):
                if attribute["Name"] == "email":
                    return attribute["Value"]
        return None


class SesEmailSender(EmailSender):
    def __init__(
        self,
        client: Any,
        from_address: str,
        directory: RecipientDirectory,
        opener: Callable[[Any, str], str | None] | None = None,
    ):
        self.client = client
        self.from_address = from_address
        self.directory = directory
        self.opener = opener  # (sealed email, order id) -> the address, or None if erased

    def send(self, n: Notification) -> bool:
        to = None
        if n.sealed_email is not None and self.opener is not None:
            to = self.opener(n.sealed_email, n.order_id)
        to = to or self.directory.email_of(n.user_id)
        if not to:
            return False
        self.client.send_email(
            Source=self.from_address,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": n.subject}, "Body": {"Text": {"Data": n.body}}},
        )
        return True
