"""Reading the plans PostgreSQL uses inside our PL/pgSQL functions (tests of accounts 0008, billing 0010)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from django.db import connection


@contextlib.contextmanager
def scratch_cursor(notices: list[str]) -> Iterator[psycopg.Cursor]:
    """A cursor on a connection of its own, in a transaction rolled back at the end; the server's notices
    (auto_explain's plans, once ``explain_from_now`` ran) are appended to ``notices``."""
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as raw:
        raw.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        with raw.transaction(force_rollback=True), raw.cursor() as cursor:
            yield cursor


def explain_from_now(cursor: psycopg.Cursor, notices: list[str]) -> None:
    """Every statement from now on, nested ones included, sends its plan as a notice."""
    cursor.execute("LOAD 'auto_explain'")
    cursor.execute("SET LOCAL auto_explain.log_min_duration = 0")
    cursor.execute("SET LOCAL auto_explain.log_nested_statements = on")
    cursor.execute("SET LOCAL auto_explain.log_level = notice")
    notices.clear()
