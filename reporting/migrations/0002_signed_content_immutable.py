"""Signed content is immutable at the database level (PostgreSQL), as the audit log is.

UPDATE and DELETE are refused on a final report row (its text, fields, signer, time and content
hash) and on every addendum, whoever asks. A draft or preliminary report stays editable. SQLite
(the embedded default) has no such guard; the application refuses the same edits on both.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION readroom_signed_report_frozen() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is signed and cannot change: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER reporting_report_final_frozen
    BEFORE UPDATE OR DELETE ON reporting_report
    FOR EACH ROW WHEN (OLD.status = 'final')
    EXECUTE FUNCTION readroom_signed_report_frozen();

CREATE TRIGGER reporting_addendum_frozen
    BEFORE UPDATE OR DELETE ON reporting_addendum
    FOR EACH ROW EXECUTE FUNCTION readroom_signed_report_frozen();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS reporting_report_final_frozen ON reporting_report;
DROP TRIGGER IF EXISTS reporting_addendum_frozen ON reporting_addendum;
DROP FUNCTION IF EXISTS readroom_signed_report_frozen();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
