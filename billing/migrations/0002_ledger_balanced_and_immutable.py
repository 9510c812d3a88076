"""The ledger's rules, held by PostgreSQL (reliability.md, "Money").

- Every journal transaction balances: its postings sum to zero, in its own currency, with at least
  two postings. Checked by deferred constraint triggers at commit, so the postings of one
  transaction can be inserted one by one inside it; an unbalanced transaction fails the commit.
- Postings and transactions are immutable: UPDATE and DELETE are refused (a correction is a
  reversing transaction). TRUNCATE is not guarded (the test runner uses it; production's role is
  not granted it, as for the audit log).
SQLite (the embedded default) has no such guard; ``billing.services.ledger`` checks the same rules.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION readroom_ledger_frozen() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_posting_frozen BEFORE UPDATE OR DELETE ON billing_posting
    FOR EACH ROW EXECUTE FUNCTION readroom_ledger_frozen();
CREATE TRIGGER billing_journaltransaction_frozen BEFORE UPDATE OR DELETE ON billing_journaltransaction
    FOR EACH ROW EXECUTE FUNCTION readroom_ledger_frozen();

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
    SELECT currency INTO tx_currency FROM billing_journaltransaction WHERE id = tx_id;
    SELECT coalesce(sum(p.amount), 0), count(*),
           count(*) FILTER (WHERE p.currency <> tx_currency OR a.currency <> tx_currency)
        INTO total, legs, foreign_legs
        FROM billing_posting p JOIN billing_ledgeraccount a ON a.id = p.account_id
        WHERE p.transaction_id = tx_id;
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

CREATE CONSTRAINT TRIGGER billing_posting_balanced AFTER INSERT ON billing_posting
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION readroom_ledger_balanced();
CREATE CONSTRAINT TRIGGER billing_journaltransaction_balanced AFTER INSERT ON billing_journaltransaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION readroom_ledger_balanced();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS billing_posting_balanced ON billing_posting;
DROP TRIGGER IF EXISTS billing_journaltransaction_balanced ON billing_journaltransaction;
DROP FUNCTION IF EXISTS readroom_ledger_balanced();
DROP TRIGGER IF EXISTS billing_posting_frozen ON billing_posting;
DROP TRIGGER IF EXISTS billing_journaltransaction_frozen ON billing_journaltransaction;
DROP FUNCTION IF EXISTS readroom_ledger_frozen();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
