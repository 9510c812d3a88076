"""The ledger's balance check (``readroom_ledger_balanced``, billing migration 0010) finds a transaction's
postings by index however empty the ledger was when the connection first checked one. A plan settled on an
empty ledger read every posting at every check: 33 s for the fifth 4,000 transactions of one connection
against 4.7 s for the first (and 1.0 s in a new connection).

The test gives its own connection empty, analyzed tables of the same shape (temporary tables, which
PostgreSQL looks up before the real ones, with the real tables' check triggers added), checks a few
transactions there, grows them to 2,000 transactions, and reads the next check's plans from auto_explain."""

from __future__ import annotations

import pytest

from tests.plans import explain_from_now, scratch_cursor

TABLES = ("billing_ledgeraccount", "billing_journaltransaction", "billing_posting")
TRANSACTION = ("INSERT INTO billing_journaltransaction (natural_key, kind, currency, reference, memo, reason, "
               "created_at, details) VALUES ('k' || %s, 'read', 'USD', '', '', '', now(), '{}') RETURNING id")


def post_one(cursor, n: int, accounts: tuple[int, int]) -> None:
    cursor.execute(TRANSACTION, [n])
    [tx] = cursor.fetchone()
    cursor.execute("INSERT INTO billing_posting (amount, currency, account_id, transaction_id) "
                   "VALUES (100, 'USD', %s, %s), (-100, 'USD', %s, %s)", [accounts[0], tx, accounts[1], tx])
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred check runs now, in this transaction
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.mark.postgres
def test_the_balance_check_finds_postings_by_index_after_first_checks_on_an_empty_ledger(postgres_only):
    notices: list[str] = []
    with scratch_cursor(notices) as cursor:
        for table in TABLES:
            cursor.execute(f"CREATE TEMPORARY TABLE {table} (LIKE public.{table} INCLUDING ALL) ON COMMIT DROP")
        for table in ("billing_journaltransaction", "billing_posting"):
            cursor.execute(f"CREATE CONSTRAINT TRIGGER {table}_balanced AFTER INSERT ON pg_temp.{table} "
                           "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION readroom_ledger_balanced()")
        cursor.execute("INSERT INTO billing_ledgeraccount (purpose, currency) VALUES ('a', 'USD'), ('b', 'USD') "
                       "RETURNING id")
        accounts = tuple(row[0] for row in cursor.fetchall())
        cursor.execute("ANALYZE billing_ledgeraccount; ANALYZE billing_journaltransaction; ANALYZE billing_posting")
        for n in range(8):  # checked on an empty ledger, more than the five calls a plan settles after
            post_one(cursor, n, accounts)
        for n in range(8, 2000):
            post_one(cursor, n, accounts)
        explain_from_now(cursor, notices)
        post_one(cursor, 2000, accounts)
        cursor.execute("SELECT count(*) FROM billing_posting")
        assert cursor.fetchone() == (4002,)
    postings = [n for n in notices if "FROM billing_posting p JOIN billing_ledgeraccount" in n]
    assert postings, notices
    assert all("Seq Scan on billing_posting" not in plan for plan in postings), postings[-1]
    transactions = [n for n in notices if "FROM billing_journaltransaction WHERE id" in n]
    assert transactions, notices
    assert all("Seq Scan" not in plan for plan in transactions), transactions[-1]
