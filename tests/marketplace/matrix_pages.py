"""Access-matrix rows of the marketplace pages (filled in by the pages work)."""

ROWS: dict = {}
