"""The claim is exactly once: a claim of an offer that is no longer open is a 409 with its code, a reader who lost
eligibility meanwhile is refused with the reason, and on PostgreSQL many readers claiming at once leave exactly
one winner and one active assignment (backed by the partial unique index)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import License
from core.errors import ApplicationError
from marketplace.models import Assignment, Offer, ReadRequest, Status
from marketplace.services.clock import sla_tick
from marketplace.services.offers import GRACE, offer_claim, offer_decline
from marketplace.services.requests import read_request_cancel
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post


def offer_of(profile, read_request) -> Offer:
    return Offer.objects.get(read_request=read_request, radiologist=profile)


def claim_error(profile, offer) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        offer_claim(actor=actor(profile.user), offer=offer)
    assert refused.value.status_code == 409
    return refused.value


def test_a_claim_after_another_won_is_taken(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    offer_claim(actor=actor(other.user), offer=offer_of(other, read_request))
    error = claim_error(reader, offer_of(reader, read_request))
    assert error.code == "taken"
    assert error.fields == {"status": ["assigned"]}
    assert offer_of(reader, read_request).status == "withdrawn"


def test_a_claim_of_an_offer_withdrawn_by_a_cancel_is_not_open(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="duplicate")
    error = claim_error(reader, offer_of(reader, read_request))
    assert error.code == "not_open"
    assert "is cancelled" in error.message


def test_a_claim_of_an_expired_offer_is_not_open(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    sla_tick(at=read_request.deadline + timedelta(minutes=1))
    offer = offer_of(reader, read_request)
    assert offer.status == "expired"
    error = claim_error(reader, offer)
    assert error.code == "not_open"
    assert error.fields == {"status": ["expired"]}


def test_a_claim_of_a_declined_offer_is_offer_declined(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    offer_decline(actor=actor(cast.radiologist), offer=offer_of(reader, read_request), reason="busy")
    error = claim_error(reader, offer_of(reader, read_request))
    assert error.code == "offer_declined"
    assert "declined" in error.message
    assert ReadRequest.objects.get(pk=read_request.pk).status == Status.OPEN


def test_a_claim_after_the_license_expired_meanwhile_is_no_longer_eligible(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    yesterday = timezone.now().date() - timedelta(days=1)
    license_ = License.objects.get(radiologist=reader)
    license_.expires_on = yesterday
    license_.save()
    error = claim_error(reader, offer_of(reader, read_request))
    assert error.code == "no_longer_eligible"
    assert error.fields == {"eligibility": [f"license US-TX expired {yesterday.isoformat()}"]}
    assert f"license US-TX expired {yesterday.isoformat()}" in error.message
    assert not Assignment.objects.exists()
    assert offer_of(reader, read_request).status == "open"


def test_a_claim_when_at_capacity_meanwhile_is_no_longer_eligible(cast, reader):
    reader.max_concurrent_cases = 1
    reader.save(update_fields=["max_concurrent_cases"])
    first = post(cast.technologist, ingest_study(cast.center, patient=3))
    second = post(cast.technologist, ingest_study(cast.center, patient=4))
    offer_claim(actor=actor(cast.radiologist), offer=offer_of(reader, first))
    error = claim_error(reader, offer_of(reader, second))
    assert error.code == "no_longer_eligible"
    assert error.fields == {"eligibility": ["at capacity (1 of 1)"]}


def test_the_partial_unique_index_refuses_a_second_active_assignment(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study, publish=False)
    Assignment.objects.create(read_request=read_request, radiologist=reader, status="released")
    Assignment.objects.create(read_request=read_request, radiologist=reader)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(read_request=read_request, radiologist=other)
    Assignment.objects.create(read_request=read_request, radiologist=other, status="completed")
    assert Assignment.objects.filter(read_request=read_request, status="active").count() == 1


CLAIMANTS, ROUNDS = 8, 20


def race(offers: list[Offer]) -> list[tuple[int, object]]:
    """Every offer's radiologist claims at the same instant, each on its own connection."""
    barrier = threading.Barrier(len(offers))
    results: list[tuple[int, object]] = []
    lock = threading.Lock()

    def run(offer: Offer) -> None:
        try:
            barrier.wait(timeout=30)
            try:
                outcome = offer_claim(actor=actor(offer.radiologist.user), offer=offer)
            except ApplicationError as error:
                outcome = error
            except Exception as error:  # noqa: BLE001 - a crash is a result the test reports
                outcome = error
            with lock:
                results.append((offer.radiologist_id, outcome))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(offer,)) for offer in offers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_leave_exactly_one_winner_every_round(cast, postgres_only):
    readers = [make_radiologist(capacity=ROUNDS + 1) for _ in range(CLAIMANTS)]
    for round_ in range(ROUNDS):
        read_request = post(cast.technologist, ingest_study(cast.center, patient=50 + round_))
        offers = list(Offer.objects.filter(read_request=read_request).select_related("radiologist__user"))
        assert len(offers) == CLAIMANTS
        results = race(offers)
        assert len(results) == CLAIMANTS, f"round {round_}: a thread did not finish"
        winners = [(who, outcome) for who, outcome in results if isinstance(outcome, Assignment)]
        losers = [outcome for _, outcome in results if not isinstance(outcome, Assignment)]
        assert len(winners) == 1, f"round {round_}: {results}"
        assert all(isinstance(e, ApplicationError) and e.code == "taken" and e.status_code == 409 for e in losers), \
            f"round {round_}: {losers}"
        active = Assignment.objects.filter(read_request=read_request, status="active")
        assert active.count() == 1
        assert active.get().radiologist_id == winners[0][0]
        read_request.refresh_from_db()
        assert read_request.status == Status.ASSIGNED
        assert read_request.assignee_id == winners[0][0]
        statuses = sorted(Offer.objects.filter(read_request=read_request).values_list("status", flat=True))
        assert statuses == ["claimed"] + ["withdrawn"] * (CLAIMANTS - 1)
        assert read_request.status_changes.filter(to_status="assigned").count() == 1
    assert {r.pk for r in readers} >= set(Assignment.objects.values_list("radiologist_id", flat=True))


def test_a_claim_while_the_clock_is_behind_still_gives_access_for_the_grace_period(cast, ct_study, reader):
    """The full grant runs from the later of the deadline and now: a late claim is not a grant already over."""
    read_request = post(cast.technologist, ct_study)
    ReadRequest.objects.filter(pk=read_request.pk).update(deadline=timezone.now() - GRACE - timedelta(days=1))
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer_of(reader, read_request))
    assert assignment.grant.expires_at > timezone.now() + GRACE - timedelta(minutes=1)
