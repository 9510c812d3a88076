"""DICOMweb QIDO-RS: matching, paging, includefield, scoping by organization and grant, de-identified previews."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from accounts.models import AuditEvent
from studies import deid, synthetic
from studies.dicomweb import qido
from studies.ingest import Source, ingest_stream
from studies.models import Instance, Series, Study, StudyAccessGrant
from studies.services import study_access_grant_create, study_access_grant_revoke

URL = "/dicomweb/studies"
CANARY = "ZEBRACANARY"


def ingest(org, datasets) -> None:
    for i, ds in enumerate(datasets):
        outcome = ingest_stream(organization=org, stream=io.BytesIO(synthetic.to_bytes(ds)), filename=f"{i}.dcm",
                                source=Source.UPLOAD)
        assert outcome.ok, outcome.reason


def spec(n: int, *, accession: str, description: str, when: date, referring: str = "Okafor^Chidi^^Dr",
         uid: str | None = None) -> synthetic.StudySpec:
    kwargs = {"study_uid": uid} if uid else {}
    return synthetic.StudySpec(patient=synthetic.demo_patient(n), accession=accession, description=description,
                               study_date=when, referring=referring, **kwargs)


@dataclass
class Library:
    ct: synthetic.StudySpec  # Rivera^Ana, CT, 2026-11-02 08:30
    mr: synthetic.StudySpec  # Nguyen^Minh, MR (3 series), 2024-03-15 08:30, referred by Smith^John
    cr: synthetic.StudySpec  # Johnson^Tamara, CR, 2024-07-01 14:00
    foreign: synthetic.StudySpec  # at the other center: Rivera^Ana too

    def uids(self, *names: str) -> list[str]:
        return [getattr(self, n).study_uid for n in names]


@pytest.fixture
def library(cast, study_spec) -> Library:
    ct = study_spec
    ingest(cast.center, synthetic.ct_series(ct, slices=3, size=32))
    mr = spec(1, accession="ACC2", description="MR BRAIN WITHOUT CONTRAST", when=date(2024, 3, 15),
              referring="Smith^John")
    ingest(cast.center, synthetic.mr_study(mr, slices=2, size=32))
    cr = spec(2, accession="ACC3", description="CHEST 2 VIEWS", when=date(2024, 7, 1))
    views = synthetic.radiograph(cr, rows=32, cols=32)
    for ds in views:
        ds.StudyTime = "140000"
    ingest(cast.center, views)
    foreign = spec(0, accession="ACC9", description="CT CHEST", when=date(2025, 1, 1))
    ingest(cast.other_center, synthetic.ct_series(foreign, slices=1, size=32))
    return Library(ct=ct, mr=mr, cr=cr, foreign=foreign)


def study_uids(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [row["0020000D"]["Value"][0] for row in response.json()]


def value(row: dict, tag: str):
    values = row.get(tag, {}).get("Value", [])
    if values and isinstance(values[0], dict):
        return values[0].get("Alphabetic")
    return values[0] if values else None


@pytest.fixture
def tech(cast, login) -> Client:
    return login(cast.technologist)


# --- studies: answer shape and order ---------------------------------------------------------------

STUDY_REQUIRED = {"00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00081190",
                  "00100010", "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206", "00201208"}


def test_studies_come_newest_first_with_the_required_attributes(tech, library):
    response = tech.get(URL)
    assert response["Content-Type"] == "application/dicom+json"
    assert study_uids(response) == library.uids("ct", "cr", "mr")
    rows = response.json()
    for row in rows:
        assert set(row) >= STUDY_REQUIRED
    mr = rows[2]
    assert value(mr, "00100010") == "Nguyen^Minh"
    assert value(mr, "00080061") == "MR"
    assert value(mr, "00201206") == 3
    assert value(mr, "00201208") == 6
    assert value(mr, "00080020") == "20240315"
    assert value(mr, "00081190") == f"http://testserver{URL}/{library.mr.study_uid}"
    assert value(mr, "00080005") == "ISO_IR 192"


def test_nothing_matching_is_an_empty_list(tech, library):
    response = tech.get(URL, {"PatientID": "NOBODY"})
    assert response.status_code == 200
    assert response.json() == []


# --- matching -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "expected"), [
    ({"PatientID": "MRN100201"}, ["mr"]),
    ({"00100020": "MRN100201"}, ["mr"]),
    ({"PatientID": "MRN10020*"}, ["ct", "cr", "mr"]),
    ({"PatientName": "riv*"}, ["ct"]),
    ({"PatientName": "RIVERA^ANA"}, ["ct"]),
    ({"PatientName": "Rivera"}, []),  # no wildcard: the whole name must match
    ({"PatientName": "*son^Tam*"}, ["cr"]),
    ({"PatientName": "Ng?yen^Minh"}, ["mr"]),
    ({"PatientName": "N*^M?nh"}, ["mr"]),
    ({"PatientName": "*"}, ["ct", "cr", "mr"]),
    ({"StudyDate": "20240315"}, ["mr"]),
    ({"StudyDate": "20240101-"}, ["ct", "cr", "mr"]),
    ({"StudyDate": "-20240630"}, ["mr"]),
    ({"StudyDate": "20240601-20241231"}, ["cr"]),
    ({"00080020": "20240601-20261231"}, ["ct", "cr"]),
    ({"StudyTime": "1200-"}, ["cr"]),
    ({"StudyTime": "-0900"}, ["ct", "mr"]),
    ({"StudyTime": "0830"}, ["ct", "mr"]),
    ({"AccessionNumber": "ACC2"}, ["mr"]),
    ({"AccessionNumber": "ACC*"}, ["ct", "cr", "mr"]),
    ({"ModalitiesInStudy": "MR"}, ["mr"]),
    ({"ModalitiesInStudy": "CT,CR"}, ["ct", "cr"]),
    ({"ModalitiesInStudy": "ct\\mr"}, ["ct", "mr"]),
    ({"StudyDescription": "*chest*"}, ["ct", "cr"]),
    ({"StudyDescription": "mr brain*"}, ["mr"]),
    ({"ReferringPhysicianName": "smith*"}, ["mr"]),
    ({"PatientSex": "F"}, ["ct", "cr"]),
    ({"PatientBirthDate": "-19620101"}, ["ct"]),
    ({"PatientName": "riv*", "ModalitiesInStudy": "MR"}, []),
    ({"PatientSex": ""}, ["ct", "cr", "mr"]),  # empty: matches all, and is returned
])
def test_study_matching(tech, library, params, expected):
    assert study_uids(tech.get(URL, params)) == library.uids(*expected)


def test_study_uid_lists_are_comma_or_backslash_separated(tech, library):
    for separator in (",", "\\"):
        response = tech.get(URL, {"StudyInstanceUID": separator.join(library.uids("mr", "ct"))})
        assert study_uids(response) == library.uids("ct", "mr")


def test_percent_encoded_values_are_decoded(tech, library):
    assert study_uids(tech.get(f"{URL}?PatientName=Riv%2A")) == library.uids("ct")
    assert study_uids(tech.get(f"{URL}?PatientName=Rivera%5EAna")) == library.uids("ct")
    assert study_uids(tech.get(f"{URL}?PatientName=Rivera^Ana")) == library.uids("ct")  # a literal caret too
    assert study_uids(tech.get(f"{URL}?StudyInstanceUID={library.ct.study_uid}%2C{library.cr.study_uid}")) == \
        library.uids("ct", "cr")


def test_the_matching_keys_come_back_in_the_answer(tech, library):
    rows = tech.get(URL, {"InstitutionName": "", "PatientID": "MRN100201"}).json()
    assert value(rows[0], "00080080") == "Lakeside Imaging"


@pytest.mark.parametrize(("params", "field"), [
    ({"Foo": "1"}, "Foo"),
    ({"PatientsName": "x"}, "PatientsName"),
    ({"SOPInstanceUID": "1.2.3"}, "SOPInstanceUID"),  # an instance attribute on a study search
    ({"Modality": "CT"}, "Modality"),  # series level: studies match on ModalitiesInStudy
    ({"NumberOfStudyRelatedInstances": "3"}, "NumberOfStudyRelatedInstances"),  # returned, not matched
    ({"StudyDate": "2024-13-01"}, "StudyDate"),
    ({"StudyDate": "yesterday"}, "StudyDate"),
    ({"StudyDate": "-"}, "StudyDate"),
    ({"StudyTime": "25h"}, "StudyTime"),
    ({"StudyInstanceUID": "1.2.abc"}, "StudyInstanceUID"),
    ({"limit": "0"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"fuzzymatching": "maybe"}, "fuzzymatching"),
    ({"includefield": "NotAnAttribute"}, "includefield"),
    ({"PatientID": "A\x00B"}, "PatientID"),  # PostgreSQL cannot even compare a NUL
    ({"offset": str(10**30)}, "offset"),
    ({"StudyInstanceUID": ",".join(f"1.2.{n}" for n in range(501))}, "StudyInstanceUID"),
])
def test_bad_parameters_are_400_naming_the_parameter(tech, library, params, field):
    response = tech.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_query"
    assert field in error["fields"]


def test_a_parameter_given_twice_is_400(tech, library):
    assert tech.get(f"{URL}?PatientID=A&PatientID=B").status_code == 400


def test_fuzzy_matching_is_accepted_off_and_answered_literally_when_asked_on(tech, library):
    off = tech.get(URL, {"fuzzymatching": "false", "PatientName": "riv*"})
    assert "Warning" not in off
    assert study_uids(off) == library.uids("ct")
    on = tech.get(URL, {"fuzzymatching": "true", "PatientName": "rivra*"})
    assert study_uids(on) == []
    assert on["Warning"].startswith("299 ")
    assert "fuzzymatching" in on["Warning"]


def test_only_dicom_json_is_offered(tech, library):
    assert tech.get(URL, HTTP_ACCEPT="application/dicom+xml").status_code == 406
    assert tech.get(URL, HTTP_ACCEPT="application/dicom+json").status_code == 200
    assert tech.get(URL, HTTP_ACCEPT="application/json, text/plain, */*").status_code == 200


# --- limit, offset, includefield ---------------------------------------------------------------------

def test_limit_and_offset_page_through_the_studies(tech, library):
    assert study_uids(tech.get(URL, {"limit": "2"})) == library.uids("ct", "cr")
    assert study_uids(tech.get(URL, {"limit": "2", "offset": "2"})) == library.uids("mr")
    assert study_uids(tech.get(URL, {"offset": "5"})) == []
    assert "Warning" not in tech.get(URL, {"limit": "2"})  # the client asked for 2: no server cut


def test_includefield_by_keyword_tag_list_or_all(tech, library):
    plain = tech.get(URL, {"StudyInstanceUID": library.ct.study_uid}).json()[0]
    assert "00080080" not in plain
    for include in ("InstitutionName", "00080080", "00081030,00080080", "all"):
        row = tech.get(URL, {"StudyInstanceUID": library.ct.study_uid, "includefield": include}).json()[0]
        assert value(row, "00080080") == "Lakeside Imaging"
    # what OHIF asks for: StudyDescription and (series-level) Modality, which a study row does not have
    row = tech.get(f"{URL}?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060").json()[0]
    assert value(row, "00081030") == "CT CHEST WITH CONTRAST"


def test_instance_includefield_reads_attributes_the_index_does_not_hold(tech, library):
    url = f"{URL}/{library.ct.study_uid}/instances"
    rows = tech.get(url, {"includefield": "SliceThickness,ImagePositionPatient"}).json()
    assert [value(r, "00180050") for r in rows] == [2.5, 2.5, 2.5]
    assert rows[1]["00200032"]["Value"] == [-179.2, -179.2, -2.5]
    everything = tech.get(url, {"includefield": "all", "InstanceNumber": "1"}).json()
    assert len(everything) == 1
    assert value(everything[0], "00180060") == 120  # KVP
    pixel_data = everything[0]["7FE00010"]
    assert pixel_data["BulkDataURI"].startswith(f"http://testserver{URL}/{library.ct.study_uid}/series/")
    assert "Value" not in pixel_data


# --- series and instances ----------------------------------------------------------------------------

def test_a_studys_series_in_series_number_order(tech, library):
    rows = tech.get(f"{URL}/{library.mr.study_uid}/series").json()
    assert [value(r, "0008103E") for r in rows] == ["AX T1", "AX T2 FLAIR", "SAG T1"]
    for row in rows:
        assert {"00080005", "00080060", "0008103E", "00081190", "0020000D", "0020000E", "00200011",
                "00201209"} <= set(row)
        assert value(row, "00201209") == 2
        assert value(row, "00081190") == f"http://testserver{URL}/{library.mr.study_uid}/series/" \
                                         f"{value(row, '0020000E')}"
    assert "00100010" not in rows[0]  # a study's series: no need to repeat the patient
    described = tech.get(f"{URL}/{library.mr.study_uid}/series", {"SeriesDescription": "*t2*"}).json()
    assert [value(r, "0008103E") for r in described] == ["AX T2 FLAIR"]
    numbered = tech.get(f"{URL}/{library.mr.study_uid}/series", {"SeriesNumber": "3"}).json()
    assert [value(r, "0008103E") for r in numbered] == ["SAG T1"]


def test_all_series_carry_their_studys_attributes_and_match_on_them(tech, library):
    rows = tech.get("/dicomweb/series", {"Modality": "MR"}).json()
    assert len(rows) == 3
    assert {value(r, "00100010") for r in rows} == {"Nguyen^Minh"}
    assert {value(r, "0020000D") for r in rows} == {library.mr.study_uid}
    by_patient = tech.get("/dicomweb/series", {"PatientID": "MRN100202"}).json()
    assert [value(r, "00080060") for r in by_patient] == ["CR"]
    one = rows[1]["0020000E"]["Value"][0]
    assert [value(r, "0020000E") for r in tech.get("/dicomweb/series", {"SeriesInstanceUID": one}).json()] == [one]


def test_a_series_instances_in_instance_number_order(tech, library):
    series_uid = Series.objects.get(study__study_instance_uid=library.ct.study_uid).series_instance_uid
    rows = tech.get(f"{URL}/{library.ct.study_uid}/series/{series_uid}/instances").json()
    assert [value(r, "00200013") for r in rows] == [1, 2, 3]
    for row in rows:
        assert value(row, "00080016") == synthetic.CT_IMAGE
        assert (value(row, "00280010"), value(row, "00280011"), value(row, "00280008")) == (32, 32, 1)
        assert value(row, "00280100") == 16
        assert value(row, "0020000E") == series_uid
        assert value(row, "00081190").endswith(f"/series/{series_uid}/instances/{value(row, '00080018')}")


def test_instances_across_studies_match_on_any_level(tech, library):
    ct_rows = tech.get("/dicomweb/instances", {"PatientName": "rivera*"}).json()
    assert len(ct_rows) == 3
    sop = ct_rows[0]["00080018"]["Value"][0]
    [row] = tech.get("/dicomweb/instances", {"SOPInstanceUID": sop}).json()
    assert value(row, "00100020") == "MRN100200"  # study attributes
    assert value(row, "00080060") == "CT"  # series attributes
    mr = tech.get(f"{URL}/{library.mr.study_uid}/instances", {"Modality": "MR", "SeriesNumber": "2"}).json()
    assert len(mr) == 2
    assert {value(r, "0008103E") for r in mr} == {"AX T2 FLAIR"}


def test_unknown_foreign_or_malformed_studies_in_the_path_are_404(tech, library):
    assert tech.get(f"{URL}/1.2.3.4.5/series").status_code == 404
    assert tech.get(f"{URL}/{library.foreign.study_uid}/series").status_code == 404
    assert tech.get(f"{URL}/{library.foreign.study_uid}/instances").status_code == 404
    assert tech.get(f"{URL}/1.2.abc/series").status_code == 404
    assert tech.get(f"{URL}/{library.ct.study_uid}/series/1.2.3/instances").status_code == 404
    assert tech.get(f"{URL}/{library.ct.study_uid}/series/1..2/instances").status_code == 404


# --- who sees what ------------------------------------------------------------------------------------

def test_another_centers_studies_are_invisible(cast, login, tech, library):
    assert library.foreign.study_uid not in study_uids(tech.get(URL))
    assert study_uids(tech.get(URL, {"PatientName": "Rivera^Ana"})) == library.uids("ct")
    assert study_uids(login(cast.other_admin).get(URL)) == library.uids("foreign")
    assert tech.get("/dicomweb/instances", {"StudyInstanceUID": library.foreign.study_uid}).json() == []


def test_the_same_study_uid_at_another_center_shows_each_center_its_own(cast, login, tech, library):
    theirs = synthetic.ct_series(library.ct, slices=1, size=32)
    theirs[0].PatientName = "Other^Person"
    ingest(cast.other_center, theirs)
    [ours] = tech.get(URL, {"StudyInstanceUID": library.ct.study_uid}).json()
    assert value(ours, "00100010") == "Rivera^Ana"
    assert value(ours, "00201208") == 3
    [their_row] = login(cast.other_admin).get(URL, {"StudyInstanceUID": library.ct.study_uid}).json()
    assert value(their_row, "00100010") == "Other^Person"
    assert len(tech.get(f"{URL}/{library.ct.study_uid}/instances").json()) == 3


@pytest.mark.parametrize(("principal", "sees"), [
    ("center_admin", 3), ("technologist", 3), ("center_viewer", 3), ("center_finance", 0), ("radiologist", 0),
    ("other_admin", 1), ("patient", 0),
])
def test_who_sees_which_studies(cast, login, library, principal, sees):
    assert len(study_uids(login(getattr(cast, principal)).get(URL))) == sees


def test_anonymous_is_401(db, library):
    response = Client().get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_organization_key_searches_its_center(cast, library):
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="RIS",
                                                   roles=["viewer"])
    assert study_uids(Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get(URL)) == library.uids("ct", "cr", "mr")
    assert study_uids(Client().get(URL, {"token": secret})) == library.uids("ct", "cr", "mr")


def test_a_key_is_looked_up_once_in_a_while_and_its_revocation_is_immediate(cast, library):
    from accounts.policy import actor_for_user

    key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="RIS", roles=["viewer"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(URL).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL).status_code == 200
    assert not [q for q in queries.captured_queries if "organizationapikey" in q["sql"]]
    # Revoked through the application: refused at once, even though the key was just seen usable.
    account_services.api_key_revoke(actor=actor_for_user(cast.center_admin), key=key)
    response = client.get(URL)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_key_revoked_behind_the_applications_back_is_refused_within_the_cache_time(cast, library, monkeypatch):
    from accounts.models import OrganizationApiKey
    from studies.dicomweb import auth

    key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="RIS", roles=["viewer"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(URL).status_code == 200
    OrganizationApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())  # no signal
    monkeypatch.setattr(auth, "CREDENTIAL_CACHE_SECONDS", 0.0)  # as once that time has passed
    assert client.get(URL).status_code == 401
    monkeypatch.undo()
    later, later_secret = account_services.api_key_create(actor=None, organization=cast.center, name="PACS",
                                                          roles=["viewer"])
    OrganizationApiKey.objects.filter(pk=later.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {later_secret}")
    assert client.get(URL).status_code == 200  # looked up, and kept with its expiry
    in_two_hours = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(timezone, "now", lambda: in_two_hours)
    assert client.get(URL).status_code == 401  # expiry is checked on every request, cached or not


# --- grants and de-identified previews ---------------------------------------------------------------

@pytest.fixture
def canary_study(cast) -> synthetic.StudySpec:
    canary_spec = spec(3, accession="ACC77", description="CT ABDOMEN", when=date(2025, 6, 1))
    datasets = synthetic.ct_series(canary_spec, slices=2, size=32)
    for ds in datasets:
        synthetic.with_private_and_nested_phi(ds, CANARY)
        ds.PatientBirthDate = "19700101"
    ingest(cast.center, datasets)
    return canary_spec


def grant(cast, study_uid: str, level: str, **kwargs) -> StudyAccessGrant:
    study = Study.objects.get(organization=cast.center, study_instance_uid=study_uid)
    return study_access_grant_create(actor=None, study=study, user=cast.radiologist, level=level,
                                     reason="offered case", expires_at=timezone.now() + timedelta(days=1), **kwargs)


def test_a_preview_grant_shows_the_study_de_identified_everywhere(cast, login, library, canary_study):
    grant(cast, canary_study.study_uid, "preview")
    client = login(cast.radiologist)
    uid = canary_study.study_uid
    answers = [client.get(URL), client.get(f"{URL}/{uid}/series"), client.get(f"{URL}/{uid}/instances"),
               client.get(f"{URL}/{uid}/instances", {"includefield": "all"}),
               client.get("/dicomweb/series", {"includefield": "all"}),
               client.get("/dicomweb/instances", {"includefield": "all"})]
    for response in answers:
        assert response.status_code == 200
        assert response.json(), response.request
        assert CANARY not in response.content.decode()
        assert "19700101" not in response.content.decode()
    [row] = answers[0].json()
    assert value(row, "0020000D") == uid  # UIDs are retained: the viewer addresses the study by them
    assert value(row, "00100010") != f"{CANARY}^Name"
    assert value(row, "00120062") == "YES"  # Patient Identity Removed
    assert value(row, "00201208") == 2


def test_a_preview_study_never_matches_on_what_its_preview_hides(cast, login, library, canary_study):
    grant(cast, canary_study.study_uid, "preview")
    client = login(cast.radiologist)
    for params in ({"PatientName": f"{CANARY}*"}, {"PatientID": f"{CANARY}-ID"}, {"StudyDate": "20250601"},
                   {"AccessionNumber": CANARY[:16]}, {"StudyDescription": f"*{CANARY}*"},
                   {"PatientName": "*"}):
        assert study_uids(client.get(URL, params)) == ([] if params != {"PatientName": "*"}
                                                       else [canary_study.study_uid])
    assert client.get(f"{URL}/{canary_study.study_uid}/series", {"PatientName": f"{CANARY}*"}).json() == []
    # what the preview shows may be matched on
    assert study_uids(client.get(URL, {"ModalitiesInStudy": "CT"})) == [canary_study.study_uid]
    assert study_uids(client.get(URL, {"StudyInstanceUID": canary_study.study_uid})) == [canary_study.study_uid]


@pytest.mark.parametrize(("keyword", "hidden"), [
    ("PatientSex", True), ("BodyPartExamined", True), ("SeriesDescription", True), ("InstitutionName", True),
    ("StudyDate", True), ("TransferSyntaxUID", True),  # not on the allow-list, or shown changed in a preview
    ("Modality", False), ("ModalitiesInStudy", False), ("SeriesInstanceUID", False), ("Rows", False),
    ("NumberOfFrames", False), ("StudyTime", False),  # shown as stored
])
def test_a_preview_is_matched_only_on_what_its_allow_list_shows_as_stored(keyword, hidden):
    from pydicom.datadict import tag_for_keyword

    from studies.dicomweb.qido import _hidden_in_preview

    assert _hidden_in_preview(f"{tag_for_keyword(keyword):08X}") is hidden


def test_a_full_grant_shows_everything(cast, login, library):
    grant(cast, library.mr.study_uid, "full")
    client = login(cast.radiologist)
    [row] = client.get(URL, {"PatientName": "nguyen*"}).json()
    assert value(row, "00100010") == "Nguyen^Minh"
    assert value(row, "00100030") is not None
    assert "00120062" not in row


def test_expired_or_revoked_grants_show_nothing(cast, login, library):
    expired = grant(cast, library.mr.study_uid, "full")
    StudyAccessGrant.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    revoked = grant(cast, library.cr.study_uid, "full")
    study_access_grant_revoke(actor=None, grant=revoked)
    client = login(cast.radiologist)
    assert study_uids(client.get(URL)) == []
    assert client.get(f"{URL}/{library.mr.study_uid}/series").status_code == 404
    assert client.get(f"{URL}/{library.cr.study_uid}/instances").status_code == 404
    assert client.get("/dicomweb/instances").json() == []


# --- audit --------------------------------------------------------------------------------------------

def test_searches_that_return_studies_are_audited_once_per_answer(cast, tech, library):
    tech.get(URL, {"PatientName": "*"})
    event = AuditEvent.objects.get(action="study.searched")
    assert event.actor == cast.technologist
    assert sorted(event.extra["full"]) == sorted(library.uids("ct", "cr", "mr"))
    assert event.extra["query"] == {"PatientName": "*"}
    tech.get(URL, {"PatientID": "NOBODY"})
    assert AuditEvent.objects.filter(action="study.searched").count() == 1  # nothing shown, nothing to audit
    tech.get(f"{URL}/{library.mr.study_uid}/series")
    accessed = AuditEvent.objects.get(action="study.accessed")
    assert accessed.object_id == library.mr.study_uid
    assert accessed.extra == {"level": "full", "fetched": "qido:series"}


def test_a_search_within_a_study_is_audited_even_when_it_finds_nothing(cast, tech, library):
    response = tech.get(f"{URL}/{library.mr.study_uid}/series", {"Modality": "US"})
    assert response.status_code == 200
    assert response.json() == []
    accessed = AuditEvent.objects.get(action="study.accessed")  # the study was reached: that is the access
    assert accessed.object_id == library.mr.study_uid


def _readers_client(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT="application/dicom+json")


def _accessed() -> int:
    return AuditEvent.objects.filter(action="study.accessed").count()


@pytest.mark.django_db(transaction=True)
def test_a_studys_series_cost_one_exchange_with_postgresql_once_its_access_is_remembered(
        cast, library, postgres_exchanges):
    """The first search in a study: the lookup, then the rows and the audit record together
    (core.sql.one_round_trip). After that, the remembered access is checked by the database in the same
    round trip as the rows and the record. Django's health check adds none. What a viewer or the benchmark
    repeats hundreds of times."""
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="viewer",
                                                   roles=["technologist"])
    client = _readers_client(secret)
    for uid in (library.ct.study_uid, library.ct.study_uid, library.ct.study_uid, library.cr.study_uid):
        # the key's lookup, and psycopg preparing each statement on its second run (the study lookup's runs
        # once per study)
        assert client.get(f"{URL}/{uid}/series").status_code == 200
    url = f"{URL}/{library.mr.study_uid}/series"
    for expected_exchanges in (2, 1, 1):
        before = _accessed()
        with postgres_exchanges() as seen:
            response = client.get(url)
        assert response.status_code == 200
        assert len(response.json()) == 3
        assert seen.count == expected_exchanges, seen.trace
        assert _accessed() == before + 1
    assert "readroom_require" in seen.trace


# --- a remembered study access holds only while the database agrees -------------------------------------
# Each test below changes what the radiologist or member may see after their access was remembered; the
# very next search must answer as if nothing had been remembered, and record exactly what it served.

def _remembered(client: Client, uid: str) -> None:
    for _ in range(2):
        response = client.get(f"{URL}/{uid}/series")
        assert response.status_code == 200
        assert len(response.json()) == 3


def _last_access() -> AuditEvent:
    return AuditEvent.objects.filter(action="study.accessed").latest("id")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["revoke", "expire", "delete the study"])
def test_a_remembered_access_that_has_ended_serves_nothing_and_records_nothing(cast, login, library, change):
    uid = library.mr.study_uid
    given = grant(cast, uid, "full")
    client = login(cast.radiologist)
    _remembered(client, uid)
    if change == "revoke":
        study_access_grant_revoke(actor=None, grant=given)
    elif change == "expire":
        StudyAccessGrant.objects.filter(pk=given.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        Study.objects.filter(study_instance_uid=uid).update(deleted_at=timezone.now())
    before = _accessed()
    for path in ("series", "instances"):
        assert client.get(f"{URL}/{uid}/{path}").status_code == 404
    assert _accessed() == before
    assert client.get(f"{URL}/{library.ct.study_uid}/series").status_code == 404  # never granted: still not


@pytest.mark.django_db(transaction=True)
def test_a_member_who_loses_the_role_loses_a_remembered_access(cast, login, library):
    from accounts.models import Membership

    uid = library.mr.study_uid
    client = login(cast.technologist)
    _remembered(client, uid)
    Membership.objects.filter(user=cast.technologist, organization=cast.center).update(roles=["finance"])
    before = _accessed()
    assert client.get(f"{URL}/{uid}/series").status_code == 404
    assert _accessed() == before


@pytest.mark.django_db(transaction=True)
def test_a_downgraded_access_is_answered_and_recorded_at_its_new_level(cast, login, library, postgres_exchanges):
    uid = library.mr.study_uid
    full = grant(cast, uid, "full")
    client = login(cast.radiologist)
    _remembered(client, uid)
    study_access_grant_revoke(actor=None, grant=full)
    grant(cast, uid, "preview")
    before = _accessed()
    with postgres_exchanges() as seen:
        response = client.get(f"{URL}/{uid}/series", {"includefield": "SeriesDescription"})
    assert response.status_code == 200
    # De-identified: a series description only as the preview allow-list cleans it (imaging words only).
    from studies.deid import VOCABULARY

    described = [value(row, "0008103E") for row in response.json() if value(row, "0008103E")]
    assert all(set(d.upper().split()) <= VOCABULARY for d in described)
    assert response.json()
    assert all(value(row, "00100010") is None for row in response.json())
    assert _accessed() == before + 1  # one record, of what was served
    assert _last_access().extra["level"] == "preview"
    assert "readroom_require" in seen.trace  # the remembered access was tried, and checked
    # A search on what the preview hides matches nothing, and is not a remembered shortcut to it.
    assert client.get(f"{URL}/{uid}/series", {"PatientName": "Nguyen*"}).json() == []


@pytest.mark.django_db(transaction=True)
def test_a_better_access_found_since_is_used_at_once(cast, login, library):
    """study_get's choice every time: an upgrade of the same study, then the same UID in full at another
    center that comes first (the oldest of those seen in full)."""
    uid = library.mr.study_uid
    copy = spec(1, accession="ACC2", description="MR BRAIN", when=date(2024, 3, 15), uid=uid)
    ingest(cast.other_center, synthetic.mr_study(copy, slices=1, size=16))  # a newer study under the same UID
    elsewhere = Study.objects.get(organization=cast.other_center, study_instance_uid=uid)
    study_access_grant_create(actor=None, study=elsewhere, user=cast.radiologist, level="preview",
                              reason="offered case", expires_at=timezone.now() + timedelta(days=1))
    client = login(cast.radiologist)
    _remembered(client, uid)
    assert (_last_access().organization_id, _last_access().extra["level"]) == (cast.other_center.pk, "preview")
    study_access_grant_create(actor=None, study=elsewhere, user=cast.radiologist, level="full",
                              reason="assigned", expires_at=timezone.now() + timedelta(days=1))
    response = client.get(f"{URL}/{uid}/series", {"includefield": "SeriesDescription"})
    assert any(value(row, "0008103E") for row in response.json())
    assert (_last_access().organization_id, _last_access().extra["level"]) == (cast.other_center.pk, "full")
    grant(cast, uid, "full")  # the center's own study, older, now in full too: it comes first
    assert len(client.get(f"{URL}/{uid}/series").json()) == 3
    assert (_last_access().organization_id, _last_access().extra["level"]) == (cast.center.pk, "full")


@pytest.mark.django_db
def test_nothing_is_remembered_where_the_database_cannot_check_it_in_the_same_round_trip(cast, library):
    """Inside a transaction (and on SQLite) a failed check would spoil the transaction: every search there
    looks its study up."""
    from accounts.policy import actor_for_user
    from studies import selectors

    actor = actor_for_user(cast.technologist)
    assert selectors.study_get(actor=actor, study_uid=library.mr.study_uid).is_full
    assert selectors.study_get_remembered(actor=actor, study_uid=library.mr.study_uid) is None


# --- cost -----------------------------------------------------------------------------------------------

def _count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", [URL, "/dicomweb/series", "/dicomweb/instances",
                                 f"{URL}?includefield=all&PatientName=*"])
def test_search_cost_does_not_grow_with_the_number_of_studies(cast, login, library, url,
                                                              django_assert_max_num_queries):
    for uid in library.uids("ct", "mr"):  # granted studies cost their own access-level lookup: include some
        grant(cast, uid, "preview")
    client = login(cast.technologist)
    few = _count_queries(client, url)
    for n in range(50):
        many = spec(n, accession=f"BULK{n}", description="CT", when=date(2023, 1, 1) + timedelta(days=n))
        ingest(cast.center, synthetic.ct_series(many, slices=1, size=16))
    rows = client.get(url).json()
    assert len(rows) >= 50
    with django_assert_max_num_queries(few):
        client.get(url)
    radiologist = login(cast.radiologist)
    few_granted = _count_queries(radiologist, url)
    for study in Study.objects.filter(accession_number__startswith="BULK")[:20]:
        grant(cast, study.study_instance_uid, "preview")
    with django_assert_max_num_queries(few_granted):
        assert len(radiologist.get(url).json()) >= 20


def test_preview_dates_shift_by_the_studys_own_offset_as_in_every_other_preview(cast, login, library, canary_study):
    grant(cast, canary_study.study_uid, "preview")
    [row] = login(cast.radiologist).get(URL).json()
    study = Study.objects.get(study_instance_uid=canary_study.study_uid)
    days = deid.date_shift_days(deid.study_key_for(study))
    assert value(row, "00080020") == (canary_study.study_date - timedelta(days=days)).strftime("%Y%m%d")


def test_rows_written_as_text_are_the_same_dicom_json_as_the_objects(cast, library):
    """Full-access rows are written straight to JSON text; preview rows go through objects: same content."""
    blank = synthetic.ct_series(spec(4, accession="", description="", when=date(2020, 1, 1)), slices=1, size=16)[0]
    for keyword in ("PatientName", "StudyDate", "StudyTime", "PatientBirthDate", "ReferringPhysicianName",
                    "SeriesNumber", "InstanceNumber"):
        delattr(blank, keyword)
    blank.PatientID = "Ünïcode-ID"
    ingest(cast.center, [blank])
    request = RequestFactory().get("/")
    for resource, model in ((qido.STUDIES, Study), (qido.ALL_SERIES, Series), (qido.ALL_INSTANCES, Instance)):
        query = qido.Query(level=resource.level, include=set(qido.ATTRIBUTES))
        shape = qido._Rows(request, resource, query)
        names, identity = shape.keys()
        rows = list(model.objects.values(*names, **identity))
        assert len(rows) >= 4
        for row in rows:
            assert json.loads(shape.text(row)) == shape.json(row)


# --- study-scoped searches without matching keys: SQL compiled once per shape ------------------------

@pytest.mark.parametrize("params", [{}, {"includefield": "all"}, {"includefield": "00080021,PatientName"},
                                    {"limit": "2"}, {"offset": "1", "limit": "1"}])
@pytest.mark.parametrize("level", ["study_series", "study_instances", "series_instances"])
def test_a_compiled_scoped_search_gives_the_rows_the_orm_gives(cast, library, level, params):
    study = Study.objects.get(organization=cast.center, study_instance_uid=library.mr.study_uid)
    series = study.series.order_by("series_number").first()
    resource, within = {
        "study_series": (qido.STUDY_SERIES, qido.Within(Series, "study_id", study.pk)),
        "study_instances": (qido.STUDY_INSTANCES, qido.Within(Instance, "study_id", study.pk)),
        "series_instances": (qido.SERIES_INSTANCES, qido.Within(Instance, "series_id", series.pk)),
    }[level]
    request = RequestFactory().get("/dicomweb/studies", params)
    query = qido.parse_query(request, resource.level)
    names, identity = qido._Rows(request, resource, query).keys()
    by_orm = qido._fetch(within.queryset(), resource.level, query, names, identity)()
    with CaptureQueriesContext(connection) as queries:
        compiled = qido._fetch(within, resource.level, query, names, identity)()
    assert compiled
    assert compiled == by_orm
    assert len(queries) == 1


def test_a_studys_series_and_instances_cost_the_same_queries_whatever_their_number(cast, tech, library):
    def count(path: str) -> int:
        tech.get(path)  # the session's first request reads the user
        with CaptureQueriesContext(connection) as queries:
            assert tech.get(path).status_code == 200
        return len(queries)

    for what in ("series", "instances"):  # the MR: 3 series of 2 images; the CT: 1 series of 3
        assert count(f"{URL}/{library.mr.study_uid}/{what}") == count(f"{URL}/{library.ct.study_uid}/{what}")
