"""The SLA clocks by time travel (``sla_tick(at=...)``): the preferred tier widens on time (or never), at 50 %
it widens and the center is told once, at 80 % the admins are alerted once, past the deadline an open read
expires with its offers and grants, an assigned one stays and is marked late once, and readers who come on
shift later are offered it on a later tick."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Notification
from marketplace.models import Offer, ReadRequest, Status
from marketplace.services.clock import sla_tick
from marketplace.services.offers import offer_claim
from marketplace.services.requests import center_settings
from tests.marketplace.helpers import actor, make_radiologist, post, shift_from

HALF_TITLE = "Read still unclaimed at half its time"
RISK_TITLE = "Read at risk of missing its deadline"


def offered(read_request) -> set[int]:
    return set(Offer.objects.filter(read_request=read_request).values_list("radiologist_id", flat=True))


def at_fraction(read_request, fraction: float):
    read_request.refresh_from_db()
    return read_request.published_at + fraction * (read_request.deadline - read_request.published_at)


def fresh(read_request) -> ReadRequest:
    return ReadRequest.objects.get(pk=read_request.pk)


def preferred_setup(cast, ct_study, **settings_fields):
    preferred, other = make_radiologist(), make_radiologist()
    settings = center_settings(cast.center)
    settings.preferred_radiologists.add(preferred)
    for name, value in settings_fields.items():
        setattr(settings, name, value)
    settings.save()
    read_request = post(cast.technologist, ct_study)
    assert read_request.tier == 0
    assert offered(read_request) == {preferred.pk}
    return read_request, preferred, other


def test_the_preferred_tier_widens_at_a_quarter_of_the_time(cast, ct_study):
    read_request, preferred, other = preferred_setup(cast, ct_study)
    quarter = at_fraction(read_request, 0.25)
    early = sla_tick(at=quarter - timedelta(seconds=1))
    assert early.widened == 0
    assert offered(read_request) == {preferred.pk}
    assert fresh(read_request).tier == 0
    result = sla_tick(at=quarter)
    assert result.widened == 1
    assert result.half_time == 0
    assert offered(read_request) == {preferred.pk, other.pk}
    row = fresh(read_request)
    assert row.tier == 1
    assert row.widened_at == quarter
    assert row.half_time_at is None
    assert Offer.objects.get(read_request=read_request, radiologist=other).tier == 1
    assert sla_tick(at=quarter + timedelta(minutes=1)).widened == 0  # idempotent


def test_the_centers_delay_replaces_the_quarter(cast, ct_study):
    read_request, preferred, other = preferred_setup(cast, ct_study, preferred_widen_minutes=30)
    start = fresh(read_request).published_at
    assert sla_tick(at=start + timedelta(minutes=29)).widened == 0
    assert sla_tick(at=start + timedelta(minutes=30)).widened == 1
    assert offered(read_request) == {preferred.pk, other.pk}


def test_a_preferred_audience_widens_after_its_own_delay(cast, ct_study, reader):
    named = make_radiologist()
    read_request = post(cast.technologist, ct_study, audience="preferred", preferred_radiologists=[named],
                        widen_after_minutes=10)
    start = fresh(read_request).published_at
    assert sla_tick(at=start + timedelta(minutes=9)).widened == 0
    assert offered(read_request) == {named.pk}
    assert sla_tick(at=start + timedelta(minutes=10)).widened == 1
    assert offered(read_request) == {named.pk, reader.pk}


def test_a_preferred_audience_that_never_widens_stays_with_its_readers(cast, ct_study, reader):
    named = make_radiologist()
    read_request = post(cast.technologist, ct_study, audience="preferred", preferred_radiologists=[named])
    result = sla_tick(at=at_fraction(read_request, 0.9))
    assert result.widened == 0
    assert result.half_time == 1
    assert result.at_risk == 1
    assert offered(read_request) == {named.pk}
    assert fresh(read_request).tier == 0
    assert Notification.objects.get(user=cast.center_admin, title=HALF_TITLE).body == \
        "It stays with your preferred readers."


def test_at_half_time_it_widens_and_the_center_is_told_once(cast, ct_study):
    read_request, preferred, other = preferred_setup(cast, ct_study, preferred_widen_minutes=24 * 60)
    assert sla_tick(at=at_fraction(read_request, 0.49)).half_time == 0
    half = at_fraction(read_request, 0.5)
    result = sla_tick(at=half)
    assert result.half_time == 1
    assert result.widened == 1
    assert result.at_risk == 0
    row = fresh(read_request)
    assert row.half_time_at == half
    assert row.tier == 1
    assert row.at_risk_at is None
    assert offered(read_request) == {preferred.pk, other.pk}
    again = sla_tick(at=at_fraction(read_request, 0.6))
    assert again.half_time == 0
    assert again.widened == 0
    for user in (cast.center_admin, cast.technologist):
        assert Notification.objects.filter(user=user, title=HALF_TITLE).count() == 1
    assert fresh(read_request).half_time_at == half


def test_at_80_percent_it_is_at_risk_and_the_admins_are_alerted_once(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assert sla_tick(at=at_fraction(read_request, 0.79)).at_risk == 0
    assert fresh(read_request).at_risk_at is None
    risk = at_fraction(read_request, 0.8)
    assert sla_tick(at=risk).at_risk == 1
    assert sla_tick(at=at_fraction(read_request, 0.9)).at_risk == 0
    assert fresh(read_request).at_risk_at == risk
    assert Notification.objects.filter(user=cast.center_admin, title=RISK_TITLE).count() == 1
    assert not Notification.objects.filter(user=cast.technologist, title=RISK_TITLE).exists()
    assert Notification.objects.filter(user=cast.center_admin, title=HALF_TITLE).count() == 1


def test_an_open_read_past_its_deadline_expires_with_its_offers_and_grants(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    deadline = fresh(read_request).deadline
    assert sla_tick(at=deadline - timedelta(seconds=1)).expired == 0
    assert fresh(read_request).status == Status.OPEN
    result = sla_tick(at=deadline)
    assert result.expired == 1
    row = fresh(read_request)
    assert row.status == Status.EXPIRED
    change = row.status_changes.last()
    assert (change.from_status, change.to_status, change.actor) == ("open", "expired", None)
    for offer in Offer.objects.filter(read_request=read_request).select_related("grant"):
        assert offer.status == "expired"
        assert offer.grant.revoked_at is not None
    assert {o.radiologist_id for o in Offer.objects.filter(read_request=read_request)} == {reader.pk, other.pk}
    assert Notification.objects.filter(user=cast.technologist, title="Read request expired unclaimed").count() == 1
    assert sla_tick(at=deadline + timedelta(hours=1)).expired == 0


def test_an_assigned_read_past_its_deadline_stays_assigned_and_is_marked_late_once(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request))
    deadline = fresh(read_request).deadline
    assert sla_tick(at=deadline - timedelta(seconds=1)).late == 0
    result = sla_tick(at=deadline)
    assert result.late == 1
    assert result.expired == 0
    row = fresh(read_request)
    assert row.status == Status.ASSIGNED
    assert row.late_at == deadline
    assert row.half_time_at is None
    assert sla_tick(at=deadline + timedelta(hours=2)).late == 0
    assert fresh(read_request).late_at == deadline
    assert Notification.objects.filter(user=cast.radiologist, title="Read past its deadline").count() == 1
    assert Notification.objects.filter(user=cast.center_admin, title="Read past its deadline").count() == 1


def test_readers_who_come_on_shift_later_are_offered_on_a_later_tick(cast, ct_study):
    later = make_radiologist(hours="none")
    shift_from(later, timezone.now() + timedelta(minutes=20))
    read_request = post(cast.technologist, ct_study, priority="stat")
    assert fresh(read_request).no_on_shift_reader
    assert offered(read_request) == set()
    assert sla_tick(at=timezone.now() + timedelta(minutes=10)).offered == 0
    result = sla_tick(at=timezone.now() + timedelta(minutes=25))
    assert result.offered == 1
    assert offered(read_request) == {later.pk}
    assert sla_tick(at=timezone.now() + timedelta(minutes=26)).offered == 0


def test_a_tick_before_any_threshold_changes_nothing(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    result = sla_tick(at=at_fraction(read_request, 0.1))
    assert (result.offered, result.widened, result.half_time, result.at_risk, result.expired, result.late) == (
        0, 0, 0, 0, 0, 0)
    row = fresh(read_request)
    assert (row.half_time_at, row.at_risk_at, row.widened_at, row.late_at) == (None, None, None, None)
