"""Rows of hand-written or precompiled SQL, converted as the ORM converts the rows it reads itself.

Used where a hot path runs fixed SQL instead of building an ORM query each time (studies.selectors,
studies.dicomweb.qido): the values must come out as the ORM would give them (SQLite's dates arrive as
text, for instance), whatever the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection

Converters = list[tuple[int, list, object]]  # (column index, converter functions, column expression)


def column_converters(expressions: Iterable) -> Converters:
    """The converters the ORM applies to each column (``SQLCompiler.get_converters``) on this connection."""
    out = []
    for i, expression in enumerate(expressions):
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            out.append((i, found, expression))
    return out


def converted(row: Sequence, converters: Converters) -> list:
    """One row's values, converted."""
    values = list(row)
    for i, functions, expression in converters:
        for convert in functions:
            values[i] = convert(values[i], expression, connection)
    return values
