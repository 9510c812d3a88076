"""Access-matrix rows of the marketplace API (filled in by the API work)."""

ROWS: dict = {}
