"""Access-matrix rows of the webhook routes, pages and API (filled in by the webhooks work)."""

ROWS: dict = {}
