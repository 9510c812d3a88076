"""The matching pool's version counter (PostgreSQL): what tells a process its snapshot of a jurisdiction's pool
is still the database's (``marketplace.services.matching_pool``).

Every table the snapshot reads gets two triggers:
- a statement-level one that marks the writing transaction (``readroom.pool_dirty``, local to it): until it
  ends, that transaction's own matches read the database, since its writes are not yet in the counter;
- a deferred constraint trigger that bumps the counter once per transaction, at its commit. Deferred, so that
  the counter's row is locked only while the transaction commits: taken earlier it would be held for the whole
  transaction and would order writers against other locks (the audit chain's) both ways round.
TRUNCATE (the test runner's flush) bumps it at once. The counter's table is not a Django model, so the
runner never empties it and the value only grows. SQLite (the embedded default) has no counter: matching reads
the database every time there.
"""

from django.db import migrations

# Each table the pool reads, and the columns whose change matters (None: any). A user's last login and an
# organization's name do not change who may read.
WATCHED = {
    "accounts_radiologistprofile": None,
    "accounts_user": "is_active, full_name, email",
    "accounts_license": None,
    "accounts_malpracticeinsurance": None,
    "accounts_mqsaqualification": None,
    "accounts_membership": None,
    "accounts_organization": "kind",
    "marketplace_readinghours": None,
    "marketplace_minimumrate": None,
    "marketplace_readerquality": None,
    "marketplace_timeoff": None,
    "marketplace_extrashift": None,
}

FUNCTIONS = """
CREATE TABLE readroom_pool_version (value bigint NOT NULL);
INSERT INTO readroom_pool_version VALUES (1);

CREATE OR REPLACE FUNCTION readroom_pool_touched() RETURNS trigger AS $$
BEGIN
    PERFORM set_config('readroom.pool_dirty', '1', true);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION readroom_pool_bump() RETURNS trigger AS $$
BEGIN
    IF current_setting('readroom.pool_bumped', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('readroom.pool_bumped', '1', true);
        UPDATE readroom_pool_version SET value = value + 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION readroom_pool_truncated() RETURNS trigger AS $$
BEGIN
    UPDATE readroom_pool_version SET value = value + 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def _triggers(table: str, columns: str | None) -> str:
    events = "INSERT OR DELETE OR UPDATE" + (f" OF {columns}" if columns else "")
    return f"""
CREATE TRIGGER readroom_pool_touched AFTER {events} ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION readroom_pool_touched();
CREATE CONSTRAINT TRIGGER readroom_pool_bump AFTER {events} ON {table}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION readroom_pool_bump();
CREATE TRIGGER readroom_pool_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION readroom_pool_truncated();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS + "".join(_triggers(t, c) for t, c in WATCHED.items()), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        drops = "".join(f"DROP TRIGGER IF EXISTS {name} ON {table};\n" for table in WATCHED
                        for name in ("readroom_pool_touched", "readroom_pool_bump", "readroom_pool_truncated"))
        schema_editor.execute(drops + """
DROP FUNCTION IF EXISTS readroom_pool_touched();
DROP FUNCTION IF EXISTS readroom_pool_bump();
DROP FUNCTION IF EXISTS readroom_pool_truncated();
DROP TABLE IF EXISTS readroom_pool_version;
""", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0007_overflow_template"),
        ("accounts", "0007_patient_profile"),
    ]

    operations = [migrations.RunPython(forward, backward)]
