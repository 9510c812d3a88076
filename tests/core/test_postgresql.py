"""core.postgresql (Django's backend with a health check that costs no round trip) and core.sql.one_round_trip,
on a real PostgreSQL server."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.conf import settings
from django.db import DataError, connection

from accounts.audit import audit_record
from accounts.models import AuditEvent
from core.sql import RequirementFailed, one_round_trip, one_round_trip_available, require_sql

pytestmark = pytest.mark.django_db(transaction=True)


def a_new_request() -> None:
    connection.close_if_unusable_or_obsolete()  # what Django does when a request starts


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_the_settings_use_the_backend_with_health_checks(postgres_only):
    assert settings.DATABASES["default"]["ENGINE"] == "core.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def sent(trace: str) -> list[str]:
    """The statements the client sent (parsed or run), from a protocol trace."""
    return [line for line in trace.splitlines()
            if line.startswith("F") and ("\tParse\t" in line or "\tQuery\t" in line)]


def test_a_healthy_reused_connection_is_not_sent_select_1(postgres_exchanges):
    pid = backend_pid()
    backend_pid()  # prepared from its second run on: from now on one exchange per run
    a_new_request()
    with postgres_exchanges() as seen:
        assert backend_pid() == pid
    assert seen.count == 1, seen.trace  # the query itself, no "SELECT 1" before it
    assert not any("SELECT 1" in line for line in sent(seen.trace)), seen.trace


def test_a_connection_the_server_dropped_is_replaced_before_the_requests_first_query(postgres_only):
    pid = backend_pid()
    with psycopg.connect(_conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _still_running(pid):
        time.sleep(0.05)

    a_new_request()
    assert backend_pid() != pid  # no error: the dropped connection was noticed and replaced


def test_a_connection_in_the_middle_of_a_transaction_gets_the_full_check(postgres_exchanges):
    backend_pid()
    connection.connection.execute("BEGIN")  # a connection left inside a transaction is not trusted blind
    try:
        connection.health_check_done = False
        with postgres_exchanges() as seen:
            connection.close_if_health_check_failed()
        assert any("SELECT 1" in line for line in sent(seen.trace)), seen.trace
    finally:
        if connection.connection is not None:
            connection.connection.execute("ROLLBACK")


def test_statements_in_one_round_trip_cost_one_exchange_and_commit_together(postgres_exchanges, django_user_model):
    before = AuditEvent.objects.count()
    with postgres_exchanges() as seen:
        with one_round_trip():
            with connection.cursor() as first:
                first.execute("SELECT 40 + 2")
            rows = connection.cursor()
            rows.execute("SELECT generate_series(1, 3)")
            audit_record(action="test.round_trip", object_type="test")
        got = rows.fetchall()
    assert got == [(1,), (2,), (3,)]
    assert seen.count == 1, seen.trace
    assert AuditEvent.objects.count() == before + 1


def audit_then_divide_by_zero() -> None:
    with one_round_trip():
        audit_record(action="test.round_trip", object_type="test")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")  # sent: the error comes back at the end of the block


def test_an_error_in_one_round_trip_raises_at_its_end_and_nothing_of_it_is_committed(postgres_only):
    before = AuditEvent.objects.count()
    with pytest.raises(DataError):
        audit_then_divide_by_zero()
    assert AuditEvent.objects.count() == before  # the audit record went with the failed statement
    with connection.cursor() as cursor:  # and the connection is usable again
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def guarded_audit(condition: str) -> None:
    with one_round_trip():
        with connection.cursor() as cursor:
            cursor.execute(require_sql(condition), ["The guard says no."])
        audit_record(action="test.guarded", object_type="test")


def test_a_failed_requirement_skips_what_follows_it_in_the_round_trip(postgres_exchanges):
    assert one_round_trip_available()
    with postgres_exchanges() as seen, pytest.raises(RequirementFailed, match="The guard says no."):
        guarded_audit("1 = 2")
    assert seen.count == 1, seen.trace
    assert not AuditEvent.objects.filter(action="test.guarded").exists()
    # Nothing is left to clean up: Django will not test the connection with a round trip of its own.
    assert connection.errors_occurred is False
    with pytest.raises(RequirementFailed):
        guarded_audit("NULL")  # not true is not enough
    guarded_audit("2 = 2")
    assert AuditEvent.objects.filter(action="test.guarded").count() == 1


def test_no_round_trip_is_offered_for_a_guard_inside_a_transaction(postgres_only):
    from django.db import transaction

    with transaction.atomic():
        # A failed guard would spoil the transaction, and one_round_trip runs statements one by one there.
        assert not one_round_trip_available()
    assert one_round_trip_available()


def _conninfo() -> str:
    params = connection.get_connection_params()
    return " ".join(f"{k}={v}" for k, v in params.items()
                    if k in {"dbname", "host", "port", "user", "password"} and v not in (None, ""))


def _still_running(pid: int) -> bool:
    with psycopg.connect(_conninfo(), autocommit=True) as admin:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] > 0
