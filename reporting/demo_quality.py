"""The demo world's quality (issue 16, item 4), added by ``load_demo`` right after the reporting demo.

At Lakeside (Texas) dr.nakamura (Night Hawk) signs five reads and Atlantic's only Texan, dr.whitfield, is the
outside reader; dr.kowalski is Lakeside's QA radiologist. Through the real services:

- an overread with a significant difference: Lakeside orders it on a signed CT chest, whitfield signs it on the
  "Overread" template, nakamura signs the addendum it asked for and answers;
- an urgent two-level read: nakamura signs level 1, whitfield signs the second level (agree), so the request
  page shows a chain of two; nakamura has not answered that one (the browser journey does);
- a review queue: three of nakamura's reports are sent for blind peer review and offered to whitfield;
- an arbitration pending: whitfield scored a third review 2b; it waits in kowalski's /quality/arbitration/.

Then six months of synthetic history for nine demo readers, bulk-created (reads reported on time or late,
final reports, final RADPEER reviews, mostly 1) so that the statistics draw charts; dr.brennan is the outlier.
Every history row's read request has the idempotency key ``demo-history:<n>``; the sampling cursor is moved
past them, so the sampling beat never posts reviews of reads that never happened.

Idempotent: each story is done in one transaction and found again by its key (``demo:quality-…``), a review by
its report, the history by its keys; a second run creates nothing. No email leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts import policy
from accounts.models import Organization, RadiologistProfile, User
from core.errors import ApplicationError
from marketplace.demo import DEMO_DOMAIN
from marketplace.models import Kind, Offer, ReadRequest, Status
from marketplace.services.offers import offer_claim, read_request_widen
from marketplace.services.requests import PostData, imaging_modalities, read_request_post
from reporting.models import Report
from reporting.quality import overreads
from reporting.quality import settings as quality_settings
from reporting.quality.peer_review import peer_review_request
from reporting.quality_models import OverreadReply, PeerReview
from reporting.seed_templates import OVERREAD_AGREEMENT, RADPEER_SCORE
from reporting.services import reports
from studies.demo import demo_study

CENTER, POSTER = "lakeside", "admin@lakeside.demo"
READER, OUTSIDER = "nakamura", "whitfield"  # both read every day of the week
QA_RADIOLOGIST = "kowalski"  # a neuroradiologist of neither the reader nor the center: arbitrates the head CT


@dataclass(frozen=True)
class QualityRead:
    """A primary read at Lakeside that nakamura claims and signs (its key: ``demo:<key>``)."""

    key: str
    study: str
    impression: str
    findings: str = ""
    priority: str = "routine"
    levels: int = 1
    deadline_hours: int | None = None  # else the center's turnaround
    reason_for_exam: str = ""


OVERREAD_ORIGINAL = QualityRead(
    "quality-ct-chest", "ct-chest", "No suspicious pulmonary nodule. No acute cardiopulmonary abnormality.",
    findings="Lungs: Clear. No nodule or mass.\nMediastinum: No lymphadenopathy.", reason_for_exam="Chronic cough")
# Urgent, due in 12 h: whichever hour the demo loads, both readers are on shift or start one in time.
TWO_LEVEL = QualityRead("quality-cr-two-level", "cr-chest", "No pneumothorax. Lines and tubes in position.",
                        priority="urgent", levels=2, deadline_hours=12, reason_for_exam="Central line placement")
QUEUED_REVIEWS = [
    QualityRead("quality-us-review", "us-abdomen", "Cholelithiasis without sonographic signs of cholecystitis.",
                reason_for_exam="Right upper quadrant pain"),
    QualityRead("quality-cr-review", "cr-chest", "No acute cardiopulmonary abnormality.", reason_for_exam="Cough"),
    QualityRead("quality-ct-chest-review", "ct-chest", "Stable 4 mm left lower lobe nodule. No new nodule.",
                reason_for_exam="Nodule follow-up"),
]
ARBITRATED = QualityRead("quality-ct-head-review", "ct-head", "No acute intracranial abnormality.",
                         reason_for_exam="Fall, on anticoagulants")

OVERREAD_VERDICT = ("A 9 mm spiculated nodule in the right upper lobe (series 2, image 41) is not described. "
                    "It needs a CT follow-up or PET-CT per Fleischner guidance.")
ADDENDUM = ("After the overread: a 9 mm spiculated nodule in the right upper lobe is present. Recommend PET-CT or "
            "tissue sampling; discussed with the referring clinician.")
ANSWER = "Agreed, I missed the nodule: an addendum is signed and the referrer was called."
REVIEW_2B = "A 4 mm acute subdural hematoma along the left tentorium is not reported."


def load_demo_quality(organizations: dict[str, Organization], *, report, profile: str) -> None:
    """The four quality stories at Lakeside, then the history (counts, notes, problems go on ``report``)."""
    from django.test.utils import override_settings  # here: the site itself never loads django.test

    center = organizations.get(CENTER)
    readers = {p.user.email.removesuffix(DEMO_DOMAIN).removeprefix("dr."): p for p in
               RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN).select_related("user")}
    if profile == "none" or center is None or not {READER, OUTSIDER, QA_RADIOLOGIST} <= set(readers):
        return
    cast = Cast(center, readers[READER], readers[OUTSIDER], readers[QA_RADIOLOGIST])
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        _qa_radiologist(cast, report)
        for story, action in (("overread with a significant difference", _overread),
                              ("two-level read", _two_level), ("review queue", _review_queue),
                              ("arbitration", _arbitration)):
            try:
                with transaction.atomic():
                    note = action(cast, report, profile)
            except ApplicationError as error:
                report.problems.append(f"{center.name}: quality demo, {story}: {error.message}")
                continue
            report.notes.append(f"{center.name}: {note}")
        from reporting.demo_quality_history import load_history

        load_history(organizations, readers, report, profile=profile)


@dataclass(frozen=True)
class Cast:
    center: Organization
    reader: RadiologistProfile
    outsider: RadiologistProfile
    qa: RadiologistProfile

    def admin(self) -> User:
        return User.objects.get(email=POSTER)


def _qa_radiologist(cast: Cast, report) -> None:
    """kowalski arbitrates Lakeside's discrepancies (its settings, through the admin's service)."""
    row = quality_settings.current(cast.center)
    if row.pk is not None and row.qa_radiologists.filter(pk=cast.qa.pk).exists():
        report.unchanged += 1
        return
    named = list(row.qa_radiologists.all()) if row.pk is not None else []
    quality_settings.quality_settings_update(actor=policy.actor_for_user(cast.admin()),
                                             basis_points=row.review_basis_points, qa_radiologists=[*named, cast.qa])
    report.created += 1


def _found(cast: Cast, key: str) -> ReadRequest | None:
    return ReadRequest.objects.filter(center=cast.center, idempotency_key=f"demo:{key}").first()


def _claim(read_request: ReadRequest, reader: RadiologistProfile) -> ReadRequest:
    """The reader claims their open offer (the read is opened to everyone eligible first when needed)."""
    def offer():
        return Offer.objects.filter(read_request=read_request, radiologist=reader, status=Offer.Status.OPEN).first()

    found = offer()
    if found is None and read_request_widen(read_request=read_request, reason="demo: open to everyone eligible"):
        found = offer()
    if found is None:
        raise ApplicationError(f"{reader.user.email} was not offered {read_request.get_kind_display().lower()} "
                               f"of {read_request.study.study_description}")
    offer_claim(actor=policy.actor_for_user(reader.user), offer=found)
    read_request.refresh_from_db()
    return read_request


def _write_and_sign(reader: RadiologistProfile, read_request: ReadRequest, *, sections: dict,
                    fields: dict | None = None) -> Report:
    actor = policy.actor_for_user(reader.user)
    draft = reports.report_open(actor=actor, read_request=read_request)
    draft = reports.report_save(actor=actor, report=draft, version=draft.version,
                                sections={**draft.sections, **sections}, fields={**draft.fields, **(fields or {})})
    return reports.report_sign(actor=actor, report=draft, version=draft.version, second_factor_age=0)


def _signed_read(cast: Cast, spec: QualityRead, profile: str) -> tuple[Report, bool]:
    """nakamura's signed report of ``spec``: found by its key, else posted, claimed and signed."""
    existing = _found(cast, spec.key)
    if existing is not None:
        return Report.objects.get(read_request=existing), False
    study = demo_study(cast.center, spec.study, profile=profile)
    if study is None:
        raise ApplicationError(f"the demo study {spec.study} is missing")
    deadline = timezone.now() + timedelta(hours=spec.deadline_hours) if spec.deadline_hours else None
    data = PostData(study=study, priority=spec.priority, levels=spec.levels, deadline=deadline,
                    reason_for_exam=spec.reason_for_exam)
    read_request, _ = read_request_post(actor=policy.actor_for_user(cast.admin()), center=cast.center, data=data,
                                        idempotency_key=f"demo:{spec.key}", idempotency_body={"demo": spec.key})
    sections = {"impression": spec.impression, **({"findings": spec.findings} if spec.findings else {})}
    return _write_and_sign(cast.reader, _claim(read_request, cast.reader), sections=sections), True


def _overread(cast: Cast, report, profile: str) -> str:
    original, created = _signed_read(cast, OVERREAD_ORIGINAL, profile)
    key = f"{OVERREAD_ORIGINAL.key}-overread"
    if _found(cast, key) is None:
        data = PostData(study=original.read_request.study, kind=Kind.OVERREAD, original_request=original.read_request,
                        reason_for_exam="Overread: is the chest clear?")
        overread, _ = read_request_post(actor=policy.actor_for_user(cast.admin()), center=cast.center, data=data,
                                        idempotency_key=f"demo:{key}", idempotency_body={"demo": key})
        verdict = _write_and_sign(cast.outsider, _claim(overread, cast.outsider), fields={
            OVERREAD_AGREEMENT: "significant"}, sections={"findings": OVERREAD_VERDICT,
                                                          "impression": "Significant difference: missed nodule."})
        reports.addendum_sign(actor=policy.actor_for_user(cast.reader.user), report=original, text=ADDENDUM,
                              second_factor_age=0)
        reply = OverreadReply.objects.get(report=verdict)
        overreads.overread_answer(actor=policy.actor_for_user(cast.reader.user), reply=reply, text=ANSWER)
        created = True
    report.created += created
    report.unchanged += not created
    return (f"overread of a CT chest ({cast.reader.user.email} read it): significant difference from "
            f"{cast.outsider.user.email}, addendum signed, answered")


def _two_level(cast: Cast, report, profile: str) -> str:
    first, created = _signed_read(cast, TWO_LEVEL, profile)
    second = ReadRequest.objects.filter(original_request=first.read_request, kind=Kind.OVERREAD).order_by("pk").first()
    if second is not None and second.status == Status.OPEN:
        _write_and_sign(cast.outsider, _claim(second, cast.outsider), fields={OVERREAD_AGREEMENT: "agree"},
                        sections={"impression": "Agree: no pneumothorax; the line tip is at the cavoatrial junction."})
        created = True
    report.created += created
    report.unchanged += not created
    return (f"urgent two-level chest X-ray: level 1 by {cast.reader.user.email}, level 2 signed (agree) by "
            f"{cast.outsider.user.email}, not answered yet")


def _reviewed(cast: Cast, spec: QualityRead, profile: str) -> tuple[PeerReview, bool]:
    original, created = _signed_read(cast, spec, profile)
    review = PeerReview.objects.filter(original_report=original).first()
    if review is not None:
        return review, created
    modality = (imaging_modalities(original.read_request.study) or ["OT"])[0]
    review = peer_review_request(report=original, programme_id=cast.center.pk, group_pays=False, modality=modality)
    if review is None:
        raise ApplicationError(f"the review of {spec.study} could not be posted")
    return review, True


def _review_queue(cast: Cast, report, profile: str) -> str:
    results = [_reviewed(cast, spec, profile) for spec in QUEUED_REVIEWS]
    created = any(made for _, made in results)
    report.created += created
    report.unchanged += not created
    offered = Offer.objects.filter(read_request__in=[r.read_request_id for r, _ in results], radiologist=cast.outsider,
                                   status=Offer.Status.OPEN).count()
    return f"{offered} blind peer reviews offered to {cast.outsider.user.email} (the original reader hidden)"


def _arbitration(cast: Cast, report, profile: str) -> str:
    review, created = _reviewed(cast, ARBITRATED, profile)
    if review.status == PeerReview.Status.REQUESTED:
        review_request = _claim(review.read_request, cast.outsider)
        _write_and_sign(cast.outsider, review_request, fields={RADPEER_SCORE: "2b"},
                        sections={"impression": REVIEW_2B})
        review.refresh_from_db()
        created = True
    report.created += created
    report.unchanged += not created
    return (f"peer review scored {review.score} by {cast.outsider.user.email}, {review.get_status_display().lower()}"
            f" (QA radiologist {cast.qa.user.email})")
