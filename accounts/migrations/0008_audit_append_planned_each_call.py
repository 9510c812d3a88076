"""``readroom_audit_append`` plans its look-up of the chain's last hash at each call (``EXECUTE``).

PL/pgSQL keeps the plan of a statement without parameters for the life of the connection. Planned
while the audit table was still empty (a new database, the first append of a connection that started
then), the look-up became a sequential scan and a sort, and stayed one as the table grew: each append
read the whole table (measured: 0.07 ms an append at first, 2 ms after 20,000 events, in one
connection of the marketplace's simulated week). Planned at each call, it is an index scan backwards
on the primary key as soon as the table has rows (tests/accounts/test_audit_plan.py). The body is
0006's otherwise.
"""

from django.db import migrations

FORWARD = """
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
    -- EXECUTE: planned now, with the table's current size, never from a plan made while it was empty.
    EXECUTE 'SELECT a.row_hash FROM accounts_auditevent a ORDER BY a.id DESC LIMIT 1' INTO v_prev;
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


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from importlib import import_module

        previous = import_module("accounts.migrations.0006_audit_append_reads_async")
        schema_editor.execute(previous.FORWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_patient_profile")]

    operations = [migrations.RunPython(forward, backward)]
