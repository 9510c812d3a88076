"""Overflow rules (issue 18): a center admin's rules, the automatic posting they cause, and the center's
"read locally" mark.

Posting goes through ``read_request_create`` with the platform as the actor (nobody at the center clicked):
the study row is locked first, so the ingest hook and the beat never post one study twice, and the
``OverflowPosting`` row (unique per study) backs that in the database.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credentials.vocab import Priority
from accounts.models import Organization
from accounts.policy import ANONYMOUS, Actor
from core.errors import ApplicationError, NotFound
from marketplace import overflow, policy, template_choices
from marketplace.coverage_models import LocalRead, OverflowPosting, OverflowRule
from marketplace.models import Audience, ReadRequest
from marketplace.services.requests import PostData, read_request_create
from studies.models import Study

logger = logging.getLogger(__name__)
AUDIENCES = ("preferred", "marketplace")
MAX_POSTS_PER_RULE_RUN = 50  # a beat run stays short; the next minute posts the rest
HOURS_CATCH_UP = timedelta(hours=1)  # the beat re-checks an hours rule's recent arrivals (a missed hook)


def _err(name: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(name, message)


# --- rules -----------------------------------------------------------------------------------------------

@dataclass
class RuleData:
    """What a center admin says about a rule (strings as typed in a form or an API body)."""

    trigger: str
    modality: str = ""
    weekdays: list = field(default_factory=list)
    starts: str | time | None = None
    ends: str | time | None = None
    minutes: int | str | None = None
    backlog: int | str | None = None
    priority: str = Priority.ROUTINE
    audience: str = "preferred"
    paused: bool = False
    template: str | uuid.UUID | None = None  # a report template's public id; empty: the automatic choice


def _clock(name: str, value) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value or "").strip())
    except ValueError:
        raise _err(name, f"{value!r} is not a time of day: write it as HH:MM (e.g. 22:00).") from None


def _positive(name: str, value, what: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise _err(name, f"Give the number of {what} as a whole number.") from None
    if number <= 0:
        raise _err(name, f"The number of {what} must be at least 1.")
    return number


def _template(center: Organization, value) -> tuple[uuid.UUID | None, str]:
    """(public id, name) of a template the center may name (``template_choices``); empty: none."""
    if value in (None, ""):
        return None, ""
    try:
        wanted = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip())
    except ValueError:
        raise _err("template", "Choose one of your center's report templates.") from None
    name = dict(template_choices.templates_for(center)).get(wanted)
    if name is None:  # another center's, a group's, retired or unknown: the same answer for each
        raise _err("template", "Choose one of your center's report templates.")
    return wanted, name


def _validated(data: RuleData, center: Organization) -> dict:
    if data.trigger not in OverflowRule.Trigger.values:
        raise _err("trigger", f"Choose one of: {', '.join(OverflowRule.Trigger.values)}.")
    if data.priority not in Priority.values:
        raise _err("priority", f"Choose one of: {', '.join(Priority.values)}.")
    if data.audience not in AUDIENCES:
        raise _err("audience", f"Choose one of: {', '.join(AUDIENCES)}.")
    modality = (data.modality or "").strip().upper()
    if len(modality) > 16:
        raise _err("modality", "A DICOM modality code is at most 16 characters (e.g. CT).")
    values = {"trigger": data.trigger, "modality": modality, "priority": data.priority, "audience": data.audience,
              "paused": bool(data.paused), "weekdays": [], "starts": None, "ends": None, "minutes": None,
              "backlog": None}
    values["template"], values["template_name"] = _template(center, data.template)
    if data.trigger == OverflowRule.Trigger.HOURS:
        starts, ends = _clock("starts", data.starts), _clock("ends", data.ends)
        if starts == ends:
            raise _err("ends", "From and to are the same time: the window is empty.")
        try:
            weekdays = sorted({int(d) for d in (data.weekdays or [])})
        except (TypeError, ValueError):
            raise _err("weekdays", "Weekdays are numbers from 0 (Monday) to 6 (Sunday).") from None
        if any(d < 0 or d > 6 for d in weekdays):
            raise _err("weekdays", "Weekdays are numbers from 0 (Monday) to 6 (Sunday).")
        values.update(starts=starts, ends=ends, weekdays=weekdays)
    elif data.trigger == OverflowRule.Trigger.UNREAD:
        values["minutes"] = _positive("minutes", data.minutes, "minutes")
    else:
        values["backlog"] = _positive("backlog", data.backlog, "studies")
    return values


def _center_admin(actor: Actor, center: Organization | None) -> Organization:
    if center is None or not policy.can_manage_settings(actor, center):
        raise NotFound()
    return center


def rule_of(actor: Actor, public_id) -> OverflowRule:
    """One of the actor's active center's rules (another center's: 404)."""
    center = _center_admin(actor, actor.active_organization)
    rule = OverflowRule.objects.filter(center=center, public_id=public_id).first()
    if rule is None:
        raise NotFound("Rule not found.")
    return rule


@transaction.atomic
def overflow_rule_create(*, actor: Actor, center: Organization, data: RuleData,
                         request: HttpRequest | None = None) -> OverflowRule:
    """A center admin adds a rule (each bad value refused naming its field)."""
    center = _center_admin(actor, center)
    rule = OverflowRule.objects.create(center=center, created_by=actor.user, **_validated(data, center))
    audit_record(action="overflow_rule.created", actor=actor.user, request=request, organization=center,
                 object_type="marketplace.overflowrule", object_id=str(rule.public_id),
                 extra={"rule": overflow.sentence(rule)})
    overflow.forget_rules(center.pk)
    return rule


@transaction.atomic
def overflow_rule_update(*, actor: Actor, rule: OverflowRule, data: RuleData,
                         request: HttpRequest | None = None) -> OverflowRule:
    """A center admin edits a rule; what it posted before stays posted."""
    rule = rule_of(actor, rule.public_id)
    for name, value in _validated(data, rule.center).items():
        setattr(rule, name, value)
    rule.save()
    audit_record(action="overflow_rule.updated", actor=actor.user, request=request, organization_id=rule.center_id,
                 object_type="marketplace.overflowrule", object_id=str(rule.public_id),
                 extra={"rule": overflow.sentence(rule)})
    overflow.forget_rules(rule.center_id)
    return rule


@transaction.atomic
def overflow_rule_pause(*, actor: Actor, rule: OverflowRule, paused: bool,
                        request: HttpRequest | None = None) -> OverflowRule:
    """Pause or resume a rule (a paused rule posts nothing, on ingest or by the clock)."""
    rule = rule_of(actor, rule.public_id)
    rule.paused = paused
    rule.save(update_fields=["paused", "updated_at"])
    audit_record(action="overflow_rule.paused" if paused else "overflow_rule.resumed", actor=actor.user,
                 request=request, organization_id=rule.center_id, object_type="marketplace.overflowrule",
                 object_id=str(rule.public_id))
    overflow.forget_rules(rule.center_id)
    return rule


@transaction.atomic
def overflow_rule_delete(*, actor: Actor, rule: OverflowRule, request: HttpRequest | None = None) -> None:
    """Delete a rule; one that already posted is paused instead (its postings keep naming it)."""
    rule = rule_of(actor, rule.public_id)
    if rule.postings.exists():
        rule.paused = True
        rule.save(update_fields=["paused", "updated_at"])
    else:
        rule.delete()
    audit_record(action="overflow_rule.deleted", actor=actor.user, request=request, organization_id=rule.center_id,
                 object_type="marketplace.overflowrule", object_id=str(rule.public_id))
    overflow.forget_rules(rule.center_id)


# --- the center's "read locally" mark ---------------------------------------------------------------------

@transaction.atomic
def study_mark_read_locally(*, actor: Actor, study: Study, request: HttpRequest | None = None) -> LocalRead:
    """The center read this study itself: no rule will post it. Marking again changes nothing."""
    if study.deleted_at is not None or not policy.can_post(actor, study.organization):
        raise NotFound("Study not found.")
    mark, created = LocalRead.objects.get_or_create(study=study, defaults={"marked_by": actor.user})
    if created:
        audit_record(action="study.read_locally", actor=actor.user, request=request,
                     organization_id=study.organization_id, object_type="studies.study",
                     object_id=str(study.public_id))
    return mark


# --- posting ---------------------------------------------------------------------------------------------

def _post(rule: OverflowRule, study: Study, now: datetime) -> ReadRequest | None:
    """Post one study for one rule, unless something (another rule, a person, a mark) got there first."""
    try:
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            if (ReadRequest.objects.filter(study=locked).exists() or LocalRead.objects.filter(study=locked).exists()
                    or OverflowPosting.objects.filter(study=locked).exists()):
                return None
            data = PostData(study=locked, priority=rule.priority, audience=Audience.MARKETPLACE,
                            special_instructions=f"Posted automatically by the rule: {overflow.sentence(rule)}.")
            # Marketplace audience: the center's contract and preferred readers form the first tier, then it widens.
            read_request, _ = read_request_create(actor=ANONYMOUS, center=rule.center, data=data, now=now)
            OverflowPosting.objects.create(rule=rule, study=locked, read_request=read_request)
            if rule.template:  # reporting opens the reader's draft on it (when usable for the read)
                ReadRequest.objects.filter(pk=read_request.pk).update(requested_template=rule.template)
                read_request.requested_template = rule.template
            if rule.audience == "marketplace":
                from marketplace.services.offers import read_request_widen

                read_request_widen(read_request=read_request, at=now, reason="overflow rule: everyone at once")
            return read_request
    except IntegrityError:
        return None  # posted meanwhile by another process
    except ApplicationError as exc:  # e.g. no jurisdiction yet: a person has to post it
        logger.info("overflow rule %s could not post study %s: %s", rule.pk, study.pk, exc)
        return None


def _post_all(rule: OverflowRule, studies: list[Study], now: datetime) -> list[ReadRequest]:
    posted = [_post(rule, study, now) for study in studies[:MAX_POSTS_PER_RULE_RUN]]
    return [r for r in posted if r is not None]


def on_studies_received(*, organization_id: int, study_ids: list[int], source: str) -> None:
    """The ingest hook: post inline for an hours rule whose window is open now; the clock handles the others.
    With no rule open now, or for a study checked moments ago (its earlier instances), it costs the (cached)
    rules lookup alone."""
    rules = [r for r in overflow.active_rules(organization_id) if r.trigger == OverflowRule.Trigger.HOURS]
    if not rules:
        return
    now = timezone.now()
    center = rules[0].center  # fetched once per cached rule list
    for rule in rules:
        fresh = overflow.unchecked(rule, study_ids)
        if fresh and overflow.in_hours(rule, now, center.time_zone):
            _post_all(rule, overflow.hours_due(rule, center, study_ids=fresh), now)
            overflow.mark_checked(rule, fresh)


def overflow_tick(now: datetime | None = None) -> int:
    """The beat, every minute: unread and backlog rules, and hours rules' arrivals the ingest hook missed.
    Returns how many studies were posted. Idempotent: a posted study is never a candidate again."""
    now = now or timezone.now()
    count = 0
    for rule in OverflowRule.objects.filter(paused=False).select_related("center").order_by("created_at", "id"):
        if rule.trigger == OverflowRule.Trigger.UNREAD:
            due = overflow.unread_due(rule, now)
        elif rule.trigger == OverflowRule.Trigger.BACKLOG:
            due = overflow.backlog_due(rule, now)
        else:
            due = overflow.hours_due(rule, rule.center, since=now - HOURS_CATCH_UP)
        count += len(_post_all(rule, due, now))
    return count


def recent_postings(center: Organization, limit: int = 25) -> list[OverflowPosting]:
    """The center's latest automatic postings with the rule that posted each (the rules page)."""
    return list(OverflowPosting.objects.filter(rule__center=center).select_related("rule", "study", "read_request")
                .order_by("-created_at", "-id")[:limit])
