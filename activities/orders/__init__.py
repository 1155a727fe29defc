"""The order book: canonical ``order.*`` and ``refund.*`` events kept as rows (orders, refunds)."""
