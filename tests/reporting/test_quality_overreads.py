"""Overreads (issue 16, item 1): the overreader's signed verdict, the original reader told and answering once,
the addendum a significant difference asks for, a named senior reader, and two-level reads held until the
second reader signs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Notification
from core.errors import ApplicationError
from marketplace.models import Audience, Kind, Offer, ReadRequest, Status
from reporting.models import Delivery, Report
from reporting.quality import overreads
from reporting.quality_models import Agreement, OverreadReply
from reporting.seed_templates import OVERREAD_AGREEMENT
from reporting.services import reports
from tests.marketplace.helpers import actor, post
from tests.reporting.conftest import assigned_read
from tests.reporting.quality_helpers import claim, outside_reader, overread_of, signed_primary, write_and_sign

pytestmark = pytest.mark.django_db


def _overread_signed(cast, original, agreement: str, **post_fields):
    senior = outside_reader(name="Dr Senior Overreader")
    overread = claim(senior.user, overread_of(cast, original, **post_fields))
    report = write_and_sign(senior.user, overread, fields={OVERREAD_AGREEMENT: agreement},
                            sections={"impression": "The contusion is a partial volume artefact."})
    return senior, report


def test_a_significant_difference_is_recorded_told_to_the_original_reader_and_asks_for_an_addendum(
        cast, django_capture_on_commit_callbacks):
    original = signed_primary(cast)
    with django_capture_on_commit_callbacks(execute=True):
        senior, overread_report = _overread_signed(cast, original, Agreement.SIGNIFICANT)
    assert overread_report.template.name == "Overread"  # chosen by the read's kind
    reply = OverreadReply.objects.get(report=overread_report)
    assert (reply.original_report, reply.agreement, reply.level) == (original, "significant", 1)
    assert "partial volume artefact" in reply.comment
    assert reply.addendum_requested_at is not None
    assert reply.addendum is None
    told = Notification.objects.get(user=cast.radiologist, url=reverse("overread_reply", args=[reply.public_id]))
    assert "significant difference" in told.title
    assert "addendum" in told.title
    # The overread is a report to the center like any other: announced and delivered.
    assert Notification.objects.filter(user=cast.center_admin, title__startswith="Report signed").count() == 2
    assert Delivery.objects.filter(report=overread_report).count() == 4
    # The original reader's addendum answers the request.
    addendum = reports.addendum_sign(actor=actor(cast.radiologist), report=original, text="Contusion withdrawn.",
                                     second_factor_age=1)
    reply.refresh_from_db()
    assert reply.addendum == addendum


def test_the_original_reader_answers_once_and_nobody_else_can(cast):
    original = signed_primary(cast)
    senior, overread_report = _overread_signed(cast, original, Agreement.MINOR)
    reply = OverreadReply.objects.get(report=overread_report)
    assert reply.addendum_requested_at is None  # a minor difference asks for nothing by itself
    for someone in (senior.user, cast.center_admin):
        with pytest.raises(ApplicationError) as refused:
            overreads.overread_answer(actor=actor(someone), reply=reply, text="Not mine to answer.")
        assert refused.value.status_code == 404
    with pytest.raises(ApplicationError) as empty:
        overreads.overread_answer(actor=actor(cast.radiologist), reply=reply, text="   ")
    assert "answer" in empty.value.fields
    overreads.overread_answer(actor=actor(cast.radiologist), reply=reply, text="Agreed: I will add an addendum.")
    reply.refresh_from_db()
    assert reply.answer.startswith("Agreed")
    assert reply.answered_by == cast.radiologist
    assert Notification.objects.filter(user=senior.user, title__contains="answered").exists()
    with pytest.raises(ApplicationError) as twice:
        overreads.overread_answer(actor=actor(cast.radiologist), reply=reply, text="Again.")
    assert twice.value.code == "already_answered"
    # The center may ask for an addendum after a minor difference; once.
    overreads.overread_request_addendum(actor=actor(cast.center_admin), reply=reply)
    reply.refresh_from_db()
    assert reply.addendum_requested_at is not None
    with pytest.raises(ApplicationError):
        overreads.overread_request_addendum(actor=actor(cast.center_admin), reply=reply)


def test_an_agreeing_overread_asks_for_no_addendum(cast):
    original = signed_primary(cast)
    _, overread_report = _overread_signed(cast, original, Agreement.AGREE)
    reply = OverreadReply.objects.get(report=overread_report)
    with pytest.raises(ApplicationError) as refused:
        overreads.overread_request_addendum(actor=actor(cast.center_admin), reply=reply)
    assert refused.value.code == "agrees"


def test_an_overread_is_never_offered_to_the_original_reader_or_their_group_and_may_go_to_a_named_reader(cast):
    original = signed_primary(cast)
    colleague = outside_reader(group=cast.group)
    stranger = outside_reader()
    offered = set(Offer.objects.filter(read_request=overread_of(cast, original)).values_list("radiologist", flat=True))
    assert stranger.pk in offered
    assert not offered & {colleague.pk, original.radiologist_id}
    senior = outside_reader(name="Dr Named Senior")
    direct = overread_of(cast, original, audience=Audience.DIRECT, direct_radiologist=senior)
    assert list(Offer.objects.filter(read_request=direct).values_list("radiologist", flat=True)) == [senior.pk]


def test_an_overread_of_an_unsigned_report_is_refused_naming_the_field(cast):
    in_progress = assigned_read(cast)
    reports.report_open(actor=actor(cast.radiologist), read_request=in_progress)
    with pytest.raises(ApplicationError) as refused:
        post(cast.center_admin, in_progress.study, kind=Kind.OVERREAD, original_request=in_progress)
    assert "original_request" in refused.value.fields
    assert refused.value.code == "not_signed"


def test_the_overread_workspace_shows_the_original_report_with_its_reader(cast, login):
    original = signed_primary(cast)
    senior = outside_reader(name="Dr Senior Overreader")
    overread = claim(senior.user, overread_of(cast, original))
    page = login(senior.user).get(reverse("report_workspace", args=[overread.public_id])).content.decode()
    assert 'id="report-under-review"' in page
    assert "Small left frontal contusion" in page
    assert original.signer_name in page  # an overread is not blinded


def test_a_two_level_read_is_held_until_the_second_reader_signs(cast, login,
                                                                 django_capture_on_commit_callbacks):
    senior = outside_reader(name="Dr Second Level")  # on shift before the second level is offered
    first = write_and_sign(cast.radiologist, assigned_read(cast, levels=2))
    assert first.status == Report.Status.FINAL
    assert overreads.is_held(first)
    second_level = ReadRequest.objects.get(original_request=first.read_request, kind=Kind.OVERREAD)
    assert second_level.status == Status.OPEN
    assert second_level.deadline >= first.read_request.deadline
    assert not Delivery.objects.filter(report=first).exists()
    assert Notification.objects.filter(user=cast.center_admin, title__startswith="Level 1 of 2").exists()
    assert not Notification.objects.filter(user=cast.center_admin, title__startswith="Report signed").exists()
    client = login(cast.center_admin)
    panel = client.get(reverse("read_request_report", args=[first.read_request.public_id])).content.decode()
    assert 'id="report-held"' in panel
    assert 'id="report-downloads"' not in panel
    held_pdf = client.get(reverse("read_request_report_download", args=[first.read_request.public_id, "pdf"]))
    assert held_pdf.status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        second = write_and_sign(senior.user, claim(senior.user, second_level), fields={OVERREAD_AGREEMENT: "agree"})
    assert OverreadReply.objects.get(report=second).level == 2
    assert not overreads.is_held(first)
    assert Delivery.objects.filter(report=first).count() == 4
    assert Delivery.objects.filter(report=second).count() == 4
    chain = client.get(reverse("read_request_quality", args=[first.read_request.public_id])).content.decode()
    assert chain.count('class="rq-chain-step"') == 2
    assert "Level 2" in chain
    assert "Agree" in chain
    # A later, ordinary overread of the same read is level 1 of its own, not a second level again.
    assert not overreads.is_second_level(overread_of(cast, first))


def test_levels_are_one_or_two_and_only_for_a_primary_read(cast):
    original = signed_primary(cast)
    for fields in ({"levels": 3}, {"levels": 2, "kind": Kind.OVERREAD, "original_request": original.read_request}):
        with pytest.raises(ApplicationError) as refused:
            post(cast.center_admin, original.read_request.study, **fields)
        assert "levels" in refused.value.fields
