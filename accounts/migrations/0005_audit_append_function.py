"""Append an audit event in one database call (PostgreSQL): ``readroom_audit_append``.

``accounts.audit.audit_record`` used five round trips per event (BEGIN, the chain lock, the last
hash, INSERT, COMMIT), all while holding the global chain lock. This function does the same steps
inside the server: it takes the same transaction-scoped advisory lock, reads the last ``row_hash``
(a new snapshot per statement, so it sees the row committed by the previous lock holder), computes
SHA-256 over exactly the JSON payload ``AuditEvent.compute_hash`` hashes — the caller sends that
payload without its first element, the previous hash, which only the database knows under the
lock — and inserts the row. ``audit_verify_chain`` still recomputes every hash in Python, and the
append-only trigger of 0002 is untouched. SQLite keeps the Python path.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION readroom_audit_append(
    p_lock bigint, p_payload_tail text, p_created_at timestamptz, p_actor_id bigint, p_actor_email text,
    p_action text, p_object_type text, p_object_id text, p_organization_id bigint, p_ip_address inet,
    p_user_agent text, p_reason text, p_outcome text, p_extra jsonb)
RETURNS TABLE (event_id bigint, event_prev_hash text, event_row_hash text) AS $$
DECLARE
    v_prev text;
    v_hash text;
    v_id bigint;
BEGIN
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

BACKWARD = "DROP FUNCTION IF EXISTS readroom_audit_append(bigint, text, timestamptz, bigint, text, text, text, text, " \
           "bigint, inet, text, text, text, jsonb);"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_notification_public_id")]

    operations = [migrations.RunPython(forward, backward)]
