"""Blinded peer review (issue 16): a radiologist whose grant hides the reports (``hide_reports=True``) never
receives the study's signed reports — the SRs reporting stores into the study (``received_via="report"``),
which name their reader — through any DICOMweb route or study page; a request for one is a 404 like for a
missing one. The center's members and a normal grant see them as before."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from studies import synthetic
from studies.ingest import Source, ingest_stream
from studies.models import Study, StudyAccessGrant
from studies.services import study_access_grant_create

READER = "Halvorsen^Ingrid"
READER_TEXT = b"Halvorsen"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
JSON = "application/dicom+json"


@dataclass
class ReadStudy:
    study: Study
    image_series_uid: str
    image_uid: str
    sr_series_uid: str
    sr_uid: str

    @property
    def uid(self) -> str:
        return self.study.study_instance_uid

    @property
    def secrets(self) -> list[bytes]:
        """What a blinded reviewer must never receive: the SR's UIDs and its reader's name."""
        return [self.sr_uid.encode(), self.sr_series_uid.encode(), READER_TEXT]


def signed_report_sr(spec: synthetic.StudySpec) -> Dataset:
    """A Basic Text SR as reporting delivers it: its own series in the study, verified by its reader."""
    sop_uid = generate_uid(prefix=synthetic.UID_ROOT)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = BASIC_TEXT_SR, sop_uid
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = generate_uid(prefix=synthetic.UID_ROOT)
    ds.PatientName, ds.PatientID = spec.patient.name, spec.patient.patient_id
    ds.AccessionNumber = spec.accession
    ds.StudyDate = ds.ContentDate = spec.study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = "090000"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SR", 9000, 2
    ds.SeriesDescription = "ReadRoom report"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "VERIFIED"
    observer = Dataset()
    observer.VerifyingObserverName = READER
    observer.VerifyingOrganization = "Night Hawk Readers"
    observer.VerificationDateTime = "20261103101500"
    ds.VerifyingObserverSequence = Sequence([observer])
    ds.ValueType = "CONTAINER"
    text = Dataset()
    text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
    text.TextValue = "Impression: no acute findings. Dictated by Dr Ingrid Halvorsen."
    ds.ContentSequence = Sequence([text])
    return ds


def ingest(org, datasets, source: str) -> None:
    for i, ds in enumerate(datasets):
        outcome = ingest_stream(organization=org, stream=io.BytesIO(synthetic.to_bytes(ds)), filename=f"{i}.dcm",
                                source=source)
        assert outcome.ok, outcome.reason


@pytest.fixture
def read_study(cast, study_spec) -> ReadStudy:
    images = synthetic.ct_series(study_spec, slices=3, size=32)
    ingest(cast.center, images, Source.UPLOAD)
    sr = signed_report_sr(study_spec)
    ingest(cast.center, [sr], Source.REPORT)
    study = Study.objects.get(organization=cast.center, study_instance_uid=study_spec.study_uid)
    assert study.modalities == ["CT", "SR"]  # the stored counters count the report
    assert study.number_of_series == 2
    return ReadStudy(study=study, image_series_uid=images[0].SeriesInstanceUID, image_uid=images[1].SOPInstanceUID,
                     sr_series_uid=sr.SeriesInstanceUID, sr_uid=sr.SOPInstanceUID)


def grant(cast, study: Study, *, hide_reports: bool, level: str = "full") -> StudyAccessGrant:
    return study_access_grant_create(actor=None, study=study, user=cast.radiologist, level=level,
                                     reason="peer review" if hide_reports else "assigned read",
                                     expires_at=timezone.now() + timedelta(days=1), hide_reports=hide_reports)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def get(client, url: str, accept: str = JSON, **params):
    return client.get(url, params, HTTP_ACCEPT=accept)


def shown_paths(s: ReadStudy) -> list[tuple[str, str, dict]]:
    """Every route that answers 200 about the study: (url, Accept, query)."""
    study = f"/dicomweb/studies/{s.uid}"
    images = f"{study}/series/{s.image_series_uid}"
    image = f"{images}/instances/{s.image_uid}"
    everything = {"includefield": "all"}
    return [
        ("/dicomweb/studies", JSON, everything), (f"{study}/series", JSON, everything),
        ("/dicomweb/series", JSON, everything), (f"{study}/instances", JSON, everything),
        ("/dicomweb/instances", JSON, everything), (f"{images}/instances", JSON, everything),
        (f"{study}/metadata", JSON, {}), (f"{images}/metadata", JSON, {}), (f"{image}/metadata", JSON, {}),
        (study, 'multipart/related; type="application/dicom"', {}),
        (images, 'multipart/related; type="application/dicom"', {}),
        (f"{study}/thumbnail", "image/png", {}), (f"{study}/rendered", "image/png", {}),
        (f"{image}/frames/1", 'multipart/related; type="application/octet-stream"; transfer-syntax=*', {}),
    ]


def report_paths(s: ReadStudy) -> list[tuple[str, str]]:
    """The routes that name the report: 200 for whoever sees it (those after the first five hold no image)."""
    series = f"/dicomweb/studies/{s.uid}/series/{s.sr_series_uid}"
    instance = f"{series}/instances/{s.sr_uid}"
    return [
        (series, 'multipart/related; type="application/dicom"'), (f"{series}/metadata", JSON),
        (f"{series}/instances", JSON), (instance, "application/dicom"), (f"{instance}/metadata", JSON),
        (f"{series}/thumbnail", "image/png"), (f"{series}/rendered", "image/png"),
        (f"{instance}/thumbnail", "image/png"), (f"{instance}/rendered", "image/png"),
        (f"{instance}/frames/1", 'multipart/related; type="application/octet-stream"; transfer-syntax=*'),
        (f"{instance}/bulkdata/7FE00010", "application/octet-stream"),
    ]


def leaks(response, s: ReadStudy) -> list[bytes]:
    content = body(response)
    return [secret for secret in s.secrets if secret in content]


def values(rows: list[dict], tag: str) -> list:
    return [v for row in rows for v in row.get(tag, {}).get("Value", [])]


# --- the blinded reviewer -----------------------------------------------------------------------------

def test_no_dicomweb_answer_to_a_blinded_reviewer_carries_the_report_or_its_reader(cast, login, read_study):
    grant(cast, read_study.study, hide_reports=True)
    client = login(cast.radiologist)
    for url, accept, params in shown_paths(read_study):
        response = get(client, url, accept, **params)
        assert response.status_code == 200, (url, response.status_code, body(response)[:300])
        assert leaks(response, read_study) == [], url


def test_a_blinded_reviewer_gets_404_for_the_report_as_for_a_missing_one(cast, login, read_study):
    grant(cast, read_study.study, hide_reports=True)
    client = login(cast.radiologist)
    for url, accept in report_paths(read_study):
        response = get(client, url, accept)
        assert response.status_code == 404, (url, response.status_code)
        assert leaks(response, read_study) == [], url
    missing = f"/dicomweb/studies/{read_study.uid}/series/{read_study.image_series_uid}/instances/1.2.3.404"
    assert get(client, missing, "application/dicom").status_code == 404


def test_searching_for_the_report_by_its_attributes_finds_nothing(cast, login, read_study):
    grant(cast, read_study.study, hide_reports=True)
    client = login(cast.radiologist)
    study = f"/dicomweb/studies/{read_study.uid}"
    for url, params in [("/dicomweb/instances", {"SOPInstanceUID": read_study.sr_uid}),
                        (f"{study}/instances", {"SOPClassUID": BASIC_TEXT_SR}),
                        ("/dicomweb/series", {"Modality": "SR"}), (f"{study}/series", {"Modality": "SR"}),
                        (f"{study}/series", {"SeriesInstanceUID": read_study.sr_series_uid}),
                        ("/dicomweb/studies", {"ModalitiesInStudy": "SR"})]:
        response = get(client, url, **params)
        assert response.status_code == 200
        assert response.json() == [], (url, params)
    # The study itself is still found, on what it shows.
    assert len(get(client, "/dicomweb/studies", ModalitiesInStudy="CT").json()) == 1


def test_a_blinded_reviewers_counts_and_modalities_leave_the_report_out(cast, login, read_study):
    grant(cast, read_study.study, hide_reports=True)
    client = login(cast.radiologist)
    fields = {"includefield": "ModalitiesInStudy,NumberOfStudyRelatedSeries,NumberOfStudyRelatedInstances"}
    for url in ("/dicomweb/studies", f"/dicomweb/studies/{read_study.uid}/series", "/dicomweb/series",
                "/dicomweb/instances"):
        rows = get(client, url, **fields).json()
        assert rows, url
        assert set(values(rows, "00080061")) == {"CT"}, url
        assert set(values(rows, "00201206")) == {1}, url
        assert set(values(rows, "00201208")) == {3}, url
    assert values(get(client, f"/dicomweb/studies/{read_study.uid}/series").json(), "00201209") == [3]


def test_a_blinded_reviewers_study_pages_list_the_images_only(cast, login, read_study):
    grant(cast, read_study.study, hide_reports=True)
    client = login(cast.radiologist)
    page = client.get(reverse("study_detail", args=[read_study.study.public_id]))
    assert page.status_code == 200
    assert [s.series_instance_uid for s in page.context["series"]] == [read_study.image_series_uid]
    row = page.context["study"]
    assert (row.modalities, row.number_of_series, row.number_of_instances) == (["CT"], 1, 3)
    assert leaks(page, read_study) == []
    assert b"ReadRoom report" not in page.content
    [listed] = client.get(reverse("study_list")).context["rows"]
    assert (listed.modalities, listed.number_of_series, listed.number_of_instances) == (["CT"], 1, 3)


def test_any_hiding_grant_blinds_even_beside_a_normal_one(cast, login, read_study):
    grant(cast, read_study.study, hide_reports=False)
    grant(cast, read_study.study, hide_reports=True, level="preview")
    client = login(cast.radiologist)
    series = get(client, f"/dicomweb/studies/{read_study.uid}/series").json()
    assert values(series, "0020000E") == [read_study.image_series_uid]
    report = f"/dicomweb/studies/{read_study.uid}/series/{read_study.sr_series_uid}/instances/{read_study.sr_uid}"
    assert get(client, report, "application/dicom").status_code == 404


# --- everyone else sees the report as before ----------------------------------------------------------

@pytest.mark.parametrize("who", ["normal grant", "center admin", "member beside a hiding grant"])
def test_members_and_normal_grants_still_receive_the_report(cast, login, read_study, who):
    if who == "normal grant":
        grant(cast, read_study.study, hide_reports=False)
        client = login(cast.radiologist)
    else:
        client = login(cast.center_admin)
        if who == "member beside a hiding grant":  # a member's access does not come through the grant
            study_access_grant_create(actor=None, study=read_study.study, user=cast.center_admin, level="full",
                                      reason="peer review", expires_at=timezone.now() + timedelta(days=1),
                                      hide_reports=True)
    for url, accept in report_paths(read_study)[:5]:
        response = get(client, url, accept)
        assert response.status_code == 200, (url, response.status_code)
        assert read_study.sr_uid.encode() in body(response), url
    assert READER_TEXT in body(get(client, f"/dicomweb/studies/{read_study.uid}/metadata"))
    rows = get(client, "/dicomweb/studies", includefield="NumberOfStudyRelatedSeries").json()
    assert values(rows, "00201206") == [2]
    assert set(values(rows, "00080061")) == {"CT", "SR"}
    page = client.get(reverse("study_detail", args=[read_study.study.public_id]))
    assert read_study.sr_series_uid in [s.series_instance_uid for s in page.context["series"]]


# --- the remembered study access (one round trip per search) ------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_remembered_access_is_blinded_too_and_a_hiding_grant_given_since_blinds_at_once(cast, login,
                                                                                           read_study):
    """study_get remembers the blinding with the level, and the database checks both: a viewer's repeated
    searches and frames stay blinded, and a hiding grant given after the access was remembered applies to the
    very next request."""
    normal = grant(cast, read_study.study, hide_reports=False)
    client = login(cast.radiologist)
    series_url = f"/dicomweb/studies/{read_study.uid}/series"
    for _ in range(2):  # remembered after the first
        assert len(get(client, series_url).json()) == 2
    grant(cast, read_study.study, hide_reports=True)
    for _ in range(2):
        response = get(client, series_url)
        assert values(response.json(), "0020000E") == [read_study.image_series_uid]
    report = f"/dicomweb/studies/{read_study.uid}/series/{read_study.sr_series_uid}/instances/{read_study.sr_uid}"
    for _ in range(2):
        assert get(client, report, "application/dicom").status_code == 404
        assert get(client, f"{report}/frames/1", "multipart/related; type=\"application/octet-stream\"; "
                                                 "transfer-syntax=*").status_code == 404
    image = (f"/dicomweb/studies/{read_study.uid}/series/{read_study.image_series_uid}/instances/"
             f"{read_study.image_uid}")
    assert get(client, image, "application/dicom").status_code == 200
    StudyAccessGrant.objects.filter(pk=normal.pk).update(revoked_at=timezone.now())
    assert leaks(get(client, f"/dicomweb/studies/{read_study.uid}/instances", includefield="all"), read_study) == []


# --- a client nobody here wrote -----------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_of_a_blinded_reviewer_never_sees_the_report(cast, live_server, read_study):
    import requests
    from dicomweb_client.api import DICOMwebClient

    from accounts.policy import actor_for_user
    from accounts.services import personal_token_create

    grant(cast, read_study.study, hide_reports=True)
    _token, secret = personal_token_create(actor=actor_for_user(cast.radiologist), name="peer review")
    with requests.Session() as session:
        client = DICOMwebClient(url=f"{live_server.url}/dicomweb", session=session,
                                headers={"Authorization": f"Bearer {secret}", "Connection": "close"})
        series = client.search_for_series(read_study.uid)
        assert values(series, "0020000E") == [read_study.image_series_uid]
        instances = client.search_for_instances(read_study.uid, fields=["all"])
        assert read_study.sr_uid not in values(instances, "00080018")
        assert len(instances) == 3
        retrieved = client.retrieve_study(read_study.uid)
        assert sorted(ds.Modality for ds in retrieved) == ["CT"] * 3
        metadata = client.retrieve_study_metadata(read_study.uid)
        assert READER_TEXT.decode() not in str(metadata)
        assert read_study.sr_uid not in str(metadata)
        with pytest.raises(requests.HTTPError) as refused:
            client.retrieve_instance(read_study.uid, read_study.sr_series_uid, read_study.sr_uid)
        assert refused.value.response.status_code == 404
        with pytest.raises(requests.HTTPError) as refused:
            client.retrieve_series_metadata(read_study.uid, read_study.sr_series_uid)
        assert refused.value.response.status_code == 404
