"""The template an overflow rule names (issue 18, item 3): the rule keeps it and says it in its sentence, the read
it posts carries it, the reader's draft opens on it (when it is usable for the read), and a template the center
may not name — another center's — is refused naming ``template``, in the service and on the rules page.

Templates belong to reporting, above the marketplace: the rule form's list comes from the provider reporting
registers at start-up (``marketplace.template_choices``), which these tests go through as deployed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.errors import ApplicationError
from marketplace import overflow
from marketplace.coverage_models import OverflowRule
from marketplace.models import Offer, ReadRequest
from marketplace.services.offers import offer_claim
from marketplace.services.overflow import RuleData, overflow_rule_create, overflow_tick
from marketplace.template_choices import templates_for
from reporting.services.reports import report_open
from tests.marketplace.helpers import actor, make_radiologist
from tests.marketplace.test_overflow import _window, ingest_study
from tests.reporting.conftest import make_template

pytestmark = pytest.mark.django_db


def _rule(cast, template=None) -> OverflowRule:
    starts, ends = _window(cast.center, open_now=True)
    data = RuleData(trigger="hours", starts=starts, ends=ends, modality="CT",
                    template=str(template.public_id) if template else None)
    return overflow_rule_create(actor=actor(cast.center_admin), center=cast.center, data=data)


def _posted_and_opened(cast):
    """A CT arrives, the clock's sweep posts it, the cast's radiologist claims it and opens the draft."""
    make_radiologist(user=cast.radiologist)
    study = ingest_study(cast.center, modality="CT")  # the hook left to the clock: ``overflow_tick`` posts it
    assert overflow_tick() == 1
    read_request = ReadRequest.objects.get(study=study)
    offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request,
                                                                      radiologist__user=cast.radiologist))
    read_request.refresh_from_db()
    return read_request, report_open(actor=actor(cast.radiologist), read_request=read_request)


def test_the_rules_template_is_carried_onto_the_read_and_the_draft_opens_on_it(cast):
    automatic = make_template("Test CT head", modalities=("CT",), body_parts=())  # what CT reads get otherwise
    asked = make_template("Lakeside overflow (any modality)", modalities=(), body_parts=(), owner=cast.center)
    rule = _rule(cast, template=asked)
    assert (rule.template, rule.template_name) == (asked.public_id, asked.name)
    read_request, report = _posted_and_opened(cast)
    assert read_request.requested_template == asked.public_id
    assert "written on the template “Lakeside overflow (any modality)”" in read_request.special_instructions
    assert report.template == asked
    assert automatic.active  # the automatic choice was there and was passed over


def test_without_a_template_the_draft_opens_on_the_automatic_choice(cast):
    automatic = make_template("Test CT head", modalities=("CT",), body_parts=())
    make_template("Lakeside overflow (any modality)", modalities=(), body_parts=(), owner=cast.center)
    rule = _rule(cast)
    assert "template" not in overflow.sentence(rule)
    read_request, report = _posted_and_opened(cast)
    assert read_request.requested_template is None
    assert report.template == automatic


def test_a_requested_template_unusable_for_the_read_gives_way_to_the_automatic_choice(cast):
    automatic = make_template("Test CT head", modalities=("CT",), body_parts=())
    mr_only = make_template("Lakeside MR", modalities=("MR",), body_parts=(), owner=cast.center)
    _rule(cast, template=mr_only)
    _, report = _posted_and_opened(cast)
    assert report.template == automatic  # an MR template does not fit a CT


def test_another_centers_template_is_refused_naming_template(cast):
    theirs = make_template("Harbor CT", owner=cast.other_center)
    mine = make_template("Lakeside CT", owner=cast.center)
    assert [name for _, name in templates_for(cast.center) if "CT" in name] == ["Lakeside CT"]
    for bad in (theirs.public_id, "not-a-uuid"):
        with pytest.raises(ApplicationError) as refused:
            overflow_rule_create(actor=actor(cast.center_admin), center=cast.center,
                                 data=RuleData(trigger="unread", minutes=30, template=str(bad)))
        assert set(refused.value.fields) == {"template"}
    assert not OverflowRule.objects.exists()
    assert _rule(cast, template=mine).template == mine.public_id


def test_the_rules_page_lists_the_centers_templates_and_refuses_another_centers(cast, login):
    theirs = make_template("Harbor CT", owner=cast.other_center)
    mine = make_template("Lakeside CT", owner=cast.center)
    client = login(cast.center_admin)
    page = client.get(reverse("overflow_rules")).content.decode()
    assert f'value="{mine.public_id}"' in page
    assert "Harbor CT" not in page
    form = {"trigger": "backlog", "backlog": "20", "priority": "routine", "audience": "preferred"}
    refused = client.post(reverse("overflow_rules"), {**form, "template": str(theirs.public_id)})
    assert refused.status_code == 400
    assert refused.context["form"].errors.keys() == {"template"}
    assert client.post(reverse("overflow_rules"), {**form, "template": str(mine.public_id)}).status_code == 302
    rule = OverflowRule.objects.get(center=cast.center)
    assert rule.template == mine.public_id
    assert "written on the template “Lakeside CT”" in client.get(reverse("overflow_rules")).content.decode()
