"""GET /users/me/notifications: the caller's notifications, newest first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from cairn.http.problems import ProblemError
from cairn.http.service import HttpService

service = HttpService("notifications")


class NotificationView(BaseModel):
    notification_id: str
    order_id: str
    kind: str
    created_at: str
    subject: str


class NotificationsPage(BaseModel):
    notifications: list[NotificationView]
    next_cursor: str | None = None


@service.get(
    "/users/me/notifications",
    summary="The caller's order notifications, newest first (one per milestone, never twice)",
    tags=["notifications"],
)
def list_notifications(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response[NotificationsPage]:
    from notifications.app import store
    from notifications.store import InvalidCursorError

    try:
        items, next_cursor = store().list_for_user(service.principal.sub, limit=limit, cursor=cursor)
    except InvalidCursorError as exc:
        raise ProblemError(422, "validation-failed", str(exc), title="Validation failed",
                           errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}]) from exc
    page = NotificationsPage(notifications=[NotificationView(**i.to_dict()) for i in items], next_cursor=next_cursor)
    return Response(status_code=200, content_type="application/json", body=page)


handler = service.handler
