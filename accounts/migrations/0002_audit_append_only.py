"""Make the audit table append-only at the database level (PostgreSQL).

UPDATE and DELETE on ``accounts_auditevent`` raise, whoever asks. TRUNCATE is not guarded by a
trigger because the test runner empties tables with it between transactional tests; in
production the application's role is not granted TRUNCATE (see README, "Production"). SQLite
(the embedded default) has no such guard; the hash chain still detects tampering there.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION readroom_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'accounts_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION readroom_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS accounts_auditevent_no_update_delete ON accounts_auditevent;
DROP FUNCTION IF EXISTS readroom_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
