"""The demo world's reports (issue 14, item 7), added by ``load_demo`` right after the marketplace's demo.

The platform's seeded templates are made sure of (migration 0003 writes them) and every demo
radiologist gets a few macros. Then the demo centers post four more read requests of their
demo studies through the marketplace's services, a demo radiologist who was offered each claims it, and
the report is written, released and signed through ``reporting.services.reports`` as a reader would:

- a chest X-ray at Summit, signed, with a signed addendum;
- a STAT abdominal ultrasound at Lakeside, released as a preliminary report (the final follows);
- a CT abdomen and pelvis at Summit, signed with a category 1 critical result that awaits the center's
  acknowledgement;
- a screening mammogram at Lakeside, signed with its BI-RADS assessment and breast density.

The second factor is taken as just passed (``second_factor_age=0``): the demo signs as its readers.
Idempotent: macros are found by (radiologist, name); a read by its idempotency key ``demo:<key>``, and
each read is posted, claimed and reported in one transaction, so a second run finds it and creates
nothing. Delivery forms are built after commit, as for any signed report. No email leaves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts import policy
from accounts.models import Organization, RadiologistProfile, User
from core.errors import ApplicationError
from marketplace.demo import DEMO_DOMAIN
from marketplace.models import Offer, ReadRequest
from marketplace.services.offers import offer_claim, read_request_widen
from marketplace.services.requests import PostData, read_request_post
from reporting import seed_templates
from reporting.models import CriticalResult, Macro, Report, ReportTemplate
from reporting.services import macros as macro_services
from reporting.services import reports
from studies.demo import demo_study

# Every demo reader's macros (name → text); a few more by subspecialty.
MACROS = {
    "nml": "No acute abnormality.",
    "nochg": "No significant interval change compared with the prior examination.",
    "corr": "Clinical correlation is recommended.",
    "crit": "This critical result was communicated by telephone to the referring clinician, who read it back.",
}
SUBSPECIALTY_MACROS = {
    "neuro": {"ich": "No intracranial hemorrhage, mass effect or midline shift."},
    "chest": {"ptx": "No pneumothorax or pleural effusion."},
    "breast": {"br1": "No mammographic evidence of malignancy. Routine screening mammography in one year."},
    "musculoskeletal": {"nofx": "No acute fracture or dislocation."},
    "emergency": {"nofree": "No free intraperitoneal air or fluid."},
    "body": {"nofree": "No free intraperitoneal air or fluid."},
}


@dataclass(frozen=True)
class DemoCritical:
    finding: str
    contacted_name: str
    minutes_ago: int = 5
    category: int = CriticalResult.Category.IMMEDIATE
    method: str = CriticalResult.Method.PHONE


@dataclass(frozen=True)
class DemoReport:
    """One demo read and its report: posted by ``poster``, claimed by the first of ``readers`` who was
    offered it (else by whoever was), written from the template chosen for the study."""

    key: str  # its read request's idempotency key is "demo:<key>"
    center: str
    study: str
    poster: str
    story: str
    readers: tuple[str, ...]
    sections: dict[str, str]  # text written over the template's normal text, by section code
    fields: dict[str, str] = field(default_factory=dict)
    priority: str = "routine"
    clinical_history: str = ""
    reason_for_exam: str = ""
    release_preliminary: bool = False  # else signed
    addendum: str = ""
    critical: DemoCritical | None = None


DEMO_REPORTS = [
    DemoReport(
        "report-summit-dx-chest", "summit", "dx-chest", "admin@summit.demo",
        "chest X-ray signed, with an addendum", readers=("alvarez", "brennan"),
        clinical_history="Fever and productive cough for five days.", reason_for_exam="Pneumonia",
        sections={"findings": "Lungs: Patchy consolidation in the right lower lobe. No pneumothorax.\n"
                              "Pleura: Trace right pleural effusion.\n"
                              "Heart and mediastinum: Normal cardiomediastinal silhouette.\n"
                              "Bones and soft tissues: No acute osseous abnormality.",
                  "impression": "Right lower lobe pneumonia with a trace right pleural effusion."},
        fields={"views": "pa_lateral"},
        addendum="The outside chest radiograph of three weeks ago, received after signing, shows clear lungs: "
                 "the right lower lobe consolidation is new, supporting acute pneumonia. Follow-up radiograph "
                 "in 6 to 8 weeks is recommended to document resolution."),
    DemoReport(
        "report-lakeside-us-stat", "lakeside", "us-abdomen", "tech@lakeside.demo",
        "STAT ultrasound with a preliminary report", readers=("nakamura", "whitfield", "brennan", "haddad"),
        priority="stat", clinical_history="Right upper quadrant pain since last night, fever 38.6 °C, "
                                          "positive Murphy sign on examination.",
        reason_for_exam="Acute cholecystitis",
        sections={"findings": "Gallbladder: Distended, with multiple shadowing gallstones, one impacted in the "
                              "neck. Wall thickened to 5 mm with pericholecystic fluid. Sonographic Murphy sign "
                              "positive.\nBile ducts: No biliary dilatation; common bile duct 4 mm.\n"
                              "Liver, pancreas, spleen and kidneys: Unremarkable.",
                  "impression": "Findings consistent with acute calculous cholecystitis."},
        fields={"cbd": "4"}, release_preliminary=True),
    DemoReport(
        "report-summit-ct-critical", "summit", "ct-abdomen-j2k", "admin@summit.demo",
        "CT abdomen and pelvis signed with a category 1 critical result awaiting acknowledgement",
        readers=("alvarez", "brennan"), clinical_history="Sudden severe abdominal pain, rigid abdomen.",
        reason_for_exam="Perforation",
        sections={"findings": "Chest: Lung bases clear.\n"
                              "Abdomen: Moderate free intraperitoneal air anterior to the liver and in the "
                              "upper abdomen, with a small volume of free fluid. Wall thickening and "
                              "surrounding inflammation of the duodenal bulb.\n"
                              "Pelvis: Small free fluid in the pelvis.\nBones: No acute osseous abnormality.",
                  "impression": "Pneumoperitoneum, most consistent with a perforated duodenal ulcer. "
                                "Critical result communicated (see below)."},
        critical=DemoCritical(finding="Pneumoperitoneum: perforated viscus (likely duodenal ulcer)",
                              contacted_name="Dr. Elena Marsh, emergency physician at Summit")),
    DemoReport(
        "report-lakeside-mg-screening", "lakeside", "mg-screening", "tech@lakeside.demo",
        "screening mammogram signed with BI-RADS", readers=("haddad", "whitfield"),
        reason_for_exam="Annual screening", clinical_history="No breast symptoms. No family history.",
        sections={"findings": "The breasts have scattered areas of fibroglandular density. There is no "
                              "suspicious mass, architectural distortion or suspicious calcification."},
        fields={"birads": "1", "breast_density": "b"}),
]


def load_demo_reporting(organizations: dict[str, Organization], *, report, profile: str) -> None:
    """Macros, then the demo reports; counts, notes and problems go on the marketplace's demo ``report``."""
    from django.test.utils import override_settings  # here: the site itself never loads django.test

    readers = {p.user.email.removesuffix(DEMO_DOMAIN).removeprefix("dr."): p for p in
               RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN).select_related("user")}
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        _seed_templates(report)
        _seed_macros(readers, report)
        if profile == "none":
            return
        for story in DEMO_REPORTS:
            _bring_about(story, organizations, readers, report, profile=profile)
        from reporting.demo_patients import load_demo_patients

        load_demo_patients(report, profile=profile)  # the patients' own images and second opinions (issue 17)


def _count(report, outcome: str) -> None:
    setattr(report, outcome, getattr(report, outcome) + 1)


def _seed_templates(report) -> None:
    """The platform's templates are written by migration 0003; one missing (a database emptied since) comes
    back. One that exists is left as platform operations edited it."""
    for definition in seed_templates.TEMPLATES:
        if ReportTemplate.objects.filter(owner__isnull=True, name=definition["name"]).exists():
            _count(report, "unchanged")
            continue
        ReportTemplate.objects.create(owner=None, **copy.deepcopy(
            {key: definition[key] for key in ("name", "modalities", "body_parts", "sections", "fields")}))
        _count(report, "created")


def _seed_macros(readers: dict[str, RadiologistProfile], report) -> None:
    for reader in readers.values():
        wanted = dict(MACROS)
        for subspecialty in reader.subspecialties:
            wanted.update(SUBSPECIALTY_MACROS.get(subspecialty, {}))
        have = set(Macro.objects.filter(radiologist=reader).values_list("name", flat=True))
        for name, text in wanted.items():
            if name in have:  # kept as the reader left it
                _count(report, "unchanged")
                continue
            macro_services.macro_create(actor=policy.actor_for_user(reader.user), name=name, text=text)
            _count(report, "created")


def _offer_for(read_request: ReadRequest, story: DemoReport, readers: dict[str, RadiologistProfile]) -> Offer | None:
    """The open offer of the first of the story's readers who has one, else the best-ranked open offer."""
    offers = {o.radiologist_id: o for o in Offer.objects.filter(read_request=read_request, status=Offer.Status.OPEN)
              .select_related("radiologist__user").order_by("rank", "id")}
    if not offers and read_request_widen(read_request=read_request, reason="demo: open to everyone eligible"):
        return _offer_for(read_request, story, readers)
    for name in story.readers:
        if name in readers and readers[name].pk in offers:
            return offers[readers[name].pk]
    return next(iter(offers.values()), None)


def _bring_about(story: DemoReport, organizations: dict[str, Organization], readers: dict[str, RadiologistProfile],
                 report, *, profile: str) -> None:
    center = organizations.get(story.center)
    key = f"demo:{story.key}"
    if center is None:
        return
    existing = ReadRequest.objects.filter(center=center, idempotency_key=key).first()
    if existing is not None:
        _count(report, "unchanged")
        report.notes.append(_note(story, existing))
        return
    study = demo_study(center, story.study, profile=profile)
    poster = User.objects.filter(email=story.poster).first()
    if study is None or poster is None:
        report.problems.append(f"{center.name}: {story.story}: its study or poster is missing, not posted")
        return
    try:
        with transaction.atomic():
            read_request = _post_and_report(story, center, study, poster, readers)
    except ApplicationError as error:
        report.problems.append(f"{center.name}: {story.story}: {error.message} (not posted)")
        return
    _count(report, "created")
    report.notes.append(_note(story, read_request))


def _post_and_report(story: DemoReport, center: Organization, study, poster: User,
                     readers: dict[str, RadiologistProfile]) -> ReadRequest:
    data = PostData(study=study, priority=story.priority, clinical_history=story.clinical_history,
                    reason_for_exam=story.reason_for_exam)
    read_request, _ = read_request_post(actor=policy.actor_for_user(poster), center=center, data=data,
                                        idempotency_key=f"demo:{story.key}", idempotency_body={"demo": story.key})
    offer = _offer_for(read_request, story, readers)
    if offer is None:
        raise ApplicationError("no demo radiologist was offered it")
    actor = policy.actor_for_user(offer.radiologist.user)
    offer_claim(actor=actor, offer=offer)
    read_request.refresh_from_db()
    draft = reports.report_open(actor=actor, read_request=read_request)
    draft = reports.report_save(actor=actor, report=draft, version=draft.version,
                                sections={**draft.sections, **story.sections}, fields={**draft.fields, **story.fields})
    if story.release_preliminary:
        reports.report_release_preliminary(actor=actor, report=draft, version=draft.version, second_factor_age=0)
        return read_request
    critical = None
    if story.critical is not None:
        critical = reports.CriticalInput(
            category=story.critical.category, finding=story.critical.finding,
            contacted_name=story.critical.contacted_name,
            contacted_at=timezone.now() - timedelta(minutes=story.critical.minutes_ago),
            method=story.critical.method, read_back=True)
    signed = reports.report_sign(actor=actor, report=draft, version=draft.version, second_factor_age=0,
                                 critical=critical)
    if story.addendum:
        reports.addendum_sign(actor=actor, report=signed, text=story.addendum, second_factor_age=0)
    return read_request


def _note(story: DemoReport, read_request: ReadRequest) -> str:
    """One line per demo report: the case, the report's state now, its reader."""
    row = Report.objects.filter(read_request=read_request).select_related("radiologist__user", "template").first()
    if row is None:
        return f"{read_request.center.name}: {story.story}: no report"
    line = (f"{read_request.center.name}: {story.story} ({read_request.study.study_description}, template "
            f"{row.template.name!r}): {row.get_status_display().lower()}, "
            f"{row.radiologist.user.email.removesuffix(DEMO_DOMAIN)}")
    addenda = row.addenda.count()
    if addenda:
        line += f", {addenda} addendum" if addenda == 1 else f", {addenda} addenda"
    critical = CriticalResult.objects.filter(report=row).first()
    if critical is not None:
        state = "acknowledged" if critical.acknowledged_at else "awaiting acknowledgement"
        line += f", critical result category {critical.category} {state}"
    return line
