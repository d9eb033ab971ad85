"""Inventory service: reserves stock on OrderCreated, releases it on OrderCancelled / PaymentFailed."""

__all__: list[str] = []
