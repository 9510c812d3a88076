"""``readroom_ledger_balanced`` plans its two look-ups at each call (``EXECUTE … USING``).

PL/pgSQL keeps a statement's plan for the life of the connection and, after five calls, may settle on a
generic one. Settled while the ledger was empty (a new database), the look-ups of a transaction and of its
postings became sequential scans, and stayed so as the ledger grew: in one connection, 4,000 ledger
transactions of two postings took 4.7 s, then 11.9, 19.0, 26.1 and 33.2 s for each next 4,000; a new
connection did the next 4,000 in 1.0 s (session 17, by hand). Planned at each call, they use the indexes as
soon as the tables have rows (tests/billing/test_ledger_plan.py). The function's checks are 0002's.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION readroom_ledger_balanced() RETURNS trigger AS $$
DECLARE
    tx_id bigint;
    tx_currency varchar(3);
    total numeric;
    legs integer;
    foreign_legs integer;
BEGIN
    IF TG_TABLE_NAME = 'billing_posting' THEN
        tx_id := NEW.transaction_id;
    ELSE
        tx_id := NEW.id;
    END IF;
    -- EXECUTE: planned now, with the tables' current size, never from a plan settled while they were empty.
    EXECUTE 'SELECT currency FROM billing_journaltransaction WHERE id = $1' INTO tx_currency USING tx_id;
    EXECUTE 'SELECT coalesce(sum(p.amount), 0), count(*),
                    count(*) FILTER (WHERE p.currency <> $2 OR a.currency <> $2)
               FROM billing_posting p JOIN billing_ledgeraccount a ON a.id = p.account_id
              WHERE p.transaction_id = $1'
        INTO total, legs, foreign_legs USING tx_id, tx_currency;
    IF legs < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % posting(s): at least two are needed', tx_id, legs
            USING ERRCODE = 'check_violation';
    END IF;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: its postings sum to %', tx_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF foreign_legs > 0 THEN
        RAISE EXCEPTION 'ledger transaction % mixes currencies: every posting and account must be in %',
            tx_id, tx_currency USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        previous = import_module("billing.migrations.0002_ledger_balanced_and_immutable").FORWARD
        start = previous.index("CREATE OR REPLACE FUNCTION readroom_ledger_balanced()")
        end = previous.index("$$ LANGUAGE plpgsql;", start) + len("$$ LANGUAGE plpgsql;")
        schema_editor.execute(previous[start:end], params=None)  # 0002's function alone, not its triggers


class Migration(migrations.Migration):
    dependencies = [("billing", "0009_payment_failed")]

    operations = [migrations.RunPython(forward, backward)]
