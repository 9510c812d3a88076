"""The demo world's marketplace (issue 13, point 9): each case of the issue exists in its state, made
through the real services, and a second ``load_demo`` creates nothing."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts import policy
from accounts.models import License, MqsaQualification, Organization, RadiologistProfile, User
from marketplace.demo import DEMO_DOMAIN, DEMO_READS
from marketplace.models import (
    Assignment,
    CenterSettings,
    MinimumRate,
    Offer,
    ReadingHours,
    ReadRequest,
    ReadRequestStatusChange,
    Status,
    TimeOff,
)
from marketplace.pricing import quote_for
from marketplace.selectors import assignment_list
from marketplace.services.matching import match
from studies.selectors import study_get
from tests.marketplace.helpers import load_demo


def demo_read(key: str) -> ReadRequest:
    return ReadRequest.objects.select_related("center", "study").get(idempotency_key=f"demo:{key}")


def reader(last_name: str) -> RadiologistProfile:
    return RadiologistProfile.objects.select_related("user").get(user__email=f"dr.{last_name}{DEMO_DOMAIN}")


def open_offer_readers(read_request: ReadRequest) -> set[int]:
    return set(Offer.objects.filter(read_request=read_request, status=Offer.Status.OPEN)
               .values_list("radiologist_id", flat=True))


def test_stat_head_ct_in_texas_is_open_with_readers_on_shift_and_offered_only_to_them(demo_output):
    stat = demo_read("lakeside-ct-head-stat")
    result = match(stat)

    assert (stat.status, stat.priority, stat.jurisdiction, stat.body_part) == ("open", "stat", "US-TX", "HEAD")
    assert stat.center.slug == "lakeside"
    assert stat.deadline - stat.published_at == timedelta(minutes=45)  # Lakeside's own STAT turnaround
    assert not stat.no_on_shift_reader
    assert result.on_shift  # whatever the hour the demo is loaded
    on_shift = {c.radiologist.pk for c in match(stat, at=stat.published_at).on_shift}  # when it was posted
    assert open_offer_readers(stat)
    assert open_offer_readers(stat) <= on_shift
    assert [s.study_description for s in stat.comparison_studies.all()] == ["MRI BRAIN WITHOUT CONTRAST"]
    assert "STAT head CT" in demo_output
    assert "eligible reader(s) on shift now" in demo_output


def test_mri_knee_needs_musculoskeletal_and_only_such_readers_are_offered_it(demo_output):
    knee = demo_read("summit-mr-knee")
    result = match(knee)

    assert (knee.status, knee.subspecialty, knee.body_part, knee.modalities) == (
        "open", "musculoskeletal", "KNEE", ["MR"])
    assert result.candidates
    assert all("musculoskeletal" in c.radiologist.subspecialties for c in result.candidates)
    assert open_offer_readers(knee) == {reader("alvarez").pk}
    excluded = {c.radiologist.pk: c.reasons for c in result.excluded}
    assert any(r.startswith("license US-CO expired") for r in excluded[reader("rossi").pk])
    assert "no subspecialty musculoskeletal" in excluded[reader("chen").pk]
    # "until <when>" or, on days when his week of time off hides every window ahead, "through the coming week"
    assert any(r.startswith("on time off") for r in excluded[reader("chen").pk]), excluded[reader("chen").pk]


def test_screening_mammogram_is_seen_only_by_mqsa_qualified_readers(demo_output):
    mammogram = demo_read("lakeside-mg-screening")
    result = match(mammogram, everyone=True)
    today = timezone.now().date()

    assert (mammogram.status, mammogram.modalities) == ("open", ["MG"])
    assert result.candidates
    for candidate in result.candidates:
        assert MqsaQualification.objects.filter(radiologist=candidate.radiologist, status="verified",
                                                expires_on__gte=today).exists()
    assert open_offer_readers(mammogram) == {c.radiologist.pk for c in result.candidates}
    okafor = next(c for c in result.excluded if c.radiologist == reader("okafor"))
    assert "no MQSA qualification" in okafor.reasons


def test_canadian_request_is_seen_only_by_ontario_licensees(demo_output):
    canadian = demo_read("mapleleaf-ct-abdomen")
    result = match(canadian, everyone=True)

    assert (canadian.status, canadian.jurisdiction, canadian.currency) == ("open", "CA-ON", "CAD")
    assert result.candidates
    for candidate in result.candidates:
        assert License.objects.filter(radiologist=candidate.radiologist, country="CA", region="ON",
                                      status="verified").exists()
    assert open_offer_readers(canadian) == {reader("patel").pk}
    texan = next(c for c in result.excluded if c.radiologist == reader("whitfield"))
    assert "no verified license for CA-ON" in texan.reasons


def test_okafor_reads_the_ct_chest_with_the_full_access_his_claim_gave_him(demo_output):
    okafor = reader("okafor")
    actor = policy.actor_for_user(okafor.user)
    ct_chest = demo_read("lakeside-ct-chest")

    assert (ct_chest.status, ct_chest.assignee) == (Status.IN_PROGRESS, okafor)
    assignment = Assignment.objects.get(read_request=ct_chest, status=Assignment.Status.ACTIVE)
    assert assignment.offer.status == Offer.Status.CLAIMED
    assert (assignment.grant.level, assignment.grant.user) == ("full", okafor.user)
    assert assignment.grant.is_active()
    assert assignment in assignment_list(actor=actor)
    assert study_get(actor=actor, study_uid=ct_chest.study.study_instance_uid).level == "full"  # the viewer opens it
    assert list(ReadRequestStatusChange.objects.filter(read_request=ct_chest).values_list("to_status", flat=True)) \
        == ["open", "assigned", "in_progress"]
    # The MRI brain is offered to him: a preview from a real open offer.
    mr_brain = demo_read("lakeside-mr-brain")
    offer = Offer.objects.get(read_request=mr_brain, radiologist=okafor)
    assert (offer.status, offer.grant.level) == (Offer.Status.OPEN, "preview")
    assert study_get(actor=actor, study_uid=mr_brain.study.study_instance_uid).level == "preview"
    # With the chest X-ray also claimed, he is at capacity.
    assert Assignment.objects.filter(radiologist=okafor, status="active").count() == okafor.max_concurrent_cases == 2
    assert "dr.okafor (full access, opens in the viewer; 2 of 2 reads at once)" in demo_output


def test_an_unclaimed_request_expired_past_its_deadline(demo_output):
    expired = demo_read("bayview-mg-expired")

    assert expired.status == Status.EXPIRED
    assert expired.deadline < timezone.now()
    last = ReadRequestStatusChange.objects.filter(read_request=expired).last()
    assert (last.from_status, last.to_status, last.actor) == ("open", "expired", None)
    assert not Offer.objects.filter(read_request=expired, status=Offer.Status.OPEN).exists()
    assert not Assignment.objects.filter(read_request=expired).exists()


def test_the_explain_request_shows_at_least_five_different_reasons(demo_output):
    explained = demo_read("bayview-ct-head")
    result = match(explained)
    reasons = result.reasons_seen()

    assert len(reasons) >= 5, reasons
    quote = quote_for(center=explained.center, modalities=["CT"], priority="routine", kind="primary").cents
    assert {"at capacity (2 of 2)", f"minimum rate 6000 cents above quote {quote}",
            "blocked by Bayview Diagnostic Imaging", "no reading hours entered"} <= reasons
    assert result.candidates  # someone can still read it
    assert f"/reads/{explained.public_id}/candidates/" in demo_output


def test_demo_readers_have_hours_rates_and_time_off_and_centers_their_settings(demo_output):
    radiologists = RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN)
    with_hours = set(ReadingHours.objects.values_list("radiologist_id", flat=True))
    assert {p.pk for p in radiologists} - with_hours == {reader("dubois").pk}
    overnight = ReadingHours.objects.filter(radiologist=reader("nakamura"))
    assert overnight.count() == 7
    assert all(h.ends <= h.starts for h in overnight)
    now = timezone.now()
    assert TimeOff.objects.filter(radiologist=reader("chen"), starts_at__lte=now, ends_at__gt=now).exists()
    quote = quote_for(center=Organization.objects.get(slug="bayview"), modalities=["CT"], priority="routine",
                      kind="primary").cents
    assert MinimumRate.objects.get(radiologist=reader("brennan"), modality="CT", priority="routine").cents > quote
    lakeside = CenterSettings.objects.get(center__slug="lakeside")
    assert lakeside.stat_minutes == 45
    assert list(lakeside.preferred_radiologists.all()) == [reader("okafor")]
    assert list(CenterSettings.objects.get(center__slug="bayview").blocked_radiologists.all()) == [reader("mensah")]


def test_a_second_load_demo_creates_no_read_request_offer_or_assignment(demo_output):
    def snapshot():
        return (sorted(ReadRequest.objects.values_list("pk", "status", "updated_at")),
                sorted(Offer.objects.values_list("pk", "status")),
                sorted(Assignment.objects.values_list("pk", "status")),
                sorted(ReadingHours.objects.values_list("pk", flat=True)),
                sorted(TimeOff.objects.values_list("pk", flat=True)),
                sorted(MinimumRate.objects.values_list("pk", "cents")))

    before = snapshot()
    assert ReadRequest.objects.filter(idempotency_key__in=[f"demo:{r.key}" for r in DEMO_READS]).count() == 9

    output = load_demo()

    assert snapshot() == before
    assert "Demo world ready: 0 created, 0 updated" in output
    assert User.objects.filter(email__endswith=DEMO_DOMAIN).count() == 12
