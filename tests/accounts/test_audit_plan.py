"""``readroom_audit_append`` finds the chain's last hash by an index scan however empty the table was when
the connection first appended (accounts migration 0008). A plan kept from that first call read the whole
table at every append: 2 ms an append after 20,000 events, growing without end in a long-lived connection.

The test gives its own connection an empty, analyzed table of the same shape (a temporary table, which
PostgreSQL looks up before the real one) so that the first append is planned on an empty table, grows it to 3,000
rows, and reads the plan of the next append's look-up from auto_explain (sent to the client as a notice)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

LOOKUP = "FROM accounts_auditevent a ORDER BY a.id DESC LIMIT 1"
APPEND = ("SELECT readroom_audit_append(1, '\"x\"]', now(), NULL, '', 'test.plan', '', '', NULL, NULL, '', '', "
          "'success', '{}'::jsonb)")


@pytest.mark.postgres
def test_the_last_hash_is_found_by_an_index_scan_after_a_first_append_on_an_empty_table(postgres_only):
    params = connection.get_connection_params()
    notices: list[str] = []
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as raw:
        raw.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
        with raw.transaction(force_rollback=True), raw.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE accounts_auditevent (LIKE public.accounts_auditevent "
                           "INCLUDING ALL) ON COMMIT DROP")
            cursor.execute("ANALYZE accounts_auditevent")  # as autovacuum does a new database's empty table
            cursor.execute(APPEND)  # planned here, on an empty table
            cursor.execute(f"SELECT count(*) FROM (SELECT ({APPEND[7:]}) FROM generate_series(1, 3000)) s")  # noqa: S608 - constants
            cursor.execute("LOAD 'auto_explain'")
            cursor.execute("SET LOCAL auto_explain.log_min_duration = 0")
            cursor.execute("SET LOCAL auto_explain.log_nested_statements = on")
            cursor.execute("SET LOCAL auto_explain.log_level = notice")
            notices.clear()
            cursor.execute(APPEND)
            cursor.execute("SELECT count(*), count(DISTINCT row_hash) FROM accounts_auditevent")
            assert cursor.fetchone() == (3002, 3002)
    plans = [n for n in notices if LOOKUP in n]
    assert plans, notices
    assert "Index Scan Backward using" in plans[-1], plans[-1]
    assert "Seq Scan" not in plans[-1], plans[-1]
