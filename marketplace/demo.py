"""The demo world's marketplace (issue 13, point 9), called by ``load_demo`` after the demo studies.

The demo radiologists get reading hours in their own zones, a few minimum rates and one stretch of
time off; Lakeside gets its own turnaround and a preferred reader, Bayview blocks a reader. Then the
demo centers post read requests through the real services, one for each case of the issue: a STAT
head CT in Texas with readers on shift, an MRI knee that needs a musculoskeletal reader, a screening
mammogram only MQSA-qualified readers see, a Canadian CT only Ontario licensees see, a read dr.okafor
claimed and is reading (his full access comes from that claim), one that expired unclaimed, and a CT
whose candidate table shows many reasons.

Idempotent: settings, hours and rates are found by natural keys and written only when they differ;
a read request is found by its idempotency key ``demo:<key>`` (unique per center). Each read is
posted and moved in one transaction, so a second run finds it and creates nothing. Time off is
anchored on the first run's day. Demo addresses are fictional: no email leaves while the demo is
built (the in-app notifications are kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import policy
from accounts.models import Organization, RadiologistProfile, User
from core.errors import ApplicationError
from marketplace.models import (
    Assignment,
    CenterSettings,
    MinimumRate,
    Offer,
    ReadingHours,
    ReadRequest,
    Status,
    TimeOff,
)
from marketplace.services.clock import read_request_expire
from marketplace.services.matching import match
from marketplace.services.offers import assignment_start, offer_claim
from marketplace.services.requests import PostData, center_settings, read_request_post
from studies.demo import demo_study

DEMO_DOMAIN = "@radiologists.demo"
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
WEEKDAYS = (0, 1, 2, 3, 4)

# last name → weekly windows (days, start, end) in the radiologist's own zone; an end at or before the
# start is the next morning. Together nakamura (Honolulu afternoons and nights) and whitfield (Chicago
# days) cover every hour, so the STAT head CT in Texas finds a reader on shift whenever the demo loads.
# Summit's MR (US-CO): alvarez reads Denver's day and brennan its night (chen's weekday hours, after his time
# off, fall inside alvarez's day; rossi's Colorado license has expired). A Sydney noon to midnight is 18:00–06:00
# (or 20:00–08:00) in Denver whatever the two hemispheres' clocks do, and alvarez starts at 06:00 Denver time;
# brennan's short Saturday leaves the one gap of Summit's coverage map (marketplace.demo_coverage): Saturday
# from 00:00 (01:00 or 02:00 when the clocks change apart) until 06:00 in Denver.
READING_HOURS: dict[str, list[tuple[tuple[int, ...], str, str]]] = {
    "okafor": [(EVERY_DAY, "07:00", "19:00")],
    "nakamura": [(EVERY_DAY, "15:00", "07:00")],  # the US night, from Hawaii
    "alvarez": [(EVERY_DAY, "05:00", "19:00")],
    "brennan": [((0, 1, 2, 3, 4, 6), "12:00", "00:00"), ((5,), "12:00", "18:00")],  # a Sydney day is a US night
    "haddad": [(WEEKDAYS, "08:00", "17:00")],
    "patel": [(EVERY_DAY, "08:00", "20:00")],
    "chen": [(WEEKDAYS, "09:00", "17:00")],
    "kowalski": [(EVERY_DAY, "07:00", "15:00")],  # a Zurich morning is the US East Coast's night
    "mensah": [(WEEKDAYS, "10:00", "18:00")],
    "rossi": [((0, 1, 2, 3), "07:00", "15:00")],  # Monday to Thursday: often off shift
    "whitfield": [(EVERY_DAY, "07:00", "21:00")],
    # dubois: a fresh sign-up, no hours yet ("no reading hours entered")
}
# last name → (days from the first run's day it starts, days it lasts, note), midnight to midnight in their zone.
TIME_OFF = {"chen": (-1, 7, "Demo: at a cardiac imaging conference")}
# last name → (modality, priority, cents, currency). Brennan's routine CT is above the default quote (35.00).
MINIMUM_RATES = {
    "brennan": [("CT", "routine", 6000, "USD"), ("CT", "stat", 3000, "USD"), ("CR", "routine", 900, "USD")],
    "nakamura": [("CT", "stat", 3500, "USD")],
    "alvarez": [("MR", "routine", 4000, "USD")],
    "whitfield": [("MG", "routine", 3000, "USD"), ("CT", "stat", 3200, "USD")],
    "patel": [("CT", "routine", 3000, "CAD")],
}
# center slug → settings fields, preferred and blocked readers (last names).
CENTER_SETTINGS = {
    "lakeside": ({"stat_minutes": 45, "urgent_minutes": 180, "routine_minutes": 1440, "preferred_widen_minutes": 120},
                 ["okafor"], []),
    "bayview": ({}, [], ["mensah"]),
}


@dataclass(frozen=True)
class DemoRead:
    """One read request of the demo: posted by ``poster`` for the center's demo study ``study``."""

    key: str  # its idempotency key is "demo:<key>"
    center: str
    study: str
    poster: str
    story: str  # what it shows, for the printed notes
    priority: str = "routine"
    subspecialty: str = ""
    clinical_history: str = ""
    reason_for_exam: str = ""
    comparison: tuple[str, ...] = ()
    claimed_by: str = ""  # a demo radiologist (last name) claims it
    started: bool = False  # ... and starts reading
    posted_days_ago: int = 0  # > 0: posted that long ago and expired unclaimed
    explain: bool = False  # the note points at its candidate table


# In this order: okafor is offered the MRI brain before his two claims put him at capacity.
DEMO_READS = [
    DemoRead("bayview-mg-expired", "bayview", "mg-screening", "admin@bayview.demo",
             "screening mammogram, no MQSA-qualified reader licensed in Florida", posted_days_ago=2,
             reason_for_exam="Annual screening"),
    DemoRead("lakeside-mr-brain", "lakeside", "mr-brain", "admin@lakeside.demo",
             "MRI brain offered to the preferred reader first", subspecialty="neuro",
             clinical_history="Intermittent dizziness for three months.", reason_for_exam="Rule out mass"),
    DemoRead("lakeside-ct-chest", "lakeside", "ct-chest", "admin@lakeside.demo", "CT chest claimed and being read",
             clinical_history="Persistent cough, 30 pack-year smoker.", reason_for_exam="Pulmonary nodule follow-up",
             claimed_by="okafor", started=True),
    DemoRead("lakeside-cr-chest", "lakeside", "cr-chest", "tech@lakeside.demo", "chest X-ray claimed, not started",
             reason_for_exam="Fever and cough", claimed_by="okafor"),
    DemoRead("lakeside-ct-head-stat", "lakeside", "ct-head", "tech@lakeside.demo",
             "STAT head CT, readers on shift day and night (Hawaii covers the US night)",
             priority="stat", clinical_history="Sudden worst headache of life, onset 40 minutes ago.",
             reason_for_exam="Rule out intracranial hemorrhage", comparison=("mr-brain",)),
    DemoRead("lakeside-mg-screening", "lakeside", "mg-screening", "tech@lakeside.demo",
             "screening mammogram, MQSA-qualified readers only", reason_for_exam="Annual screening"),
    DemoRead("summit-mr-knee", "summit", "mr-knee", "admin@summit.demo", "MRI knee needing musculoskeletal",
             subspecialty="musculoskeletal", clinical_history="Twisting injury skiing, locking and effusion.",
             reason_for_exam="Meniscal or ACL tear"),
    DemoRead("mapleleaf-ct-abdomen", "mapleleaf", "ct-abdomen", "admin@mapleleaf.demo",
             "CT in Ontario, only Ontario licensees", clinical_history="Right lower quadrant pain.",
             reason_for_exam="Appendicitis"),
    DemoRead("bayview-ct-head", "bayview", "ct-head", "admin@bayview.demo", "CT head with a full candidate table",
             clinical_history="Fall from standing two days ago, on anticoagulants.",
             reason_for_exam="Subdural hematoma", explain=True),
]


@dataclass
class MarketplaceReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_demo_marketplace(organizations: dict[str, Organization], *, today: date, profile: str) -> MarketplaceReport:
    """Reading hours, rates and center settings, then the demo read requests (none without demo studies)."""
    from django.test.utils import override_settings  # here: the site itself never loads django.test

    report = MarketplaceReport()
    readers = {p.user.email.removesuffix(DEMO_DOMAIN).removeprefix("dr."): p for p in
               RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN).select_related("user")}
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        with transaction.atomic():
            _seed_readers(readers, report, today=today)
            _seed_centers(organizations, readers, report)
        if profile == "none":
            return report
        posted = [(read, _bring_about(read, organizations, readers, report, profile=profile)) for read in DEMO_READS]
    report.notes += [_note(read, read_request) for read, read_request in posted if read_request is not None]
    return report


# --- radiologists and centers ---------------------------------------------------------------------

def _count(report: MarketplaceReport, outcome: str) -> None:
    setattr(report, outcome, getattr(report, outcome) + 1)


def _seed_readers(readers: dict[str, RadiologistProfile], report: MarketplaceReport, *, today: date) -> None:
    for last_name, windows in READING_HOURS.items():
        reader = readers.get(last_name)
        if reader is None:
            continue
        wanted = {(day, time.fromisoformat(starts), time.fromisoformat(ends))
                  for days, starts, ends in windows for day in days}
        have = set(ReadingHours.objects.filter(radiologist=reader).values_list("weekday", "starts", "ends"))
        if have == wanted:
            _count(report, "unchanged")
            continue
        ReadingHours.objects.filter(radiologist=reader).delete()  # the demo schedule comes back whole
        ReadingHours.objects.bulk_create([ReadingHours(radiologist=reader, weekday=day, starts=starts, ends=ends)
                                          for day, starts, ends in sorted(wanted)])
        _count(report, "updated" if have else "created")
    for last_name, (offset, days, note) in TIME_OFF.items():
        reader = readers.get(last_name)
        if reader is None:
            continue
        if TimeOff.objects.filter(radiologist=reader, note=note).exists():
            _count(report, "unchanged")
            continue
        zone = ZoneInfo(reader.home_time_zone)
        first = today + timedelta(days=offset)
        TimeOff.objects.create(radiologist=reader, note=note,
                               starts_at=datetime.combine(first, time(0), tzinfo=zone),
                               ends_at=datetime.combine(first + timedelta(days=days), time(0), tzinfo=zone))
        _count(report, "created")
    for last_name, rates in MINIMUM_RATES.items():
        reader = readers.get(last_name)
        if reader is None:
            continue
        for modality, priority, cents, currency in rates:
            row = MinimumRate.objects.filter(radiologist=reader, modality=modality, priority=priority,
                                             currency=currency).first()
            if row is None:
                MinimumRate.objects.create(radiologist=reader, modality=modality, priority=priority, cents=cents,
                                           currency=currency)
                _count(report, "created")
            elif row.cents != cents:
                MinimumRate.objects.filter(pk=row.pk).update(cents=cents)
                _count(report, "updated")
            else:
                _count(report, "unchanged")


def _seed_centers(organizations: dict[str, Organization], readers: dict[str, RadiologistProfile],
                  report: MarketplaceReport) -> None:
    for slug, (values, preferred, blocked) in CENTER_SETTINGS.items():
        center = organizations.get(slug)
        if center is None:
            continue
        existed = CenterSettings.objects.filter(center=center).exists()
        row = center_settings(center)
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, values[name])
        if changed:
            row.save(update_fields=changed)
        touched = bool(changed)
        for relation, names in ((row.preferred_radiologists, preferred), (row.blocked_radiologists, blocked)):
            missing = [readers[n] for n in names if n in readers and not relation.filter(pk=readers[n].pk).exists()]
            if missing:
                relation.add(*missing)
                touched = True
        _count(report, "created" if not existed else "updated" if touched else "unchanged")


# --- read requests --------------------------------------------------------------------------------

def _bring_about(read: DemoRead, organizations: dict[str, Organization], readers: dict[str, RadiologistProfile],
                 report: MarketplaceReport, *, profile: str) -> ReadRequest | None:
    """Find the demo read by its key, else post it and move it to where the demo shows it (one transaction)."""
    center = organizations[read.center]
    key = f"demo:{read.key}"
    existing = ReadRequest.objects.filter(center=center, idempotency_key=key).first()
    if existing is not None:
        _count(report, "unchanged")
        return existing
    study = demo_study(center, read.study, profile=profile)
    poster = User.objects.filter(email=read.poster).first()
    if study is None or poster is None:
        report.problems.append(f"{center.name}: {read.story}: its study or poster is missing, not posted")
        return None
    comparison = [s for s in (demo_study(center, k, profile=profile) for k in read.comparison) if s is not None]
    data = PostData(study=study, priority=read.priority, subspecialty=read.subspecialty,
                    clinical_history=read.clinical_history, reason_for_exam=read.reason_for_exam,
                    comparison_studies=comparison)
    now = timezone.now()
    with transaction.atomic():
        read_request, _ = read_request_post(actor=policy.actor_for_user(poster), center=center, data=data,
                                            idempotency_key=key, idempotency_body={"demo": read.key},
                                            now=now - timedelta(days=read.posted_days_ago))
        if read.posted_days_ago:
            read_request_expire(read_request)
        if read.claimed_by:
            _claim(read, read_request, readers.get(read.claimed_by), report)
    _count(report, "created")
    return read_request


def _claim(read: DemoRead, read_request: ReadRequest, reader: RadiologistProfile | None,
           report: MarketplaceReport) -> None:
    offer = Offer.objects.filter(read_request=read_request, radiologist=reader, status=Offer.Status.OPEN).first() \
        if reader is not None else None
    if offer is None:
        report.problems.append(f"{read_request.center.name}: {read.story}: dr.{read.claimed_by} was not offered it "
                               "(left open)")
        return
    actor = policy.actor_for_user(reader.user)
    try:
        with transaction.atomic():
            assignment = offer_claim(actor=actor, offer=offer)
            if read.started:
                assignment_start(actor=actor, assignment=assignment)
    except ApplicationError as error:
        report.problems.append(f"{read_request.center.name}: {read.story}: dr.{read.claimed_by} could not claim it "
                               f"({error}); left open")
    read_request.refresh_from_db()


# --- what load_demo prints ------------------------------------------------------------------------

def _handle(profile: RadiologistProfile) -> str:
    return profile.user.email.removesuffix(DEMO_DOMAIN)


def _note(read: DemoRead, read_request: ReadRequest) -> str:
    """One line per demo read: its case, its state now, who has it or may take it."""
    read_request.refresh_from_db()
    center = read_request.center
    due = read_request.deadline.astimezone(ZoneInfo(center.time_zone))
    line = (f"{center.name}: {read.story} ({read_request.get_priority_display()} "
            f"{read_request.study.study_description}, {read_request.jurisdiction}): "
            f"{read_request.get_status_display().lower()}")
    if read_request.status == Status.OPEN:
        offered = sorted(_handle(o.radiologist) for o in Offer.objects.filter(
            read_request=read_request, status=Offer.Status.OPEN).select_related("radiologist__user"))
        line += (f", due {due:%a %H:%M} {center.time_zone}; offered to {', '.join(offered) or 'nobody yet'} "
                 "(preview: de-identified until claimed)")
        if read_request.priority == "stat":
            line += f"; {len(match(read_request).on_shift)} eligible reader(s) on shift now"
    elif read_request.status == Status.EXPIRED:
        line += f" at {due:%a %H:%M} {center.time_zone}, nobody claimed it"
    elif read_request.assignee is not None:
        assignee = read_request.assignee
        load = Assignment.objects.filter(radiologist=assignee, status=Assignment.Status.ACTIVE).count()
        line += (f", {_handle(assignee)} (full access, opens in the viewer; {load} of "
                 f"{assignee.max_concurrent_cases} reads at once)")
    if read.explain:
        result = match(read_request)
        line += (f"; why not the others: {len(result.excluded)} left out for {len(result.reasons_seen())} "
                 f"different reasons, see {reverse('read_request_explain', args=[read_request.public_id])}")
    return line
