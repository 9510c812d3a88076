"""STOW-RS and QIDO-RS driven by a client nobody here wrote: the ``dicomweb-client`` package, over HTTP.

The server is pytest-django's ``live_server`` (a real HTTP server in a thread, same database). The
client percent-encodes every query value (``*`` → ``%2A``, ``^`` → ``%5E``), sends ``includefield``
repeated, and raises on 4xx/5xx. Its bodies above ``chunk_size`` go out with chunked transfer
encoding, which Django's development server cannot de-chunk (gunicorn can, see test_stow.py): the
client here is given a chunk size above the bodies it sends.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from django.core.files.storage import default_storage
from django.utils import timezone
from requests.exceptions import HTTPError

from accounts import services as account_services
from accounts.policy import actor_for_user
from studies import synthetic
from studies.models import Instance, Study
from studies.services import study_access_grant_create

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 64 * 1024 * 1024


_OPEN: list[DICOMwebClient] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Close each client's keep-alive connection, so no server thread outlives the test (and its database)."""
    yield
    while _OPEN:
        _OPEN.pop()._session.close()


def client_for(live_server, secret: str) -> DICOMwebClient:
    # "Connection: close": each request's server thread ends with its answer, not when the test ends.
    client = DICOMwebClient(url=f"{live_server.url}/dicomweb", chunk_size=CHUNK,
                            headers={"Authorization": f"Bearer {secret}", "Connection": "close"})
    _OPEN.append(client)
    return client


@pytest.fixture
def technologist_client(cast, live_server) -> DICOMwebClient:
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="modality",
                                                   roles=["technologist"])
    return client_for(live_server, secret)


def personal_client(live_server, user) -> DICOMwebClient:
    _token, secret = account_services.personal_token_create(actor=actor_for_user(user), name="dicomweb-client")
    return client_for(live_server, secret)


def as_files(datasets: list[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """Datasets as a client reads them from disk (with the Part 10 preamble dicomweb-client writes back)."""
    return [pydicom.dcmread(io.BytesIO(synthetic.to_bytes(ds))) for ds in datasets]


def _uids(results: list[dict], tag: str = "0020000D") -> list[str]:
    return [r[tag]["Value"][0] for r in results]


def test_store_then_search_studies_series_and_instances(technologist_client, study_spec):
    datasets = as_files(synthetic.ct_series(study_spec, slices=4, size=64))
    answer = technologist_client.store_instances(datasets=datasets)
    assert isinstance(answer, pydicom.Dataset)
    assert sorted(item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence) == \
        sorted(ds.SOPInstanceUID for ds in datasets)
    assert "FailedSOPSequence" not in answer
    assert Instance.objects.count() == 4

    client = technologist_client
    found = client.search_for_studies(search_filters={"PatientID": "MRN100200"})
    assert _uids(found) == [study_spec.study_uid]
    study = pydicom.Dataset.from_json(found[0])
    assert str(study.PatientName) == "Rivera^Ana"
    assert study.ModalitiesInStudy == "CT"
    assert int(study.NumberOfStudyRelatedInstances) == 4

    # percent-encoded wildcards and carets, fuzzy matching off, paging, includefield
    assert _uids(client.search_for_studies(search_filters={"PatientName": "Riv*"})) == [study_spec.study_uid]
    assert _uids(client.search_for_studies(search_filters={"PatientName": "Rivera^Ana"})) == [study_spec.study_uid]
    assert _uids(client.search_for_studies(search_filters={"00100010": "rivera^a?a"})) == [study_spec.study_uid]
    assert client.search_for_studies(search_filters={"PatientName": "Nobody*"}) == []
    paged = client.search_for_studies(fuzzymatching=False, limit=10, offset=0,
                                      fields=["StudyDescription", "InstitutionName"],
                                      search_filters={"StudyDate": "20260101-20261231", "ModalitiesInStudy": "CT"})
    assert _uids(paged) == [study_spec.study_uid]
    assert paged[0]["00080080"]["Value"] == ["Lakeside Imaging"]
    assert client.search_for_studies(offset=1) == []

    series = client.search_for_series(study_spec.study_uid)
    assert len(series) == 1
    series_uid = series[0]["0020000E"]["Value"][0]
    assert series[0]["00080060"]["Value"] == ["CT"]
    assert _uids(client.search_for_series(search_filters={"Modality": "CT"}), "0020000E") == [series_uid]

    instances = client.search_for_instances(study_spec.study_uid, series_uid)
    assert [i["00200013"]["Value"][0] for i in instances] == [1, 2, 3, 4]
    assert sorted(_uids(instances, "00080018")) == sorted(ds.SOPInstanceUID for ds in datasets)
    one = datasets[2].SOPInstanceUID
    assert _uids(client.search_for_instances(search_filters={"SOPInstanceUID": one}), "00080018") == [one]
    assert len(client.search_for_instances(study_spec.study_uid, get_remaining=True)) == 4


def test_store_into_a_study_path_reports_instances_of_other_studies_as_failed(technologist_client, study_spec):
    datasets = as_files(synthetic.ct_series(study_spec, slices=2, size=64))
    other = synthetic.StudySpec(patient=synthetic.demo_patient(2), accession="ACC5", description="CT",
                                study_date=date(2025, 1, 2))
    stranger = as_files(synthetic.ct_series(other, slices=1, size=64))
    answer = technologist_client.store_instances(datasets=datasets + stranger, study_instance_uid=study_spec.study_uid)
    assert len(answer.ReferencedSOPSequence) == 2
    [failed] = answer.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == stranger[0].SOPInstanceUID
    assert failed.FailureReason == 0xA900
    assert answer.RetrieveURL.endswith(f"/dicomweb/studies/{study_spec.study_uid}")
    with pytest.raises(HTTPError) as refused:  # nothing stored: 409
        technologist_client.store_instances(datasets=stranger, study_instance_uid=study_spec.study_uid)
    assert refused.value.response.status_code == 409


def test_datasets_built_in_memory_are_stored_as_part10_with_a_coercion_warning(technologist_client, study_spec,
                                                                                settings):
    """pydicom (so dicomweb-client) writes an in-memory data set as its file meta and data set, without the
    128-byte preamble and "DICM": stored with them added, the data set byte for byte, answered 0xB000."""
    datasets = synthetic.ct_series(study_spec, slices=2, size=64)
    sent = []
    for ds in datasets:
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds)
        sent.append(buffer.getvalue())
    assert all(body[128:132] != b"DICM" for body in sent)  # what the client really sends
    answer = technologist_client.store_instances(datasets=datasets)
    assert len(answer.ReferencedSOPSequence) == 2
    assert "FailedSOPSequence" not in answer
    assert {item.WarningReason for item in answer.ReferencedSOPSequence} == {0xB000}
    assert all("preamble" in item[0x00091001].value for item in answer.ReferencedSOPSequence)
    for ds, body in zip(datasets, sent, strict=True):
        stored = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
        with default_storage.open(stored.storage_key) as fh:
            kept = fh.read()
        assert kept == b"\x00" * 128 + b"DICM" + body
    back = technologist_client.retrieve_instance(study_spec.study_uid, datasets[0].SeriesInstanceUID,
                                                 datasets[0].SOPInstanceUID, media_types=(("application/dicom", "*"),))
    assert back.PixelData == datasets[0].PixelData
    again = technologist_client.store_instances(datasets=datasets)  # the same data sets: duplicates, no error
    assert len(again.ReferencedSOPSequence) == 2
    assert Instance.objects.filter(study__study_instance_uid=study_spec.study_uid).count() == 2


def test_storing_the_same_instances_twice_succeeds_without_duplicates(technologist_client, study_spec):
    datasets = as_files(synthetic.ct_series(study_spec, slices=2, size=64))
    technologist_client.store_instances(datasets=datasets)
    again = technologist_client.store_instances(datasets=datasets)
    assert len(again.ReferencedSOPSequence) == 2
    assert Instance.objects.count() == 2


def test_a_viewer_key_may_search_but_not_store(cast, live_server, technologist_client, study_spec):
    technologist_client.store_instances(datasets=as_files(synthetic.ct_series(study_spec, slices=1, size=64)))
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="RIS",
                                                   roles=["viewer"])
    viewer = client_for(live_server, secret)
    assert _uids(viewer.search_for_studies()) == [study_spec.study_uid]
    with pytest.raises(HTTPError) as refused:
        viewer.store_instances(datasets=as_files(synthetic.ct_series(study_spec, slices=1, size=64)))
    assert refused.value.response.status_code == 403


def test_another_center_and_an_ungranted_radiologist_find_nothing(cast, live_server, technologist_client, study_spec):
    technologist_client.store_instances(datasets=as_files(synthetic.ct_series(study_spec, slices=1, size=64)))
    assert personal_client(live_server, cast.other_admin).search_for_studies() == []
    radiologist = personal_client(live_server, cast.radiologist)
    assert radiologist.search_for_studies() == []
    with pytest.raises(HTTPError) as missing:
        radiologist.search_for_series(study_spec.study_uid)
    assert missing.value.response.status_code == 404


def test_a_preview_grant_searches_de_identified_metadata(cast, live_server, technologist_client, study_spec):
    datasets = as_files(synthetic.ct_series(study_spec, slices=2, size=64))
    for ds in datasets:
        synthetic.with_private_and_nested_phi(ds, "PEERCANARY")
    technologist_client.store_instances(datasets=datasets)
    study_access_grant_create(actor=None, study=Study.objects.get(), user=cast.radiologist, level="preview",
                              reason="offered", expires_at=timezone.now() + timedelta(hours=1))
    radiologist = personal_client(live_server, cast.radiologist)
    [row] = radiologist.search_for_studies(fields=["all"])
    assert "PEERCANARY" not in str(row)
    assert row["0020000D"]["Value"] == [study_spec.study_uid]
    instances = radiologist.search_for_instances(study_spec.study_uid, fields=["all"])
    assert len(instances) == 2
    assert "PEERCANARY" not in str(instances)
    assert radiologist.search_for_studies(search_filters={"PatientName": "PEERCANARY*"}) == []
