"""The demo world's patients (issue 17, item 7), added by ``load_demo`` after the demo reports.

- patient1 (Maria Gonzalez, lives in Florida): a CT head from a CD in her own space, a neuroradiology second
  opinion paid (a test payment: Stripe is off in the demo), claimed by Dr Kowalski and signed with a
  plain-language summary that *disagrees* with the original report;
- patient2 (David Kim, California): an MR knee, a musculoskeletal second opinion paid and with Dr Alvarez;
- patient3 (Aisha Rahman, Ontario): a chest radiograph uploaded, no order yet.

Each goes through the services a patient and a reader use (details, ingest into the space, order,
checkout, claim, report, sign). Idempotent: a patient's study has a fixed UID and an order is looked up by
patient and study, so a second run creates nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from pydicom.uid import generate_uid

from accounts import policy
from accounts.models import RadiologistProfile, User
from accounts.patients import patient_details_save, patient_profile
from billing.services import checkout
from core.errors import ApplicationError
from marketplace import order_selectors
from marketplace.demo import DEMO_DOMAIN
from marketplace.models import Offer
from marketplace.order_models import OrderStatus, SecondOpinionOrder
from marketplace.services import orders
from marketplace.services.offers import offer_claim
from reporting.services import reports
from studies import synthetic
from studies.ingest import Source, ingest_stream
from studies.models import Study

SUMMARY = (
    "The specialist looked again at your head CT. The original report said there was a small bleed on the "
    "surface of the brain. The specialist does not see a bleed: the bright line the first report described "
    "is a normal fold of the brain's lining (the falx), which often looks bright on CT. Everything else "
    "looks normal for your age. Show this report to your doctor: no urgent treatment is suggested by these "
    "images, but your doctor will decide with you whether any follow-up is needed.")


@dataclass(frozen=True)
class DemoPatient:
    email: str
    born: date
    country: str
    region: str
    key: str
    modality: str
    description: str
    order: dict = field(default_factory=dict)  # OrderData fields; empty: no order
    reader: str = ""  # claims it
    report: dict = field(default_factory=dict)  # sections and fields; empty: not reported yet


PATIENTS = [
    DemoPatient("patient1@readroom.demo", date(1968, 3, 14), "US", "FL", "ct-head", "CT", "CT HEAD WITHOUT CONTRAST",
                order={"subspecialty": "neuro", "question": "specific",
                       "question_text": "The first report says a small subdural bleed. Is that right?"},
                reader="kowalski",
                report={"sections": {
                    "clinical_information": "Headache after a fall. Original report: small subdural hematoma.",
                    "findings": "No extra-axial collection. The hyperdensity along the midline is the falx "
                                "cerebri, of normal thickness. No parenchymal hemorrhage, mass effect or midline "
                                "shift. Ventricles and sulci are normal for age.",
                    "impression": "No intracranial hemorrhage. Disagree with the outside report of a subdural "
                                  "hematoma: the finding is the normal falx.",
                    "patient_summary": SUMMARY},
                    "fields": {"agreement": "disagrees"}}),
    DemoPatient("patient2@readroom.demo", date(1985, 9, 2), "US", "CA", "mr-knee", "MR", "MR KNEE RIGHT",
                order={"subspecialty": "musculoskeletal", "turnaround": "expedited"}, reader="alvarez"),
    DemoPatient("patient3@readroom.demo", date(1992, 1, 27), "CA", "ON", "cr-chest", "CR", "CHEST PA AND LATERAL"),
]


def load_demo_patients(report, *, profile: str) -> None:
    """Details, images, orders and reports of the three demo patients (problems go on ``report``)."""
    if profile == "none":
        return
    readers = {p.user.email.removesuffix(DEMO_DOMAIN).removeprefix("dr."): p for p in
               RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN).select_related("user")}
    for story in PATIENTS:
        user = User.objects.filter(email=story.email).first()
        if user is None:
            continue
        try:
            with transaction.atomic():
                note = _bring_about(story, user, readers, report)
        except ApplicationError as error:
            report.problems.append(f"{story.email}: {error.message}")
            continue
        report.notes.append(f"{story.email}: {note}")


def _bring_about(story: DemoPatient, user: User, readers: dict, report) -> str:
    actor = policy.actor_for_user(user)
    if patient_profile(user) is None:
        patient_details_save(actor=actor, date_of_birth=story.born, country=story.country, region=story.region)
        actor = policy.actor_for_user(user)
    study = _study(story, user)
    if not story.order:
        return f"{study.study_description} in their own space, no order"
    order = SecondOpinionOrder.objects.filter(patient=user, study=study).first()
    if order is not None:
        report.unchanged += 1
        return _note(order)
    order = orders.order_create(actor=actor, data=orders.OrderData(study=study, accept_terms=True, **story.order))
    payment = orders.order_checkout(actor=actor, order=order)
    checkout.checkout_confirm_test_payment(actor=actor, payment=payment)
    order.refresh_from_db()
    report.created += 1
    if story.reader and order.status == OrderStatus.PAID:
        _claim_and_report(story, order, readers)
    order.refresh_from_db()
    return _note(order)


def _study(story: DemoPatient, user: User) -> Study:
    space = patient_profile(user).space
    uid = generate_uid(prefix=synthetic.UID_ROOT, entropy_srcs=["readroom-demo-patient", story.email, story.key])
    study = Study.objects.filter(organization=space, study_instance_uid=uid).first()
    if study is not None:
        return study
    spec = synthetic.StudySpec(patient=synthetic.Patient(name=user.full_name.replace(" ", "^"), patient_id="CD0001",
                                                         birth_date=story.born, sex="O"),
                               accession="CD0001", description=story.description,
                               study_date=timezone.localdate() - timedelta(days=12), institution="Outside hospital",
                               study_uid=uid)
    if story.modality == "CT":
        datasets = synthetic.ct_series(spec, slices=12, size=256)
    elif story.modality == "MR":
        datasets = synthetic.mr_study(spec, slices=6, size=128)
    else:
        datasets = synthetic.radiograph(spec, modality=story.modality, rows=512, cols=440)
    for number, ds in enumerate(datasets, 1):
        if story.modality == "MR":
            ds.BodyPartExamined = "KNEE"
        ingest_stream(organization=space, stream=io.BytesIO(synthetic.to_bytes(ds)),
                      filename=f"CD/DICOM/IM{number:04d}", source=Source.UPLOAD,
                      jurisdiction=(space.country, space.region))
    return Study.objects.get(organization=space, study_instance_uid=uid)


def _claim_and_report(story: DemoPatient, order: SecondOpinionOrder, readers: dict) -> None:
    offers = {o.radiologist_id: o for o in Offer.objects.filter(read_request=order.read_request,
                                                              status=Offer.Status.OPEN)}
    reader = readers.get(story.reader)
    offer = offers.get(reader.pk) if reader is not None else None
    if offer is None:
        raise ApplicationError(f"Dr {story.reader} was not offered the second opinion (licensed in "
                               f"{order.jurisdiction}?)")
    actor = policy.actor_for_user(reader.user)
    offer_claim(actor=actor, offer=offer)
    order.read_request.refresh_from_db()
    if not story.report:
        return
    draft = reports.report_open(actor=actor, read_request=order.read_request)
    draft = reports.report_save(actor=actor, report=draft, version=draft.version,
                                sections={**draft.sections, **story.report["sections"]},
                                fields={**draft.fields, **story.report["fields"]})
    reports.report_sign(actor=actor, report=draft, version=draft.version, second_factor_age=0)


def _note(order: SecondOpinionOrder) -> str:
    return f"second opinion ({order.get_subspecialty_display()}): {order_selectors.progress(order).headline}"
