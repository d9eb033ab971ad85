"""Payment service: reacts to OrderCreated with a payment token, charges, drives the order."""

__all__: list[str] = []
