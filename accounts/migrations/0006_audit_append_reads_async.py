"""``readroom_audit_append`` gains ``p_synchronous`` (default true): false commits the event's transaction
without waiting for its WAL flush (``synchronous_commit`` off for that transaction only).

Used for records of reads of patient data (``audit_record(phi_read=True)``, docs/decisions/0007): the
record is written, chained and committed before the data leaves, as before; only its durability against
a crash of the database server within the WAL writer's delay is given up, and with it the flush that the
chain's lock was held across. Every other event still waits for its flush. The function's body is 0005's
otherwise.
"""

from django.db import migrations

FORWARD = """
DROP FUNCTION IF EXISTS readroom_audit_append(bigint, text, timestamptz, bigint, text, text, text, text,
                                              bigint, inet, text, text, text, jsonb);
CREATE OR REPLACE FUNCTION readroom_audit_append(
    p_lock bigint, p_payload_tail text, p_created_at timestamptz, p_actor_id bigint, p_actor_email text,
    p_action text, p_object_type text, p_object_id text, p_organization_id bigint, p_ip_address inet,
    p_user_agent text, p_reason text, p_outcome text, p_extra jsonb, p_synchronous boolean DEFAULT true)
RETURNS TABLE (event_id bigint, event_prev_hash text, event_row_hash text) AS $$
DECLARE
    v_prev text;
    v_hash text;
    v_id bigint;
BEGIN
    IF NOT p_synchronous THEN
        PERFORM set_config('synchronous_commit', 'off', true);  -- this transaction only
    END IF;
    PERFORM pg_advisory_xact_lock(p_lock);
    SELECT a.row_hash INTO v_prev FROM accounts_auditevent a ORDER BY a.id DESC LIMIT 1;
    v_prev := coalesce(v_prev, repeat('0', 64));
    v_hash := encode(sha256(convert_to('["' || v_prev || '",' || p_payload_tail, 'UTF8')), 'hex');
    INSERT INTO accounts_auditevent (created_at, actor_id, actor_email, action, object_type, object_id,
                                     organization_id, ip_address, user_agent, reason, outcome, extra,
                                     prev_hash, row_hash)
    VALUES (p_created_at, p_actor_id, p_actor_email, p_action, p_object_type, p_object_id, p_organization_id,
            p_ip_address, p_user_agent, p_reason, p_outcome, p_extra, v_prev, v_hash)
    RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_prev, v_hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS readroom_audit_append(bigint, text, timestamptz, bigint, text, text, text, text,
                                              bigint, inet, text, text, text, jsonb, boolean);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)
        # 0005's function again
        from importlib import import_module

        previous = import_module("accounts.migrations.0005_audit_append_function")
        schema_editor.execute(previous.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_audit_append_function")]

    operations = [migrations.RunPython(forward, backward)]
