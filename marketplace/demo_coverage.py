"""The demo world's coverage and overflow (issue 18, item 5), registered after the marketplace's and RIS demos.

Coverage: the demo reading hours (``marketplace.demo.READING_HOURS``, twelve radiologists in nine zones) leave
Summit Open MRI one night a week without an MR reader licensed in Colorado; the note printed by ``load_demo`` is
the coverage map's own gap list, as Summit's admin sees it.

Overflow: each center's admin makes its rule through the overflow service (Lakeside: CTs arriving at night;
Bayview: its CT backlog beyond two), and the real beat (``overflow_tick``) posts what the rules say:
- at Lakeside, a CT that arrived in the night window (the rule was set up a week before it), posted by the beat
  two minutes after it arrived, or at once by the ingest hook when the demo is loaded at night;
- at Bayview, four CTs waiting unread for one to four hours: the two oldest are posted, two stay below the rule's N.
Every posting's special instructions name its rule. Idempotent: a rule is found by (center, trigger, modality),
a study by its accession number; a posted study is never a candidate again, so a second run posts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts import policy
from accounts.models import Organization, User
from core.errors import ApplicationError
from marketplace import overflow
from marketplace.coverage import coverage_map
from marketplace.coverage_models import OverflowPosting, OverflowRule
from marketplace.demo import MarketplaceReport
from marketplace.demo_arrivals import demo_ct
from marketplace.services.overflow import RuleData, overflow_rule_create, overflow_tick
from studies.models import Study

COVERAGE_CENTER, COVERAGE_ADMIN, COVERAGE_MODALITY = "summit", "admin@summit.demo", "MR"
RULE_SET_UP_DAYS_AGO = 7  # the nights rule existed before the night its CT arrived


@dataclass(frozen=True)
class DemoRule:
    center: str
    admin: str
    rule: RuleData
    arrivals: tuple[tuple[str, int, str, int], ...]  # (accession, patient, description, minutes ago; 0: last night)


RULES = [
    DemoRule("lakeside", "admin@lakeside.demo",
             RuleData(trigger=OverflowRule.Trigger.HOURS, modality="CT", starts="22:00", ends="07:00"),
             (("LKSOVF0001", 4, "CT ABDOMEN PELVIS WITHOUT CONTRAST", 0),)),
    DemoRule("bayview", "admin@bayview.demo", RuleData(trigger=OverflowRule.Trigger.BACKLOG, modality="CT", backlog=2),
             (("BVDOVF0001", 7, "CT HEAD WITHOUT CONTRAST", 240), ("BVDOVF0002", 8, "CT CHEST WITHOUT CONTRAST", 180),
              ("BVDOVF0003", 9, "CT ABDOMEN PELVIS WITH CONTRAST", 120),
              ("BVDOVF0004", 10, "CT CHEST WITH CONTRAST", 60))),
]


def load_demo_coverage(organizations: dict[str, Organization], *, report: MarketplaceReport, profile: str,
                       today: date | None = None) -> None:
    """The overflow rules and their postings, then Summit's MR coverage gaps in the printed notes."""
    from django.test.utils import override_settings  # here: the site itself never loads django.test

    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        for demo in RULES:
            center = organizations.get(demo.center)
            admin = User.objects.filter(email=demo.admin).first()
            if center is None or admin is None:
                continue
            rule = _rule(center, admin, demo.rule, report)
            if rule is None or profile == "none":
                continue
            _arrive(rule, demo, report, profile=profile, today=today or timezone.localdate())
            report.notes.append(_posted_note(rule))
    _coverage_note(organizations, report)


def _rule(center: Organization, admin: User, data: RuleData, report: MarketplaceReport) -> OverflowRule | None:
    rule = OverflowRule.objects.filter(center=center, trigger=data.trigger, modality=data.modality).first()
    if rule is not None:
        _count(report, "unchanged")
        return rule
    try:
        rule = overflow_rule_create(actor=policy.actor_for_user(admin), center=center, data=data)
    except ApplicationError as error:
        report.problems.append(f"{center.name}: overflow rule not made ({error.message})")
        return None
    if rule.trigger == OverflowRule.Trigger.HOURS:  # its demo CT arrived last night: the rule was there already
        OverflowRule.objects.filter(pk=rule.pk).update(
            created_at=rule.created_at - timedelta(days=RULE_SET_UP_DAYS_AGO))
    _count(report, "created")
    return rule


def _arrive(rule: OverflowRule, demo: DemoRule, report: MarketplaceReport, *, profile: str, today: date) -> None:
    """Store the rule's demo CTs (new ones arrive when the demo says), then let the beat run once."""
    center, now = rule.center, timezone.now()
    beat_at: datetime | None = None
    for accession, patient, description, minutes_ago in demo.arrivals:
        study, created = demo_ct(center, accession, patient=patient, description=description,
                                 body_part=_body_part(description), study_date=today, profile=profile)
        _count(report, "created" if created else "unchanged")
        if study is None:
            report.problems.append(f"{center.name}: demo CT {accession} was not stored")
            continue
        if not created or OverflowPosting.objects.filter(study=study).exists():
            continue  # found again, or posted on arrival by the ingest hook (the demo loaded at night)
        arrived = now - timedelta(minutes=minutes_ago) if minutes_ago else _last_night(rule, center, now)
        Study.objects.filter(pk=study.pk).update(received_at=arrived)
        beat_at = now if minutes_ago else arrived + timedelta(minutes=2)
    if beat_at is not None:
        overflow_tick(now=beat_at)


def _last_night(rule: OverflowRule, center: Organization, now: datetime) -> datetime:
    """A moment in the rule's window: five minutes ago when that is night at the center, else 06:30 this morning."""
    if overflow.in_hours(rule, now - timedelta(minutes=5), center.time_zone):
        return now - timedelta(minutes=5)
    zone = ZoneInfo(center.time_zone)
    return datetime.combine(now.astimezone(zone).date(), time(6, 30), tzinfo=zone)


def _body_part(description: str) -> str:
    return next((part for part in ("HEAD", "CHEST", "ABDOMEN") if part in description), "")


def _posted_note(rule: OverflowRule) -> str:
    """``Lakeside Imaging: overflow rule "Post every CT ..." posted LKSOVF0001 (open)``."""
    postings = (OverflowPosting.objects.filter(rule=rule).select_related("study", "read_request")
                .order_by("study__received_at", "id"))
    posted = ", ".join(f"{p.study.accession_number} ({p.read_request.get_status_display().lower()})"
                       for p in postings) or "nothing yet"
    return f"{rule.center.name}: overflow rule \"{overflow.sentence(rule)}\" posted {posted}"


def _coverage_note(organizations: dict[str, Organization], report: MarketplaceReport) -> None:
    center = organizations.get(COVERAGE_CENTER)
    admin = User.objects.filter(email=COVERAGE_ADMIN).first()
    if center is None or admin is None:
        return
    gaps = coverage_map(actor=policy.actor_for_user(admin), center=center, modality=COVERAGE_MODALITY).gaps
    report.notes.append(f"{center.name}: {COVERAGE_MODALITY} coverage gaps in the next 7 days ({center.time_zone}): "
                        + ("; ".join(gaps) or "none"))


def _count(report: MarketplaceReport, outcome: str) -> None:
    setattr(report, outcome, getattr(report, outcome) + 1)
