"""Studies the marketplace's later demos need beyond the demo studies (``studies.demo``): the CT of the RIS order
that finds its images, and the CTs the overflow rules post. Each is a small CT, found next time by its
accession number; its UIDs derive from a fixed seed (center, accession, profile), so a database built again
stores the same UIDs, as ``studies.demo`` does.
"""

from __future__ import annotations

import io
from datetime import date

from pydicom.uid import generate_uid

from accounts.models import Organization
from studies import synthetic
from studies.ingest import Source, ingest_files
from studies.models import Study

SEED = "readroom-demo-marketplace-v1"


def _uid(*parts: object) -> str:
    return generate_uid(prefix=synthetic.UID_ROOT, entropy_srcs=[SEED, *map(str, parts)])


def demo_ct(center: Organization, accession: str, *, patient: int, description: str, body_part: str,
            study_date: date, profile: str) -> tuple[Study | None, bool]:
    """The center's CT with ``accession``, stored through the ingest service the first time. Returns
    ``(study, created)``; the study is None when ingest refused it (a problem for the caller to report)."""
    existing = Study.objects.filter(organization=center, accession_number=accession).first()
    if existing is not None:
        return existing, False
    seed = (center.slug, accession, profile)
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(patient), accession=accession, description=description,
                               study_date=study_date, institution=center.name, study_uid=_uid(*seed, "study"))
    size, slices = (32, 2) if profile == "small" else (128, 12)
    datasets = synthetic.ct_series(spec, slices=slices, size=size)
    series_uid, frame_uid = _uid(*seed, "series"), _uid(*seed, "frame")
    for index, ds in enumerate(datasets):
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.BodyPartExamined = series_uid, frame_uid, body_part
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(*seed, "instance", index)
    files = [(f"demo/{accession}/{n:04d}.dcm", io.BytesIO(synthetic.to_bytes(ds))) for n, ds in enumerate(datasets)]
    ingest_files(organization=center, files=files, source=Source.IMPORT, jurisdiction=(center.country, center.region))
    return Study.objects.filter(organization=center, accession_number=accession).first(), True
