"""Domain errors carry the HTTP-neutral facts a handler needs: a stable code and a kind."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule said no. ``code`` becomes the problem type slug; ``status`` the HTTP status."""

    code = "business-rule-violated"
    status = 409
    title = "Business rule violated"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class InvalidTransitionError(DomainError):
    code = "invalid-transition"
    title = "Invalid state transition"


class NotFoundError(DomainError):
    """The aggregate does not exist (commands on a stream with no events)."""

    code = "not-found"
    status = 404
    title = "Not found"


class AlreadyExistsError(DomainError):
    code = "already-exists"
    title = "Already exists"
