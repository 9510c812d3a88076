"""The demo world's studies: fictional patients, generated with pydicom at set-up (never committed as
files) and stored through the one ingest service, in each demo center's state.

Idempotent: every UID derives from a fixed seed (the center, the study's key, the profile), and a
study already complete at its center is not generated again, so a second run creates nothing. A run
interrupted half-way is finished by the next one: the missing instances are stored, the others are
"already present" (the study date is taken from the stored study, so the bytes are the same).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, generate_uid

from accounts.models import Organization
from studies import synthetic
from studies.ingest import IngestOutcome, Source, Status, audit_ingest, ingest_stream
from studies.models import DicomAeTitle, DicomPeer, Study

SEED = "readroom-demo-studies-v1"
PROFILES = ("full", "small", "none")


@dataclass(frozen=True)
class DemoStudy:
    """One study of the demo world. ``key`` names it for good: its UIDs are derived from it."""

    key: str
    kind: str  # ct | mr | cr | dx | mg | us
    patient: int  # synthetic.demo_patient(n)
    days_ago: int
    description: str
    slices: int = 0  # CT / MR (0: the kind's default)
    size: int = 0
    transfer_syntax: str = ""  # e.g. JPEG 2000 Lossless: compressed as a modality would send it ("" native)
    body_part: str = ""  # BodyPartExamined when not the generator's own (its CT says CHEST, its MR BRAIN)


# center slug → (accession prefix, studies); patients are synthetic.demo_patient(n) (even n: female).
# Lakeside gets the whole set of the issue (a 150-slice 512×512 CT, a multi-series MR, a CR chest, a
# 4-view mammogram, an ultrasound with burned-in annotation); the others a smaller set, to keep the
# first set-up quick.
DEMO_STUDIES: dict[str, tuple[str, list[DemoStudy]]] = {
    "lakeside": ("LKS", [
        DemoStudy("ct-chest", "ct", 0, 2, "CT CHEST WITH CONTRAST", slices=150, size=512),
        DemoStudy("mr-brain", "mr", 1, 4, "MRI BRAIN WITHOUT CONTRAST", slices=24, size=256),
        DemoStudy("cr-chest", "cr", 3, 1, "XR CHEST PA AND LATERAL"),
        DemoStudy("mg-screening", "mg", 2, 9, "MAMMOGRAM SCREENING BILATERAL"),
        DemoStudy("us-abdomen", "us", 4, 12, "US ABDOMEN COMPLETE"),
        # The marketplace's STAT head CT (the same patient's MR brain is its comparison).
        DemoStudy("ct-head", "ct", 1, 0, "CT HEAD WITHOUT CONTRAST", slices=40, size=256, body_part="HEAD"),
    ]),
    "summit": ("SOM", [
        DemoStudy("mr-brain", "mr", 5, 3, "MRI BRAIN WITHOUT CONTRAST", slices=16, size=256),
        DemoStudy("dx-chest", "dx", 6, 6, "XR CHEST 2 VIEWS"),
        DemoStudy("ct-abdomen-j2k", "ct", 11, 2, "CT ABDOMEN PELVIS WITH CONTRAST", slices=60, size=256,
                  transfer_syntax=JPEG2000Lossless),
        # The marketplace's MRI knee that needs a musculoskeletal reader.
        DemoStudy("mr-knee", "mr", 6, 1, "MRI KNEE RIGHT WITHOUT CONTRAST", slices=16, size=256, body_part="KNEE"),
    ]),
    "bayview": ("BVD", [
        DemoStudy("ct-head", "ct", 7, 1, "CT HEAD WITHOUT CONTRAST", slices=40, size=256),
        DemoStudy("mg-screening", "mg", 8, 15, "MAMMOGRAM SCREENING BILATERAL"),
    ]),
    "mapleleaf": ("MLI", [
        DemoStudy("cr-chest", "cr", 9, 5, "XR CHEST PA AND LATERAL"),
        DemoStudy("us-abdomen", "us", 10, 20, "US ABDOMEN LIMITED"),
        # The marketplace's Canadian read (only Ontario licensees see it).
        DemoStudy("ct-abdomen", "ct", 10, 1, "CT ABDOMEN PELVIS WITH CONTRAST", slices=40, size=256,
                  body_part="ABDOMEN"),
    ]),
}
# "small" (tests, CI): the same studies with tiny images.
SMALL = {"ct_slices": 4, "ct_size": 32, "mr_slices": 2, "mr_size": 32, "xr": (64, 56), "mg": (64, 48), "us_frames": 1}
MR_SERIES = 3  # synthetic.mr_study: AX T1, AX T2 FLAIR, SAG T1


def _uid(*parts: object) -> str:
    return generate_uid(prefix=synthetic.UID_ROOT, entropy_srcs=[SEED, *map(str, parts)])


def expected_instances(study: DemoStudy, profile: str) -> int:
    small = profile == "small"
    return {
        "ct": SMALL["ct_slices"] if small else study.slices or 150,
        "mr": MR_SERIES * (SMALL["mr_slices"] if small else study.slices or 24),
        "cr": 2, "dx": 2, "mg": 4,
        "us": SMALL["us_frames"] if small else 3,
    }[study.kind]


def _datasets(study: DemoStudy, spec: synthetic.StudySpec, profile: str) -> list[Dataset]:
    datasets = _native_datasets(study, spec, profile)
    if study.body_part:
        for ds in datasets:
            ds.BodyPartExamined = study.body_part
    if study.transfer_syntax:
        for ds in datasets:
            ds.compress(study.transfer_syntax)  # lossless and deterministic: a second run makes the same bytes
    return datasets


def _native_datasets(study: DemoStudy, spec: synthetic.StudySpec, profile: str) -> list[Dataset]:
    small = profile == "small"
    if study.kind == "ct":
        return synthetic.ct_series(spec, slices=SMALL["ct_slices"] if small else study.slices or 150,
                                   size=SMALL["ct_size"] if small else study.size or 512)
    if study.kind == "mr":
        return synthetic.mr_study(spec, slices=SMALL["mr_slices"] if small else study.slices or 24,
                                  size=SMALL["mr_size"] if small else study.size or 256)
    if study.kind in ("cr", "dx"):
        rows, cols = SMALL["xr"] if small else (1024, 880)
        return synthetic.radiograph(spec, modality=study.kind.upper(), rows=rows, cols=cols)
    if study.kind == "mg":
        rows, cols = SMALL["mg"] if small else (1024, 800)
        return synthetic.mammogram(spec, rows=rows, cols=cols)
    return synthetic.ultrasound(spec, frames=SMALL["us_frames"] if small else 3)


def _fix_uids(datasets: list[Dataset], *seed: object) -> None:
    """Replace the random series, frame-of-reference and SOP instance UIDs by ones derived from the seed."""
    series: dict[str, str] = {}
    frames: dict[str, str] = {}
    for index, ds in enumerate(datasets):
        ds.SeriesInstanceUID = series.setdefault(ds.SeriesInstanceUID, _uid(*seed, "series", len(series)))
        if "FrameOfReferenceUID" in ds:
            ds.FrameOfReferenceUID = frames.setdefault(ds.FrameOfReferenceUID, _uid(*seed, "frame", len(frames)))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(*seed, "instance", index)


@dataclass
class CenterReport:
    organization: Organization
    created: list[str] = field(default_factory=list)  # "CT CHEST WITH CONTRAST (150 images)"
    present: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# The gateway ready after ``bin/dev up``: each demo center's AE title, and the peers the README's
# echoscu/storescu lines and a local Orthanc router call from (loopback; a center adds its own in the admin).
DEMO_AE_TITLES = {"lakeside": "LAKESIDE", "summit": "SUMMIT"}
DEMO_PEERS = (("CT_ROOM1", "CT scanner, room 1"), ("MR_ROOM1", "MR scanner, room 1"), ("ORTHANC", "Orthanc router"),
              ("STORESCU", "DCMTK storescu (DCMTK's default calling AE title)"))
DEMO_PEER_HOSTS = ("127.0.0.1", "::1")


def load_demo_gateway(organizations: dict[str, Organization]) -> None:
    """Register the demo centers' AE titles and their loopback peers (idempotent)."""
    for slug, ae_title in DEMO_AE_TITLES.items():
        organization = organizations.get(slug)
        if organization is None:
            continue
        called, _ = DicomAeTitle.objects.get_or_create(
            ae_title=ae_title, defaults={"organization": organization,
                                         "description": f"{organization.name}: C-STORE gateway (demo)"})
        if called.organization_id != organization.pk:
            continue  # the title belongs to another organization here: leave it alone
        for calling, description in DEMO_PEERS:
            for host in DEMO_PEER_HOSTS:
                DicomPeer.objects.get_or_create(called=called, calling_ae_title=calling, host=host,
                                                defaults={"description": description})


def load_demo_studies(organizations: dict[str, Organization], *, profile: str, today: date,
                      progress: Callable[[int], None] | None = None,
                      plan: Callable[[int], None] | None = None) -> list[CenterReport]:
    """Bring every demo center's studies into being (or leave them be). ``plan`` is told how many
    instances will be generated, ``progress`` each time one is stored. The gateway's AE titles and peers
    come first (``load_demo_gateway``)."""
    load_demo_gateway(organizations)
    if profile == "none":
        return []
    todo: list[tuple[str, DemoStudy, str, Study | None]] = []
    reports: dict[str, CenterReport] = {}
    for slug, (_prefix, studies) in DEMO_STUDIES.items():
        organization = organizations[slug]
        report = reports[slug] = CenterReport(organization)
        for study in studies:
            study_uid = _uid(profile, slug, study.key, "study")
            existing = Study.objects.filter(organization=organization, study_instance_uid=study_uid).first()
            if existing is not None and existing.number_of_instances >= expected_instances(study, profile):
                report.present += 1
            else:
                todo.append((slug, study, study_uid, existing))
    if plan is not None:
        plan(sum(expected_instances(study, profile) for _, study, _, _ in todo))
    for slug, study, study_uid, existing in todo:
        _generate_and_ingest(reports[slug], slug, study, study_uid, existing, profile=profile, today=today,
                             progress=progress)
    return list(reports.values())


def demo_study(organization: Organization, key: str, *, profile: str) -> Study | None:
    """The stored demo study ``key`` of ``organization`` (the marketplace's demo posts reads of them)."""
    return Study.objects.filter(organization=organization,
                                study_instance_uid=_uid(profile, organization.slug, key, "study")).first()


def _generate_and_ingest(report: CenterReport, slug: str, study: DemoStudy, study_uid: str, existing: Study | None,
                         *, profile: str, today: date, progress) -> None:
    organization = report.organization
    prefix = DEMO_STUDIES[slug][0]
    study_date = existing.study_date if existing is not None and existing.study_date else \
        today - timedelta(days=study.days_ago)
    index = [s.key for s in DEMO_STUDIES[slug][1]].index(study.key) + 1
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(study.patient),
                               accession=f"{prefix}{study_date:%y%m%d}{index:03d}", description=study.description,
                               study_date=study_date, institution=organization.name, study_uid=study_uid)
    datasets = _datasets(study, spec, profile)
    _fix_uids(datasets, profile, slug, study.key)
    outcomes: list[IngestOutcome] = []
    for number, ds in enumerate(datasets, 1):
        data = synthetic.to_bytes(ds)
        outcomes.append(ingest_stream(organization=organization, stream=io.BytesIO(data),
                                      filename=f"demo/{study.key}/{number:04d}", source=Source.IMPORT,
                                      jurisdiction=(organization.country, organization.region)))
        if progress is not None:
            progress(1)
    audit_ingest(outcomes, organization=organization, source=Source.IMPORT)
    stored = sum(o.status == Status.STORED for o in outcomes)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        report.problems.append(f"{study.description}: {len(failed)} not stored ({failed[0].reason})")
    if stored:
        report.created.append(f"{study.description} ({len(datasets)} images)")
    else:
        report.present += 1
