"""SQL on the hot paths: rows of hand-written or precompiled SQL converted as the ORM converts the rows it
reads itself, and independent statements sent to the database together.

Used where a hot path runs fixed SQL instead of building an ORM query each time (studies.selectors,
studies.dicomweb.qido): the values must come out as the ORM would give them (SQLite's dates arrive as
text, for instance), whatever the backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

from django.db import DatabaseError, connection
from psycopg import pq

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


# readroom_require (core migration 0001) fails its statement with this SQLSTATE when its condition is not true.
REQUIREMENT_FAILED = "RR001"


class RequirementFailed(Exception):
    """A ``require_sql`` statement found its condition not true: nothing sent in its round trip took effect."""


def require_sql(condition: str) -> str:
    """A statement that fails, with the message given as the last parameter, unless ``condition`` (SQL) is
    true; sent first in ``one_round_trip``, it guards the statements sent after it."""
    return f"SELECT readroom_require({condition}, %s)"


@contextlib.contextmanager
def one_round_trip() -> Iterator[None]:
    """Send the statements executed inside to PostgreSQL together and wait once for all their results, when
    the block ends (psycopg's pipeline mode): independent statements — a DICOMweb answer's rows and its
    audit record — cost one round trip instead of one each. Read results after the block; reading one
    inside waits for it there. Outside a transaction the statements commit together at the end of the
    block, and an error in any of them is raised there, before anything is read. Elsewhere (SQLite, or
    inside a transaction) the statements simply run one after another."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    connection.close_if_health_check_failed()  # Django's check must not run inside the pipeline
    connection.ensure_connection()
    try:
        with connection.wrap_database_errors, connection.connection.pipeline():
            yield
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) != REQUIREMENT_FAILED:
            raise
        # The failure ended the pipeline's implicit transaction: the connection is idle and sound, so
        # Django need not test it (a round trip) at the end of the request.
        connection.errors_occurred = connection.connection.pgconn.transaction_status != pq.TransactionStatus.IDLE
        raise RequirementFailed(error.__cause__.diag.message_primary) from error


def one_round_trip_available() -> bool:
    """Whether ``one_round_trip`` sends its statements together here: a ``require_sql`` guard only makes
    sense there (PostgreSQL, outside a transaction)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def in_round_trip() -> bool:
    """Whether statements are being gathered by ``one_round_trip`` (their results are not there yet)."""
    raw = connection.connection
    return connection.vendor == "postgresql" and raw is not None and raw.pgconn.pipeline_status != pq.PipelineStatus.OFF


@contextlib.contextmanager
def sent_together() -> Iterator[None]:
    """Inside a transaction, send the statements executed in the block to PostgreSQL together (psycopg's
    pipeline mode) and wait once, at its end: for statements whose results are not read, such as a batch's
    counter updates (one round trip instead of one each). An error in any of them is raised at the end of the
    block, and the transaction must then be rolled back as a whole. Elsewhere (SQLite, or outside a
    transaction) the statements simply run one after another."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
