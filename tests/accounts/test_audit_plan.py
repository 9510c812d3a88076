"""``readroom_audit_append`` finds the chain's last hash by an index scan however empty the table was when
the connection first appended (accounts migration 0008). A plan kept from that first call read the whole
table at every append: 2 ms an append after 20,000 events, growing without end in a long-lived connection.

The test gives its own connection an empty, analyzed table of the same shape (a temporary table, which
PostgreSQL looks up before the real one) so that the first append is planned on an empty table, grows it to 3,000
rows, and reads the plan of the next append's look-up from auto_explain (sent to the client as a notice)."""

from __future__ import annotations

import pytest

from tests.plans import explain_from_now, scratch_cursor

LOOKUP = "FROM accounts_auditevent a ORDER BY a.id DESC LIMIT 1"
APPEND = ("SELECT readroom_audit_append(1, '\"x\"]', now(), NULL, '', 'test.plan', '', '', NULL, NULL, '', '', "
          "'success', '{}'::jsonb)")


@pytest.mark.postgres
def test_the_last_hash_is_found_by_an_index_scan_after_a_first_append_on_an_empty_table(postgres_only):
    notices: list[str] = []
    with scratch_cursor(notices) as cursor:
        cursor.execute("CREATE TEMPORARY TABLE accounts_auditevent (LIKE public.accounts_auditevent "
                       "INCLUDING ALL) ON COMMIT DROP")
        cursor.execute("ANALYZE accounts_auditevent")  # as autovacuum does a new database's empty table
        cursor.execute(APPEND)  # planned here, on an empty table
        cursor.execute(f"SELECT count(*) FROM (SELECT ({APPEND[7:]}) FROM generate_series(1, 3000)) s")  # noqa: S608 - constants
        explain_from_now(cursor, notices)
        cursor.execute(APPEND)
        cursor.execute("SELECT count(*), count(DISTINCT row_hash) FROM accounts_auditevent")
        assert cursor.fetchone() == (3002, 3002)
    plans = [n for n in notices if LOOKUP in n]
    assert plans, notices
    assert "Index Scan Backward using" in plans[-1], plans[-1]
    assert "Seq Scan" not in plans[-1], plans[-1]
