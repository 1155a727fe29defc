"""Settlement for finance: the JSON API and the pages (dashboard, statements)."""
