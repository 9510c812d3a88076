"""Builders shared by the marketplace tests: studies at a center, radiologists with verified credentials,
reading hours and rates, and posted read requests (all through the real ingest and services)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from io import BytesIO, StringIO
from itertools import count
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.utils import timezone

from accounts import policy
from accounts.models import (
    License,
    MalpracticeInsurance,
    Membership,
    MqsaQualification,
    Organization,
    RadiologistProfile,
    User,
)
from marketplace.models import MinimumRate, ReadingHours
from marketplace.services.requests import PostData, read_request_post
from studies import synthetic
from studies.ingest import Source, ingest_stream
from tests.factories import MembershipFactory, UserFactory

_seq = count(1)
TODAY = timezone.now().date()


def ingest_study(center: Organization, *, modality: str = "CT", patient: int = 1, description: str = "",
                 jurisdiction: tuple[str, str] | None = None):
    """A small real study of ``modality`` stored at ``center`` (in its state unless told)."""
    n = next(_seq)
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(patient), accession=f"MK{n:05d}",
                               description=description or f"{modality} STUDY {n}", study_date=date(2026, 11, 1))
    if modality == "CT":
        datasets = synthetic.ct_series(spec, slices=1, size=32)
    elif modality == "MR":
        datasets = synthetic.mr_study(spec, slices=1, size=32)[:1]
    elif modality == "MG":
        datasets = synthetic.mammogram(spec, rows=32, cols=24)[:1]
    else:
        datasets = synthetic.radiograph(spec, modality=modality, rows=32, cols=24)[:1]
    outcome = None
    for ds in datasets:
        outcome = ingest_stream(organization=center, stream=BytesIO(synthetic.to_bytes(ds)), filename="m.dcm",
                                source=Source.IMPORT,
                                jurisdiction=jurisdiction or (center.country, center.region))
        assert outcome.status == "stored", outcome.reason
    study = outcome.instance.study
    study.refresh_from_db()  # the index counters and modalities are written in SQL
    return study


def always_on(profile: RadiologistProfile) -> None:
    """Reading hours around the clock, every day (00:00 to 00:00 the next day)."""
    ReadingHours.objects.filter(radiologist=profile).delete()
    ReadingHours.objects.bulk_create([ReadingHours(radiologist=profile, weekday=d, starts=time(0, 0), ends=time(0, 0))
                                      for d in range(7)])


def make_radiologist(*, user: User | None = None, group: Organization | None = None, regions=("TX",), country="US",
                     modalities=("CT", "MR", "CR", "DX", "MG", "US"), subspecialties=("neuro", "body"),
                     capacity: int = 3, zone: str = "America/Chicago", hours: str = "always", mqsa: bool = False,
                     name: str = "", priorities=("stat", "urgent", "routine"), verified: bool = True,
                     license_expires: date | None = None) -> RadiologistProfile:
    """A radiologist with verified licenses in ``regions``, malpractice cover, optional MQSA and hours."""
    if user is None:
        n = next(_seq)
        user = UserFactory(email=f"reader{n}@example.test", full_name=name or f"Reader {n}")
        if group is not None:
            MembershipFactory(user=user, organization=group, roles=["radiologist"])
    profile, _ = RadiologistProfile.objects.get_or_create(user=user, defaults={"home_time_zone": zone})
    profile.modalities, profile.subspecialties = list(modalities), list(subspecialties)
    profile.max_concurrent_cases, profile.home_time_zone, profile.priorities = capacity, zone, list(priorities)
    profile.save()
    status = "verified" if verified else "pending"
    for region in regions:
        License.objects.create(radiologist=profile, country=country, region=region, number=f"{region}-{user.pk}",
                               issued_on=date(2015, 1, 1), status=status,
                               expires_on=license_expires or TODAY + timedelta(days=400))
    MalpracticeInsurance.objects.create(radiologist=profile, carrier="TDC", policy_number=f"P{user.pk}",
                                        per_claim_limit=100, aggregate_limit=300, coverage_jurisdictions=[country],
                                        effective_on=date(2020, 1, 1), expires_on=TODAY + timedelta(days=300),
                                        status="verified")
    if mqsa:
        MqsaQualification.objects.create(radiologist=profile, initial_qualified_on=date(2012, 1, 1),
                                         exams_last_24_months=1000, cme_hours_last_36_months=20,
                                         attested_on=TODAY - timedelta(days=10), expires_on=TODAY + timedelta(days=300),
                                         status="verified")
    if hours == "always":
        always_on(profile)
    return profile


def set_rate(profile: RadiologistProfile, modality: str, priority: str, cents: int) -> MinimumRate:
    return MinimumRate.objects.create(radiologist=profile, modality=modality, priority=priority, cents=cents)


def post(user: User, study, **fields):
    """Post a read request for ``study`` as ``user`` (a center admin or technologist)."""
    actor = policy.actor_for_user(user)
    read_request, _ = read_request_post(actor=actor, center=study.organization, data=PostData(study=study, **fields))
    return read_request


def actor(user: User):
    return policy.actor_for_user(user)


def membership(user: User) -> Membership:
    return Membership.objects.filter(user=user).first()


def signed_read(poster: User, study, reader_user: User, **fields):
    """A read of ``study`` posted by ``poster``, claimed and reported by ``reader_user`` (for overreads)."""
    from marketplace.models import Offer
    from marketplace.services.offers import assignment_start, offer_claim, read_request_mark_reported

    read_request = post(poster, study, **fields)
    offer = Offer.objects.get(read_request=read_request, radiologist__user=reader_user)
    assignment = offer_claim(actor=actor(reader_user), offer=offer)
    assignment_start(actor=actor(reader_user), assignment=assignment)
    return read_request_mark_reported(read_request=read_request, actor=actor(reader_user))


def shift_from(profile: RadiologistProfile, starts_at, hours: int = 2) -> None:
    """Replace ``profile``'s reading hours with one weekly window from ``starts_at`` (to the minute) for ``hours``."""
    from zoneinfo import ZoneInfo

    local = starts_at.astimezone(ZoneInfo(profile.home_time_zone)).replace(second=0, microsecond=0)
    ReadingHours.objects.filter(radiologist=profile).delete()
    ReadingHours.objects.create(radiologist=profile, weekday=local.weekday(), starts=local.time(),
                                ends=(local + timedelta(hours=hours)).time())


def a_monday_ahead(hour: int = 10, zone: str = "America/Chicago") -> datetime:
    """A Monday at ``hour`` local time 7 to 13 days after today: a fixed weekday and hour for weekly reading
    hours, and always ahead of the wall clock (deadlines, grants and offers are checked against it)."""
    today = timezone.localdate()
    monday = today + timedelta(days=7 + (7 - today.weekday()) % 7)
    return datetime.combine(monday, time(hour), tzinfo=ZoneInfo(zone))




def load_demo() -> str:
    """``load_demo`` with tiny studies; returns what it printed."""
    out = StringIO()
    call_command("load_demo", studies="small", stdout=out)
    return out.getvalue()

