"""The audit log: written through one service, hash-chained, append-only on PostgreSQL."""

import pytest
from django.db import DatabaseError, connection, transaction

from accounts import audit
from accounts.audit import GENESIS_HASH, audit_record, audit_verify_chain
from accounts.models import AuditEvent


def _three_events(cast):
    return [
        audit_record(
            action="study.viewed",
            actor=cast.center_admin,
            organization=cast.center,
            object_type="studies.study",
            object_id="1.2.3",
            reason="read",
        ),
        audit_record(action="auth.login", actor=cast.technologist),
        audit_record(action="auth.login_failed", outcome=AuditEvent.Outcome.DENIED, extra={"email": "x@y.z"}),
    ]


def test_events_carry_who_what_where_and_chain_to_the_previous_one(cast, rf):
    request = rf.get("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="pytest-agent")
    first = audit_record(
        action="study.viewed",
        actor=cast.center_admin,
        request=request,
        obj=cast.center,
        organization=cast.center,
        reason="QA review",
    )
    second = audit_record(action="auth.logout", actor=cast.center_admin)
    first.refresh_from_db()
    assert first.actor_email == cast.center_admin.email
    assert first.ip_address == "203.0.113.9"
    assert first.user_agent == "pytest-agent"
    assert first.object_type == "accounts.organization"
    assert first.object_id == str(cast.center.public_id)
    assert first.reason == "QA review"
    assert first.created_at.tzinfo is not None
    assert second.prev_hash == first.row_hash
    assert AuditEvent.objects.order_by("id").first().prev_hash == GENESIS_HASH
    assert audit_verify_chain() == []


def _as_table_owner_bypassing_the_trigger(statement: str, params: list) -> None:
    """Tamper the way only a database owner could (on PostgreSQL: with the trigger disabled)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditevent DISABLE TRIGGER accounts_auditevent_no_update_delete")
        cursor.execute(statement, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditevent ENABLE TRIGGER accounts_auditevent_no_update_delete")


def test_chain_verification_finds_a_row_altered_behind_the_applications_back(cast):
    events = _three_events(cast)
    assert audit_verify_chain() == []
    _as_table_owner_bypassing_the_trigger(
        "UPDATE accounts_auditevent SET reason = %s WHERE id = %s", ["nothing to see", events[1].pk]
    )
    assert audit_verify_chain() == [events[1].pk]


def test_chain_verification_finds_a_deleted_row(cast):
    events = _three_events(cast)
    _as_table_owner_bypassing_the_trigger("DELETE FROM accounts_auditevent WHERE id = %s", [events[1].pk])
    assert audit_verify_chain() == [events[2].pk]


@pytest.mark.postgres
def test_update_on_the_audit_table_fails_on_postgresql(postgres_only, cast):
    event = _three_events(cast)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET action = 'x'")
    event.refresh_from_db()
    assert event.reason == "read"


@pytest.mark.postgres
def test_delete_on_the_audit_table_fails_on_postgresql(postgres_only, cast):
    events = _three_events(cast)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[0].pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent")
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in events]).count() == 3
    assert audit_verify_chain() == []


def test_deleting_a_user_keeps_their_audit_rows(cast):
    event = audit_record(action="auth.login", actor=cast.patient)
    # No foreign-key cascade reaches the append-only table (on PostgreSQL it would be refused).
    cast.patient.delete()
    assert AuditEvent.objects.filter(pk=event.pk, actor_email=cast.patient.email).exists()


def test_appends_hash_exactly_like_the_model_whatever_the_values(cast, rf):
    """On PostgreSQL the chain is computed inside the database (one call): same hashes as Python's."""
    assert audit._tail_matches_model()
    request = rf.get("/", REMOTE_ADDR="2001:db8::1", HTTP_USER_AGENT="agent é ü \"quoted\" \\ back")
    events = [
        audit_record(action="study.accessed", actor=cast.center_admin, request=request, organization=cast.center,
                     object_type="studies.study", object_id="1.2.3", reason="Ünïcode reason ✓",
                     extra={"nested": {"b": [1, 2.5, None, True]}, "a": "日本語", "n": 10**15}),
        audit_record(action="auth.login", actor=cast.technologist, extra={}),
        audit_record(action="auth.login_failed", outcome=AuditEvent.Outcome.DENIED, extra={"email": "x@y.z"}),
    ]
    for event in events:
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.row_hash == event.row_hash == stored.compute_hash()
        assert stored.prev_hash == event.prev_hash
    assert events[1].prev_hash == events[0].row_hash
    assert audit_verify_chain() == []


def test_a_failed_append_inside_a_transaction_leaves_the_transaction_usable(cast):
    with transaction.atomic():
        with pytest.raises(DatabaseError):
            audit_record(action="")  # refused by the audit_action_not_empty check constraint
        audit_record(action="auth.login", actor=cast.technologist)
    assert AuditEvent.objects.filter(action="auth.login", actor=cast.technologist).exists()
    assert audit_verify_chain() == []


@pytest.mark.postgres
def test_concurrent_appends_keep_one_unbroken_chain(postgres_only, transactional_db, cast):
    import threading

    from django.db import connections

    def append(n: int) -> None:
        try:
            for i in range(15):
                audit_record(action="study.searched", extra={"thread": n, "i": i})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AuditEvent.objects.filter(action="study.searched").count() == 60
    assert audit_verify_chain() == []


def _commit_mode_of_append(**kwargs) -> str:
    """synchronous_commit as the append's own transaction will commit with it: read in the same transaction
    (one round trip, whose statements commit together at its end)."""
    from core.sql import one_round_trip

    with one_round_trip():
        audit_record(action="study.accessed", object_type="studies.study", object_id="1.2.3", **kwargs)
        cursor = connection.cursor()
        cursor.execute("SELECT current_setting('synchronous_commit')")
    with cursor:
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_reads_of_patient_data_are_committed_without_waiting_for_the_flush_and_the_rest_wait(
        postgres_only, transactional_db, settings):
    before = AuditEvent.objects.count()
    assert _commit_mode_of_append(phi_read=True) == "off"
    assert _commit_mode_of_append() == "on"  # grants, logins, changes: durable before the caller goes on
    settings.AUDIT_PHI_READS_DURABLE = True
    assert _commit_mode_of_append(phi_read=True) == "on"
    settings.AUDIT_PHI_READS_DURABLE = False
    with transaction.atomic():  # the caller's own writes commit with the record: never relaxed
        audit_record(action="study.accessed", phi_read=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            assert cursor.fetchone() == ("on",)
    with connection.cursor() as cursor:  # the setting was the append's transaction's only
        cursor.execute("SELECT current_setting('synchronous_commit')")
        assert cursor.fetchone() == ("on",)
    assert AuditEvent.objects.count() == before + 4  # every one committed, and chained
    assert audit_verify_chain() == []
