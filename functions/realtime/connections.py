"""Who is connected, who follows which stream, and how far each stream has been pushed.

The port (``Connections``); ``realtime.dynamodb`` is the adapter on the connections table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CONNECTION_LIFETIME", "Connection", "Connections", "PUSHED_TTL"]

CONNECTION_LIFETIME = 2 * 3600 + 300  # API Gateway closes a connection after 2 h; TTL a little later
PUSHED_TTL = 24 * 3600  # a stream's push mark outlives any record a stream consumer could still see


@dataclass(frozen=True, slots=True)
class Connection:
    connection_id: str
    user: str
    staff: bool
    connected_at: int


class Connections(ABC):
    @abstractmethod
    def add(self, connection: Connection) -> None:
        """Record a new connection (``$connect``)."""

    @abstractmethod
    def get(self, connection_id: str) -> Connection | None: ...

    @abstractmethod
    def remove(self, connection_id: str) -> None:
        """Forget a connection and its subscriptions (``$disconnect``, or gone on push)."""

    @abstractmethod
    def subscribe(self, connection: Connection, stream_id: str) -> None:
        """The connection (staff) also follows ``stream_id``."""

    @abstractmethod
    def targets(self, owner: str | None, stream_id: str) -> set[str]:
        """Connection ids that get updates of ``stream_id``: the owner's and its subscribers."""

    @abstractmethod
    def claim(self, stream_id: str, version: int) -> bool:
        """Advance the stream's push mark to ``version``; False if it is already there or beyond.

        Every pusher claims before pushing, so a duplicate, retried or out-of-order record never
        sends a version at or below one already sent.
        """

    def remove_all(self, connection_ids: Iterable[str]) -> None:
        for connection_id in connection_ids:
            self.remove(connection_id)
