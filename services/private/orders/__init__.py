"""OrderService: orders placed exactly once per idempotency key, refunds never above capture."""
