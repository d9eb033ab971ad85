"""Notification service: one notification per order milestone of a user's orders, never twice."""

__all__: list[str] = []
