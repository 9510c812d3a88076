"""A center admin's overflow rules page (issue 18): the rules as sentences, add / edit / pause / delete, the
recent automatic postings with the rule that posted each; and the center's "read locally" button.

The "read locally" button lives on the read-request page of one study (a marketplace page): the study page
belongs to ``studies``, which may not import the marketplace, and a template tag feeding an include there
would still couple the study page to a marketplace URL. One marketplace view, linked from marketplace pages,
keeps the layering plain.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace import overflow, policy
from marketplace.coverage_models import OverflowRule
from marketplace.forms import OverflowRuleForm
from marketplace.services import overflow as services
from studies import selectors as study_selectors

FIELDS = ("trigger", "modality", "starts", "ends", "weekdays", "minutes", "backlog", "priority", "audience",
          "template")


def _center(actor):
    center = actor.active_organization
    if center is None or not policy.can_manage_settings(actor, center):
        raise NotFound()
    return center


def _data(cleaned: dict, *, paused: bool = False) -> services.RuleData:
    return services.RuleData(**{name: cleaned.get(name) for name in FIELDS}, paused=paused)


def _initial(rule: OverflowRule) -> dict:
    return {"trigger": rule.trigger, "modality": rule.modality, "weekdays": [str(d) for d in rule.weekdays],
            "starts": f"{rule.starts:%H:%M}" if rule.starts else "", "ends": f"{rule.ends:%H:%M}" if rule.ends else "",
            "minutes": rule.minutes or "", "backlog": rule.backlog or "", "priority": rule.priority,
            "audience": rule.audience, "template": str(rule.template or "")}


def _render(request, center, form, editing=None):
    rules = list(OverflowRule.objects.filter(center=center).order_by("created_at", "id"))
    return render(request, "marketplace/overflow_rules.html", {
        "center": center, "form": form, "editing": editing,
        "rules": [(rule, overflow.sentence(rule)) for rule in rules],
        "postings": [(p, overflow.sentence(p.rule)) for p in services.recent_postings(center)],
    }, status=400 if form.is_bound and form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def overflow_rules(request):
    actor = actor_of(request)
    center = _center(actor)
    form = OverflowRuleForm(request.POST or None, center=center)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.overflow_rule_create(actor=actor, center=center, data=_data(form.cleaned_data), request=request)
        if call.ok:
            messages.success(request, "Overflow rule added.")
            return redirect("overflow_rules")
    return _render(request, center, form)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def overflow_rule_edit(request, public_id):
    actor = actor_of(request)
    rule = services.rule_of(actor, public_id)
    form = OverflowRuleForm(request.POST or None, initial=_initial(rule), center=rule.center)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.overflow_rule_update(actor=actor, rule=rule, data=_data(form.cleaned_data, paused=rule.paused),
                                          request=request)
        if call.ok:
            messages.success(request, "Overflow rule saved.")
            return redirect("overflow_rules")
    return _render(request, rule.center, form, editing=rule)


@login_required
@require_POST
@page_errors
def overflow_rule_pause(request, public_id):
    actor = actor_of(request)
    rule = services.rule_of(actor, public_id)
    services.overflow_rule_pause(actor=actor, rule=rule, paused=not rule.paused, request=request)
    messages.success(request, "Rule resumed." if rule.paused else "Rule paused.")
    return redirect("overflow_rules")


@login_required
@require_POST
@page_errors
def overflow_rule_delete(request, public_id):
    actor = actor_of(request)
    rule = services.rule_of(actor, public_id)
    services.overflow_rule_delete(actor=actor, rule=rule, request=request)
    messages.success(request, "Rule deleted (one that already posted is kept paused, so its postings name it).")
    return redirect("overflow_rules")


@login_required
@require_POST
@page_errors
def study_read_locally(request, public_id):
    """The center read this study itself: no overflow rule will post it."""
    actor = actor_of(request)
    study = study_selectors.study_list(actor=actor).filter(public_id=public_id).first()
    if study is None:
        raise NotFound()
    services.study_mark_read_locally(actor=actor, study=study, request=request)
    messages.success(request, "Marked as read locally: no overflow rule will post it.")
    return redirect("study_detail", public_id=study.public_id)
