"""A tier of offers is written in bulk: one statement for its grants, one for its offers, their audit records
sent together; a claim ends every other offer and preview the same way. The number of statements does not
grow with the tier, every grant and revoke still has its own audit record (the chain intact), and two sweeps
of one request at once on PostgreSQL offer each reader once, with no grant left over."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.audit import audit_verify_chain
from accounts.models import AuditEvent
from marketplace.models import Offer, ReadRequest
from marketplace.services.offers import assignment_release, offer_claim, offers_sync, read_request_widen
from marketplace.services.requests import read_request_cancel
from studies.models import StudyAccessGrant
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post


def counted(queries: CaptureQueriesContext) -> tuple[int, int]:
    """(statements other than audit appends, audit appends): the appends, one per grant, go in one batch."""
    appends = sum("readroom_audit_append" in q["sql"] for q in queries.captured_queries)
    return len(queries) - appends, appends


def statements_to_publish(cast, readers: int, patient: int) -> tuple[tuple[int, int], ReadRequest]:
    for _ in range(readers):
        make_radiologist()
    study = ingest_study(cast.center, patient=patient)
    with CaptureQueriesContext(connection) as queries:
        read_request = post(cast.technologist, study)
    assert Offer.objects.filter(read_request=read_request).count() >= readers
    return counted(queries), read_request


@pytest.mark.postgres
def test_publishing_costs_the_same_statements_for_two_readers_or_twelve_but_audits(cast, reader, postgres_only):
    few, _ = statements_to_publish(cast, 1, patient=11)
    many, read_request = statements_to_publish(cast, 10, patient=12)  # 12 readers in all now
    assert Offer.objects.filter(read_request=read_request).count() == 12
    assert many[0] == few[0]
    assert many[1] - few[1] == 10  # one audit record per grant


@pytest.mark.postgres
def test_a_claim_ends_the_others_in_the_same_statements_for_two_or_twelve_but_audits(cast, reader, postgres_only):
    def claim_statements(read_request) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            offer_claim(actor=actor(cast.radiologist),
                        offer=Offer.objects.get(read_request=read_request, radiologist=reader))
        return counted(queries)

    reader.max_concurrent_cases = 5
    reader.save(update_fields=["max_concurrent_cases"])
    make_radiologist()
    few = claim_statements(post(cast.technologist, ingest_study(cast.center, patient=21)))
    for _ in range(10):
        make_radiologist()
    read_request = post(cast.technologist, ingest_study(cast.center, patient=22))
    many = claim_statements(read_request)
    assert Offer.objects.filter(read_request=read_request, status="withdrawn").count() == 11
    assert many[0] == few[0]
    assert many[1] - few[1] == 10  # one audit record per revoked preview


def test_each_grant_and_each_revoke_has_its_own_audit_record(cast, ct_study, reader):
    others = [make_radiologist() for _ in range(3)]
    read_request = post(cast.technologist, ct_study)
    granted = AuditEvent.objects.filter(action="study.access_granted", object_id=ct_study.study_instance_uid)
    assert sorted(e.extra["grantee"] for e in granted) == sorted(p.user.email for p in [reader, *others])
    assert {e.extra["level"] for e in granted} == {"preview"}
    assert {e.organization_id for e in granted} == {cast.center.pk}
    assert {e.reason for e in granted} == {f"Offered read request {read_request.public_id}"}
    offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request, radiologist=reader))
    revoked = AuditEvent.objects.filter(action="study.access_revoked", object_id=ct_study.study_instance_uid)
    # The three others' previews and the winner's own (its full grant replaces it).
    assert sorted(e.extra["grantee"] for e in revoked) == sorted(p.user.email for p in [reader, *others])
    for offer in Offer.objects.filter(read_request=read_request, status="withdrawn"):
        assert offer.responded_at is not None
        assert offer.updated_at == offer.responded_at
    previews = StudyAccessGrant.objects.filter(study=ct_study, level="preview")
    assert previews.count() == 4
    assert not previews.filter(revoked_at__isnull=True).exists()
    assert StudyAccessGrant.objects.get(study=ct_study, level="full", revoked_at__isnull=True).user == reader.user
    assert audit_verify_chain() == []


def test_a_cancel_revokes_the_assignees_grant_and_the_open_previews_once_each(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="duplicate order")
    assert not StudyAccessGrant.objects.filter(study=ct_study, revoked_at__isnull=True).exists()
    revoked = AuditEvent.objects.filter(action="study.access_revoked", object_id=ct_study.study_instance_uid)
    assert sorted(e.extra["grantee"] for e in revoked) == sorted([reader.user.email, other.user.email])
    assert set(Offer.objects.filter(read_request=read_request).values_list("status", flat=True)) == {"withdrawn"}


def test_a_request_that_is_no_longer_open_gets_no_offers(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study, publish=False)
    assert offers_sync(read_request=read_request) == []  # a draft
    read_request = post(cast.technologist, ingest_study(cast.center, patient=31))
    read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="duplicate order")
    make_radiologist()  # someone new and eligible: still nothing for a cancelled read
    assert offers_sync(read_request=ReadRequest.objects.get(pk=read_request.pk)) == []
    assert Offer.objects.filter(read_request=read_request, status="open").count() == 0


def test_a_cancel_after_a_release_ends_the_active_assignment_and_leaves_the_released_one(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    first = offer_claim(actor=actor(cast.radiologist),
                        offer=Offer.objects.get(read_request=read_request, radiologist=reader))
    assignment_release(actor=actor(cast.radiologist), assignment=first, reason="called away")
    second = offer_claim(actor=actor(other.user), offer=Offer.objects.get(read_request=read_request, radiologist=other))
    read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="patient transferred")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "released"
    assert first.release_reason == "called away"
    assert second.status == "cancelled"
    assert second.ended_at is not None
    assert second.updated_at == second.ended_at
    assert not StudyAccessGrant.objects.filter(study=ct_study, revoked_at__isnull=True).exists()


def test_a_second_sync_of_the_same_tier_writes_nothing(cast, ct_study, reader):
    make_radiologist()
    read_request = post(cast.technologist, ct_study)
    grants = StudyAccessGrant.objects.count()
    audits = AuditEvent.objects.count()
    assert offers_sync(read_request=read_request) == []
    assert not read_request_widen(read_request=read_request)  # tier 1 already
    assert (StudyAccessGrant.objects.count(), AuditEvent.objects.count()) == (grants, audits)


def sweep(read_request_pk: int, barrier: threading.Barrier, made: list) -> None:
    """One clock sweep's offers of the request, on its own connection, at the same instant as another's."""
    try:
        barrier.wait(timeout=30)
        made.append(len(offers_sync(read_request=ReadRequest.objects.get(pk=read_request_pk))))
    except Exception as error:  # noqa: BLE001 - a crash is a result the test reports
        made.append(error)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_offer_each_reader_once_with_no_grant_left_over(cast, postgres_only):
    readers = [make_radiologist() for _ in range(6)]
    for round_ in range(5):
        # Open with nothing offered yet (as a request whose tier just widened), then two sweeps at once.
        read_request = post(cast.technologist, ingest_study(cast.center, patient=70 + round_), publish=False)
        ReadRequest.objects.filter(pk=read_request.pk).update(status="open", tier=1, published_at=timezone.now())
        barrier = threading.Barrier(2)
        made: list = []
        threads = [threading.Thread(target=sweep, args=(read_request.pk, barrier, made)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(isinstance(n, int) for n in made), f"round {round_}: {made}"
        assert sorted(made) == [0, len(readers)], f"round {round_}: {made}"
        offers = Offer.objects.filter(read_request=read_request)
        assert sorted(offers.values_list("radiologist_id", flat=True)) == sorted(r.pk for r in readers)
        grants = StudyAccessGrant.objects.filter(study=read_request.study)
        assert grants.count() == len(readers)  # no grant made by a sweep that lost
        assert set(grants.values_list("pk", flat=True)) == set(offers.values_list("grant_id", flat=True))
    assert audit_verify_chain() == []
