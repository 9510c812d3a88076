"""Blinded peer review (issue 16, "Bad input" and "Tests must show"): every response a reviewer receives on the
way through a review — pages, htmx fragments, API, DICOMweb (headers, JSON, Part 10 bytes), downloads — is
searched for the original reader's name, DICOM name, email and NPI; everything the original reader sees
afterwards is searched for the reviewer's. Then the refusals: the original read, self-review, off-scale scores."""

from __future__ import annotations

import random
import uuid

import pytest
from django.urls import reverse

from accounts.models import Organization
from accounts.npi import is_valid_npi
from marketplace.models import Assignment, Offer
from reporting.quality import sampling
from reporting.quality_models import PeerReview, QualitySettings
from reporting.seed_templates import RADPEER_SCORE
from studies.models import Instance
from tests.factories import MembershipFactory, OrganizationFactory
from tests.marketplace.helpers import make_radiologist
from tests.reporting.blinding_helpers import Person, Visit, Walk, become, keep_mail
from tests.reporting.quality_helpers import outside_reader, signed_primary

pytestmark = pytest.mark.django_db

JSON = "application/dicom+json"
PART10 = 'multipart/related; type="application/dicom"'

ORIGINAL = Person("Thaddeus", "Quenneville", "t.quenneville@lakeside-reads.test", "1738492655")
REVIEWER = Person("Philippa", "Wexcombe", "p.wexcombe@harbor-reads.test", "1627384955")
ARBITER = Person("Ignatius", "Brackenridge", "i.brackenridge@qa-reads.test", "1846293755")


def dicomweb_visits(study, *, shown: bool = True) -> list[Visit]:
    """QIDO with every field, WADO metadata and Part 10 retrieve of the study, and of each of its series and
    instances — the stored report SR's own URLs among them (a blinded reviewer must get those as 404)."""
    uid = study.study_instance_uid
    everything = {"includefield": "all"}
    visits = [Visit("dicomweb_studies", query={**everything, "StudyInstanceUID": uid}, accept=JSON, shown=shown),
              Visit("dicomweb_study_series", (uid,), everything, JSON, shown=shown),
              Visit("dicomweb_series", query=everything, accept=JSON, shown=shown),
              Visit("dicomweb_study_instances", (uid,), everything, JSON, shown=shown),
              Visit("dicomweb_instances", query=everything, accept=JSON, shown=shown),
              Visit("dicomweb_study_metadata", (uid,), accept=JSON, shown=shown),
              Visit("dicomweb_study", (uid,), accept=PART10, shown=shown),
              Visit("dicomweb_study_thumbnail", (uid,), accept="image/png")]
    for instance in Instance.objects.filter(series__study=study).select_related("series"):
        series_uid, sop = instance.series.series_instance_uid, instance.sop_instance_uid
        visits += [Visit("dicomweb_series_instances", (uid, series_uid), everything, JSON),
                   Visit("dicomweb_series_metadata", (uid, series_uid), accept=JSON),
                   Visit("dicomweb_series_retrieve", (uid, series_uid), accept=PART10),
                   Visit("dicomweb_instance_metadata", (uid, series_uid, sop), accept=JSON),
                   Visit("dicomweb_instance_retrieve", (uid, series_uid, sop), accept="application/dicom")]
    assert _report_uids(study), "the signed report's SR is not in the study: the walk would prove nothing"
    return visits


def read_visits(read_request) -> list[Visit]:
    """A read request's page, its htmx fragments, its API and its report in every form."""
    rr = read_request.public_id
    visits = [Visit("read_request_detail", (rr,)), Visit("read_request_report", (rr,), htmx=True),
              Visit("read_request_messages", (rr,), htmx=True), Visit("read_request_quality", (rr,), htmx=True),
              Visit("read_request_explain", (rr,)), Visit("api_read_request_candidates", (rr,)),
              Visit("api_read_request_detail", (rr,)), Visit("api_read_request_history", (rr,)),
              Visit("api_read_request_report", (rr,), accept="application/pdf"),
              Visit("api_read_request_report", (rr,), accept="application/fhir+json"),
              Visit("api_read_request_report", (rr,), accept="x-application/hl7-v2+er7"),
              Visit("api_read_request_report", (rr,), accept="application/dicom")]
    return visits + [Visit("read_request_report_download", (rr, form)) for form in ("pdf", "hl7", "fhir", "sr")]


PERSONAL = [Visit("dashboard"), Visit("notification_list", shown=True), Visit("quality_reviews_received"),
            Visit("quality_mine"), Visit("radiologist_worklist", shown=True),
            Visit("radiologist_worklist_rows", htmx=True), Visit("api_read_requests"), Visit("api_offers"),
            Visit("api_assignments"), Visit("api_me"), Visit("audit_log"), Visit("study_list")]


# --- the review, walked --------------------------------------------------------------------------------

@pytest.fixture
def peer_review(cast, django_capture_on_commit_callbacks):
    """The cast radiologist (as ORIGINAL) signs a CT read, its deliveries built (the SR stored in the study);
    the center reviews every report, so it is sampled; REVIEWER, a radiologist of another group, is offered the
    review. An earlier report of the same patient by ORIGINAL, signed before the center's programme began, is
    listed in the review's workspace (blinded too)."""
    assert is_valid_npi(ORIGINAL.npi)
    assert is_valid_npi(REVIEWER.npi)
    become(make_radiologist(user=cast.radiologist), ORIGINAL)
    with django_capture_on_commit_callbacks(execute=True):
        earlier = signed_primary(cast)
    assert sampling.sample_signed_reports(rng=random.Random(16)) == []  # no programme yet
    QualitySettings.objects.create(organization=cast.center, review_basis_points=10_000)
    with django_capture_on_commit_callbacks(execute=True):
        original = signed_primary(cast)
    assert earlier.read_request.study.patient_id == original.read_request.study.patient_id
    other_group = OrganizationFactory(name="Harbor Night Readers", kind=Organization.Kind.RADIOLOGY_GROUP)
    reviewer = become(outside_reader(group=other_group), REVIEWER)  # a radiologist of another group
    (review,) = sampling.sample_signed_reports(rng=random.Random(16))
    return original, review, reviewer, earlier


def _report_uids(study) -> list[tuple[str, str]]:
    return list(Instance.objects.filter(series__study=study, received_via="report")
                .values_list("series__series_instance_uid", "sop_instance_uid"))


def _walk_the_review(cast, login, peer_review, score: str = "1") -> Walk:
    original, review, reviewer, earlier = peer_review
    rr, study = review.read_request, review.read_request.study
    reviewer_walk = Walk(login(reviewer.user))
    reviewer_walk.walk([*PERSONAL, *dicomweb_visits(study, shown=False)])  # offered: a preview of the study
    offer = Offer.objects.get(read_request=rr, radiologist=reviewer)
    reviewer_walk.post("offer_claim", reverse("offer_claim", args=[offer.public_id]))
    assignment = Assignment.objects.get(read_request=rr, radiologist=reviewer, status=Assignment.Status.ACTIVE)
    reviewer_walk.post("assignment_open", reverse("assignment_open", args=[assignment.public_id]))
    reviewer_walk.walk([Visit("report_workspace", (rr.public_id,), shown=True), *read_visits(rr), *PERSONAL,
                        *dicomweb_visits(study), *dicomweb_visits(earlier.read_request.study, shown=False),
                        Visit("viewer_app_route", ("viewer",), {"StudyInstanceUIDs": study.study_instance_uid}),
                        Visit("viewer_app_config"), Visit("study_detail", (study.public_id,))])
    draft = reviewer_walk.get(Visit("report_workspace", (rr.public_id,), shown=True)).context["report"]
    saved = reviewer_walk.post("report_autosave", reverse("report_autosave", args=[rr.public_id]),
                               {"version": draft.version, "sections": {"impression": "Concur."},
                                "fields": {RADPEER_SCORE: score}}, content_type="application/json")
    assert saved.status_code == 200, saved.content
    signed = reviewer_walk.post("report_sign", reverse("report_sign", args=[rr.public_id]),
                                {"version": saved.json()["version"]})
    assert signed.status_code == 302, signed.content[:500]
    review.refresh_from_db()
    assert review.status == (PeerReview.Status.FINAL if score == "1" else PeerReview.Status.ARBITRATION)
    workspace = reviewer_walk.get(Visit("report_workspace", (rr.public_id,), shown=True)).content.decode()
    assert earlier.read_request.study.study_description in workspace  # the earlier report is listed, unsigned
    reviewer_walk.walk([*read_visits(rr), *read_visits(earlier.read_request), *PERSONAL])
    keep_mail(reviewer_walk, REVIEWER)
    return reviewer_walk


def test_nothing_the_reviewer_receives_names_the_original_reader(cast, login, peer_review):
    walk = _walk_the_review(cast, login, peer_review)
    assert walk.answered_badly() == []
    assert len(walk.seen) > 80  # the checklist was walked, not skipped
    assert walk.leaks(ORIGINAL) == []
    # The search can find what it looks for: the reviewer's own pages name the reviewer.
    assert walk.leaks(REVIEWER)


def _arbitrate(cast, login, review, reviewer_walk: Walk) -> Walk:
    """A QA radiologist of the center's programme changes 2b to 2a on the arbitration page, which shows the report
    and the score blinded both ways; the reviewer looks again at everything afterwards."""
    arbiter = become(outside_reader(), ARBITER)
    QualitySettings.objects.get(organization=cast.center).qa_radiologists.add(arbiter)
    qa_walk = Walk(login(arbiter.user))
    qa_walk.walk([Visit("quality_arbitration_queue", shown=True),
                  Visit("quality_arbitration", (review.public_id,), shown=True)])
    qa_walk.post("quality_arbitration", reverse("quality_arbitration", args=[review.public_id]),
                 {"score": "2a", "comment": "Below the size threshold: unlikely significant."})
    review.refresh_from_db()
    assert (review.status, review.final_score) == (PeerReview.Status.FINAL, "2a")
    reviewer_walk.walk([*read_visits(review.read_request), *PERSONAL])
    keep_mail(reviewer_walk, REVIEWER)
    assert reviewer_walk.leaks(ORIGINAL) == []
    return qa_walk


@pytest.mark.parametrize("score", ["1", "2b"])
def test_nothing_the_original_reader_sees_names_the_reviewer(cast, login, peer_review, score):
    """Told at once (1), or after arbitration (2b, changed to 2a): the result, never who reviewed or arbitrated."""
    original, review, _, _ = peer_review
    reviewer_walk = _walk_the_review(cast, login, peer_review, score)
    if score == "2b":
        qa_walk = _arbitrate(cast, login, review, reviewer_walk)
        assert qa_walk.leaks(ORIGINAL) == []
        assert qa_walk.leaks(REVIEWER) == []
    reader_walk = Walk(login(cast.radiologist))
    reader_walk.walk([*PERSONAL, *read_visits(original.read_request),
                      # the review's own request is not theirs: 404, and nothing in the answer either
                      *read_visits(review.read_request)])
    keep_mail(reader_walk, ORIGINAL)
    assert reader_walk.answered_badly() == []
    (received,) = [text for label, _, text in reader_walk.seen if label.startswith("quality_reviews_received")]
    assert f"<strong>{review.final_score}</strong>" in received  # the result is shown, without its author
    assert reader_walk.leaks(REVIEWER) == []
    assert reader_walk.leaks(ARBITER) == []
    assert reader_walk.leaks(ORIGINAL)  # the search can find what it looks for


def test_an_original_reader_who_is_also_the_centers_admin_does_not_learn_the_reviewer(cast, login, peer_review):
    _, review, _, _ = peer_review
    _walk_the_review(cast, login, peer_review)
    MembershipFactory(user=cast.radiologist, organization=cast.center, roles=["admin"])  # a reader-owner
    walk = Walk(login(cast.radiologist))
    walk.walk([Visit("read_request_list"), *read_visits(review.read_request), *PERSONAL])
    assert walk.answered_badly() == []
    assert walk.leaks(REVIEWER) == []


def test_the_same_search_finds_the_reader_where_the_center_is_shown_them(cast, login, peer_review):
    """The control: the center's admin receives the signed report in every form, so the same walk finds the
    original reader in the SR's Part 10 bytes and DICOM JSON, the PDF's text and the HL7 and FHIR messages."""
    original, *_ = peer_review
    walk = Walk(login(cast.center_admin))
    walk.walk([*read_visits(original.read_request), *dicomweb_visits(original.read_request.study)])
    assert walk.answered_badly() == []
    found = walk.leaks(ORIGINAL)
    sr_series, sr_uid = _report_uids(original.read_request.study)[0]
    named = {f"{ORIGINAL.first} {ORIGINAL.last}", ORIGINAL.last, ORIGINAL.npi}
    for where in (f"{sr_uid} application/dicom", f"{sr_series}/metadata", "/report/pdf/", "/report/hl7/",
                  "/report/fhir/", "/report/sr/"):
        assert named <= {secret for label, secret in found if where in label}, where


# --- bad input -----------------------------------------------------------------------------------------

def test_the_reviewer_cannot_open_the_original_read_or_download_its_report(cast, login, peer_review):
    original, review, reviewer, _ = peer_review
    client = login(reviewer.user)
    client.post(reverse("offer_claim", args=[Offer.objects.get(read_request=review.read_request,
                                                                radiologist=reviewer).public_id]))
    rr = original.read_request.public_id
    for visit in [Visit("read_request_detail", (rr,)), Visit("read_request_report", (rr,), htmx=True),
                  Visit("read_request_quality", (rr,), htmx=True), Visit("read_request_messages", (rr,)),
                  Visit("report_workspace", (rr,)), Visit("api_read_request_detail", (rr,)),
                  Visit("api_read_request_report", (rr,)),
                  *[Visit("read_request_report_download", (rr, form)) for form in ("pdf", "hl7", "fhir", "sr")]]:
        response = client.get(visit.url(), HTTP_ACCEPT=visit.accept or "*/*")
        assert response.status_code == 404, (visit.name, response.status_code)
    # The stored report SR, asked for by its UIDs, is "not found" like a missing one.
    study_uid = original.read_request.study.study_instance_uid
    for series_uid, sop in _report_uids(original.read_request.study):
        response = client.get(reverse("dicomweb_instance_retrieve", args=[study_uid, series_uid, sop]),
                              HTTP_ACCEPT="application/dicom")
        assert response.status_code == 404


def test_nobody_reviews_their_own_report_not_even_with_a_forged_offer(cast, login, peer_review):
    original, review, reviewer, _ = peer_review
    assert not Offer.objects.filter(read_request=review.read_request, radiologist=original.radiologist).exists()
    own = login(cast.radiologist, api=True)
    someone_elses = Offer.objects.get(read_request=review.read_request, radiologist=reviewer)
    for forged in (someone_elses.public_id, uuid.uuid4()):
        response = own.post(reverse("api_offer_claim", args=[forged]))
        assert response.status_code == 404, response.content
    assert login(cast.radiologist).post(reverse("offer_claim", args=[someone_elses.public_id])).status_code == 404
    assert not Assignment.objects.filter(read_request=review.read_request).exists()


@pytest.mark.parametrize("score", ["4", "2c", "0", "1a", "concur"])
def test_a_score_off_the_radpeer_scale_is_refused_naming_the_field(cast, login, peer_review, score):
    _, review, reviewer, _ = peer_review
    client = login(reviewer.user)
    rr = review.read_request
    client.post(reverse("offer_claim", args=[Offer.objects.get(read_request=rr, radiologist=reviewer).public_id]))
    draft = client.get(reverse("report_workspace", args=[rr.public_id])).context["report"]
    saved = client.post(reverse("report_autosave", args=[rr.public_id]),
                        {"version": draft.version, "sections": {"impression": "Missed."},
                         "fields": {RADPEER_SCORE: score}},
                        content_type="application/json")
    if saved.status_code == 400:  # refused on saving
        assert f"fields.{RADPEER_SCORE}" in saved.json()["fields"]
        return
    assert saved.status_code == 200
    signed = client.post(reverse("report_sign", args=[rr.public_id]), {"version": saved.json()["version"]})
    assert signed.status_code == 400
    assert "RADPEER score" in signed.content.decode()
    review.refresh_from_db()
    assert (review.status, review.score) == (PeerReview.Status.REQUESTED, "")
