"""``readroom_require(condition, message)`` (PostgreSQL): fails its statement with SQLSTATE RR001 unless the
condition is true.

Sent first in a pipeline of statements (``core.sql.require_sql`` inside ``core.sql.one_round_trip``), it
makes the database check a precondition in the same round trip as the work it guards: when it fails, the
implicit transaction is aborted and the statements after it are skipped. SQLite has no such function and
never receives such a statement.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION readroom_require(p_condition boolean, p_message text) RETURNS boolean AS $$
BEGIN
    IF p_condition IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'RR001', MESSAGE = p_message;
    END IF;
    RETURN true;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

BACKWARD = "DROP FUNCTION IF EXISTS readroom_require(boolean, text);"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(forward, backward)]
