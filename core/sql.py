"""SQL on the hot paths: rows of hand-written or precompiled SQL converted as the ORM converts the rows it
reads itself, and independent statements sent to the database together.

Used where a hot path runs fixed SQL instead of building an ORM query each time (studies.selectors,
studies.dicomweb.qido): the values must come out as the ORM would give them (SQLite's dates arrive as
text, for instance), whatever the backend.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
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


def quoted(name: str) -> str:
    """A table or column name quoted for hand-written SQL, as the backend quotes it."""
    return connection.ops.quote_name(name)


def insert_rows(objects: list, *, unique: tuple[str, ...] | None = None) -> list:
    """One multi-row INSERT of new rows of one model (their primary keys set from RETURNING); returns the
    objects inserted. ``unique``: the columns of a unique constraint; a row that would break it is skipped
    (ON CONFLICT DO NOTHING) and left out of the result.

    Written here rather than with ``bulk_create``: Django compiles and adapts every value of every row
    (and on PostgreSQL escapes each into an UNNEST array literal), which cost more CPU than the rest of
    the indexing (studies.ingest_rows); and ``bulk_create`` sets no primary key when it ignores conflicts.
    The statement's text is built once per model, size and vendor (the HL7 listener inserts one row at a time)."""
    if not objects:
        return []
    model = type(objects[0])
    db = connections[DEFAULT_DB_ALIAS]  # the thread's own wrapper, not the proxy, in the loop below
    if not db.features.can_return_rows_from_bulk_insert:
        if unique is not None:
            return []  # the caller creates each row on its own
        model.objects.bulk_create(objects)
        return objects
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    unique_fields = [model._meta.get_field(c) for c in unique or ()]
    size = max(1, db.ops.bulk_batch_size(fields, objects) or len(objects))
    inserted = []
    with db.cursor() as cursor:
        for start in range(0, len(objects), size):
            chunk = objects[start:start + size]
            params = []
            for obj in chunk:
                params += [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]
            cursor.execute(_insert_sql(db.vendor, model, len(chunk), unique), params)
            returned = cursor.fetchall()
            if unique:
                by_key = {tuple(getattr(obj, f.attname) for f in unique_fields): obj for obj in chunk}
                chunk = [by_key[tuple(row[1:])] for row in returned]
            for obj, row in zip(chunk, returned, strict=True):
                obj.pk = row[0]
                obj._state.adding = False
                obj._state.db = db.alias
                inserted.append(obj)
    return inserted


@functools.lru_cache(maxsize=64)
def _insert_sql(vendor: str, model, rows: int, unique: tuple[str, ...] | None) -> str:
    """``insert_rows``' statement for ``rows`` rows (``vendor`` keys the cache: quoting is the backend's)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(quoted(f.column) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    conflict = f" ON CONFLICT ({', '.join(quoted(c) for c in unique)}) DO NOTHING" if unique else ""
    unique_columns = [model._meta.get_field(c).column for c in unique or ()]
    returning = ", ".join(quoted(c) for c in (model._meta.pk.column, *unique_columns))
    return (f"INSERT INTO {quoted(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 - values bound
            f"{', '.join([row_sql] * rows)}{conflict} RETURNING {returning}")
