"""Orthanc retrieves a study from ReadRoom over WADO-RS (issue 19 items 3 and 5).

ReadRoom holds a study whose instances are stored in six transfer syntaxes (JPEG baseline, JPEG lossless,
JPEG-LS and RLE made by DCMTK, JPEG 2000 by openjpeg, and uncompressed); Orthanc's DICOMweb plugin finds it
by QIDO-RS and retrieves it (``/dicom-web/servers/readroom/retrieve``). What Orthanc then holds must be the
originals: the same SOP Instance UIDs, each in its stored syntax, the data sets identical byte for byte
(pixel data included).
"""

from __future__ import annotations

import io

import pydicom
import pytest

from studies import synthetic
from studies.ingest import Source, Status, ingest_stream
from tests.factories import OrganizationFactory
from tests.interop.orthanc import OrthancError
from tests.studies.test_gateway import dataset_part
from tests.studies.test_interop_stow import compressed_files

# A gunicorn process shares the test database: PostgreSQL, committed transactions (see conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def held_study(readroom, study_spec, tmp_path) -> dict[str, bytes]:
    """SOP Instance UID → the file ReadRoom stored (as uploaded)."""
    files = compressed_files(study_spec, tmp_path) + [
        synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=1, size=64)]
    held = {}
    for number, data in enumerate(files):
        outcome = ingest_stream(organization=readroom.center, stream=io.BytesIO(data), filename=f"{number}.dcm",
                                source=Source.UPLOAD)
        assert outcome.status == Status.STORED, outcome.reason
        held[pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID] = data
    return held


def test_orthanc_finds_the_study_by_qido_and_retrieves_the_originals(orthanc, readroom, study_spec, held_study):
    router = orthanc()
    [found] = router.post("/dicom-web/servers/readroom/qido",
                          {"Uri": "/studies", "Arguments": {"AccessionNumber": study_spec.accession}})
    assert found["0020000D"]["Value"] == study_spec.study_uid

    answer = router.post("/dicom-web/servers/readroom/retrieve", {"Resources": [{"Study": study_spec.study_uid}]})
    assert answer["ReceivedInstancesCount"] == str(len(held_study))
    retrieved = {}
    for orthanc_id in router.instances():
        data = router.file(orthanc_id)
        retrieved[pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID] = data
    assert retrieved.keys() == held_study.keys()
    syntaxes = set()
    for uid, original in held_study.items():
        ours, theirs = pydicom.dcmread(io.BytesIO(original)), pydicom.dcmread(io.BytesIO(retrieved[uid]))
        assert theirs.file_meta.TransferSyntaxUID == ours.file_meta.TransferSyntaxUID
        assert theirs.PixelData == ours.PixelData
        assert dataset_part(retrieved[uid]) == dataset_part(original)
        syntaxes.add(ours.file_meta.TransferSyntaxUID)
    assert len(syntaxes) == 6


def test_orthanc_retrieves_one_series_and_nothing_else(orthanc, readroom, study_spec, held_study):
    router = orthanc()
    series = router.post("/dicom-web/servers/readroom/qido", {"Uri": f"/studies/{study_spec.study_uid}/series"})
    by_series: dict[str, set[str]] = {}
    for data in held_study.values():
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        by_series.setdefault(ds.SeriesInstanceUID, set()).add(ds.SOPInstanceUID)
    assert sorted(s["0020000E"]["Value"] for s in series) == sorted(by_series)
    smaller = min(by_series, key=lambda uid: len(by_series[uid]))
    answer = router.post("/dicom-web/servers/readroom/retrieve",
                         {"Resources": [{"Study": study_spec.study_uid, "Series": smaller}]})
    assert answer["ReceivedInstancesCount"] == str(len(by_series[smaller]))
    assert {router.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]
            for i in router.instances()} == by_series[smaller]


def test_a_study_held_by_another_center_is_neither_found_nor_retrieved(orthanc, readroom, study_spec):
    """Through Lakeside's key, Harbor's study does not exist: QIDO finds nothing, and the retrieve (answered 404
    by ReadRoom, which Orthanc 1.10's plugin reports as its own error) brings nothing into Orthanc."""
    harbor = OrganizationFactory(name="Harbor Radiology Center", slug="harbor", region="FL")
    data = synthetic.to_bytes(synthetic.ct_series(study_spec, slices=1, size=64)[0])
    assert ingest_stream(organization=harbor, stream=io.BytesIO(data), filename="h.dcm",
                         source=Source.UPLOAD).status == Status.STORED
    router = orthanc()
    assert router.post("/dicom-web/servers/readroom/qido",
                       {"Uri": "/studies", "Arguments": {"StudyInstanceUID": study_spec.study_uid}}) == []
    with pytest.raises(OrthancError):
        router.post("/dicom-web/servers/readroom/retrieve", {"Resources": [{"Study": study_spec.study_uid}]})
    assert router.instances() == []
