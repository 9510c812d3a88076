"""DICOMweb STOW-RS: streaming multipart/related ingest, per-instance outcomes, status codes, access."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client, RequestFactory

from accounts import services as account_services
from accounts.models import AuditEvent, OrganizationApiKey
from accounts.policy import actor_for_user
from studies import synthetic
from studies.dicomweb import stow
from studies.ingest_rows import storage_key
from studies.models import Instance, Study
from tests.factories import MembershipFactory

BOUNDARY = "readroom-test-boundary"
URL = "/dicomweb/studies"
STORED, FAILED, OTHER, RETRIEVE_URL = "00081199", "00081198", "0008119A", "00081190"


def multipart(parts: list[bytes], *, boundary: str = BOUNDARY, part_type: str | None = "application/dicom",
              content_type: str | None = None, close: bool = True) -> tuple[str, bytes]:
    """A STOW body the way dicomweb-client writes it (CRLF before each delimiter)."""
    chunks = []
    for data in parts:
        head = f"\r\n--{boundary}\r\n" + (f"Content-Type: {part_type}\r\n" if part_type else "") + "\r\n"
        chunks.append(head.encode() + data)
    if close:
        chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return content_type or f'multipart/related; type="application/dicom"; boundary={boundary}', b"".join(chunks)


def post(client: Client, parts: list[bytes], *, url: str = URL, **kwargs):
    ctype, body = multipart(parts, **kwargs)
    return client.post(url, data=body, content_type=ctype)


def items(response, key: str) -> list[dict]:
    return response.json().get(key, {}).get("Value", [])


def sop_uids(response, key: str = STORED) -> list[str]:
    return [item["00081155"]["Value"][0] for item in items(response, key)]


def failure_reasons(response) -> list[tuple[int, str]]:
    return [(item["00081197"]["Value"][0], item["00091001"]["Value"][0]) for item in items(response, FAILED)]


def sop_of(data: bytes) -> str:
    import pydicom

    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID


@pytest.fixture
def tech_key(cast):
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="CT scanner",
                                                   roles=["technologist"])
    return secret


def bearer(secret: str, **kwargs) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", **kwargs)


# --- storing -------------------------------------------------------------------------------------------

def test_one_instance_is_stored_byte_for_byte_and_answered_with_its_retrieve_url(cast, login, ct_files,
                                                                                 study_spec):
    response = post(login(cast.technologist), ct_files[:1])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    assert sop_uids(response) == [sop_of(ct_files[0])]
    body = response.json()
    assert body[RETRIEVE_URL]["Value"] == [f"http://testserver/dicomweb/studies/{study_spec.study_uid}"]
    item = items(response, STORED)[0]
    assert item["00081150"]["Value"] == [synthetic.CT_IMAGE]
    instance = Instance.objects.get()
    assert item[RETRIEVE_URL]["Value"] == [f"http://testserver/dicomweb/studies/{study_spec.study_uid}/series/"
                                           f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"]
    assert instance.received_via == "stow"
    assert instance.organization == cast.center
    with default_storage.open(instance.storage_key) as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == hashlib.sha256(ct_files[0]).hexdigest()


def test_many_parts_in_one_request_are_all_stored_and_audited_once_per_study(cast, login, ct_files, study_spec):
    response = post(login(cast.technologist), ct_files)
    assert response.status_code == 200
    assert sorted(sop_uids(response)) == sorted(sop_of(d) for d in ct_files)
    assert FAILED not in response.json()
    study = Study.objects.get()
    assert study.number_of_instances == 5
    audit = AuditEvent.objects.filter(action="study.ingested")
    assert audit.count() == 1
    event = audit.get()
    assert event.object_id == study_spec.study_uid
    assert event.actor == cast.technologist
    assert event.extra["source"] == "stow"
    assert event.extra["stored"] == 5


def test_each_transaction_that_stores_instances_holds_their_audit_record(cast, tech_key, study_spec):
    # 120 instances are stored 50 at a time (IngestBatch): each of the three transactions records what it
    # stored; the refused part, settled after the second, is recorded with the third.
    files = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=120, size=16)]
    response = post(bearer(tech_key), [*files, b"not a DICOM file"])
    assert response.status_code == 202
    assert Study.objects.get().number_of_instances == 120
    records = AuditEvent.objects.filter(action="study.ingested").order_by("id")
    assert [(r.object_id, r.extra.get("stored"), r.extra.get("rejected")) for r in records] == [
        (study_spec.study_uid, 50, None), (study_spec.study_uid, 50, None), (study_spec.study_uid, 20, None),
        ("-", None, 1)]


def test_instances_whose_audit_record_cannot_be_written_are_not_stored(cast, tech_key, ct_files, postgres_only):
    # The database itself refuses the record of stored instances (a constraint added for this test, rolled
    # back with it): the instances must not be committed without it, and are reported as not stored.
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {AuditEvent._meta.db_table} ADD CONSTRAINT test_refuse_ingest_records "
                       "CHECK (action <> 'study.ingested' OR NOT (extra ? 'stored')) NOT VALID")
    response = post(bearer(tech_key), ct_files[:3])
    assert response.status_code == 409
    assert [code for code, _reason in failure_reasons(response)] == [stow.FAILURE_PROCESSING] * 3
    assert not Instance.objects.exists()
    assert not Study.objects.filter(number_of_instances__gt=0).exists()
    assert not any(default_storage.exists(_key_of(cast.center, data)) for data in ct_files[:3])
    # What was answered is still on record: three instances refused.
    [record] = AuditEvent.objects.filter(action="study.ingested")
    assert record.extra["rejected"] == 3


def _key_of(organization, data: bytes) -> str:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return storage_key(organization, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def test_large_instances_cross_read_chunks_and_arrive_intact(cast, tech_key, study_spec):
    # 512×512×16-bit slices: each part spans read chunks of the streaming parser.
    files = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=3, size=512)]
    response = post(bearer(tech_key), files)
    assert response.status_code == 200
    for data in files:
        instance = Instance.objects.get(sop_instance_uid=sop_of(data))
        assert instance.sha256 == hashlib.sha256(data).hexdigest()
        assert instance.size == len(data)


def test_the_reader_survives_a_body_arriving_a_few_bytes_at_a_time(ct_files):
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(7)

    _ctype, body = multipart(ct_files[:2])
    reader = stow.MultipartReader(Trickle(body), BOUNDARY.encode(), max_bytes=10**9)
    received = []
    for part in reader.parts():
        data = b""
        while chunk := part.read(1000):
            data += chunk
        received.append(data)
    assert received == ct_files[:2]


def _read_all(body: bytes, *, chunk: int, read_size: int = 1000, boundary: str = BOUNDARY) -> list[tuple[dict, bytes]]:
    class Chunked(io.BytesIO):
        def read(self, size=-1):
            return super().read(chunk)

    reader = stow.MultipartReader(Chunked(body), boundary.encode(), max_bytes=10**9)
    out = []
    for part in reader.parts():
        data = b""
        while piece := part.read(read_size):
            data += piece
        out.append((part.headers, data))
    return out


# Data that looks like a delimiter without being one, a CR just before a real delimiter, CRs at the end.
TRICKY_PARTS = [
    b"\r\n--" + BOUNDARY.encode() + b"X not a delimiter\r\n--" + BOUNDARY.encode() + b"Y",
    b"\r\r\n\r\n--readroom-test\r",
    b"",
    b"\r",
    bytes(range(256)) * 50,
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 31, 40, 41, 1000, 1 << 20])
def test_the_reader_finds_every_part_whatever_the_chunk_size(chunk):
    _ctype, body = multipart(TRICKY_PARTS)
    received = _read_all(body, chunk=chunk, read_size=-1 if chunk % 2 else 1000)
    assert [data for _headers, data in received] == TRICKY_PARTS
    assert all(headers == {"content-type": "application/dicom"} for headers, _data in received)


@pytest.mark.parametrize("body", [
    b"preamble text\r\n--B\r\n\r\none\r\n--B--",  # text before the first delimiter
    b"--B\r\nno colon here\r\n\r\none\r\n--B--",  # a header line without a name
    b"--B\r\n\r\none\r\n--B",  # ends right after a delimiter
    b"--B\r\n\r\none",  # no closing delimiter
    b"--B\r\n" + b"X-Long: " + b"a" * (20 * 1024) + b"\r\n\r\none\r\n--B--",  # endless headers
])
def test_the_reader_refuses_a_malformed_body(body):
    for chunk in (3, 1 << 20):
        with pytest.raises(stow.MalformedBody):
            _read_all(body, chunk=chunk, boundary="B")


def test_the_reader_hands_out_a_large_part_without_copying_it_per_byte(ct_files):
    _ctype, body = multipart(ct_files[:3])
    reader = stow.MultipartReader(io.BytesIO(body), BOUNDARY.encode(), max_bytes=10**9)
    reads = []
    for part in reader.parts():
        count = 0
        while part.read(stow.READ_CHUNK):
            count += 1
        reads.append(count)
    assert max(reads) <= 2  # each part in at most two pieces (it may straddle two 1 MB chunks)


def test_mixed_good_and_bad_parts_answer_202_with_a_reason_for_each_failure(cast, login, ct_files):
    not_dicom = b"just some text, not an image" * 20
    truncated = ct_files[2][:len(ct_files[2]) // 2]
    response = post(login(cast.technologist), [ct_files[0], not_dicom, ct_files[1], b"", truncated])
    assert response.status_code == 202
    assert sorted(sop_uids(response)) == sorted([sop_of(ct_files[0]), sop_of(ct_files[1])])
    reasons = failure_reasons(response)
    assert [code for code, _ in reasons] == [0xC000, 0xC000, 0xC000]
    assert "part 2" in reasons[0][1]
    assert "not a DICOM Part 10 file" in reasons[0][1]
    assert "part 4" in reasons[1][1]
    assert "empty" in reasons[1][1]
    assert "part 5" in reasons[2][1]
    assert "truncated" in reasons[2][1]
    # every failed item names the SOP attributes (empty when unknown), so clients can read them
    for item in items(response, FAILED):
        assert item["00081150"]["vr"] == "UI"
        assert item["00081155"]["vr"] == "UI"
        assert item["00090010"]["Value"] == ["READROOM"]
    assert Instance.objects.count() == 2


def test_nothing_stored_answers_409(cast, login):
    response = post(login(cast.technologist), [b"garbage" * 50, b"\x00" * 300])
    assert response.status_code == 409
    assert STORED not in response.json()
    assert len(failure_reasons(response)) == 2
    assert not Study.objects.exists()


def test_the_same_bytes_again_count_as_stored(cast, login, ct_files):
    client = login(cast.technologist)
    assert post(client, ct_files[:2]).status_code == 200
    again = post(client, ct_files[:2])
    assert again.status_code == 200
    assert sorted(sop_uids(again)) == sorted(sop_of(d) for d in ct_files[:2])
    assert Instance.objects.count() == 2


def test_other_bytes_under_a_stored_sop_uid_are_a_conflict_and_never_overwrite(cast, login, study_spec):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    original = synthetic.to_bytes(ds)
    ds.SeriesDescription = "CHANGED"
    changed = synthetic.to_bytes(ds)
    client = login(cast.technologist)
    assert post(client, [original]).status_code == 200
    response = post(client, [changed])
    assert response.status_code == 409
    [(code, reason)] = failure_reasons(response)
    assert code == 0x0111
    assert "different content" in reason
    assert items(response, FAILED)[0]["00081155"]["Value"] == [ds.SOPInstanceUID]
    with default_storage.open(Instance.objects.get().storage_key) as fh:
        assert fh.read() == original


def test_a_study_path_stores_only_instances_of_that_study(cast, login, ct_files, study_spec):
    client = login(cast.technologist)
    other = synthetic.StudySpec(patient=synthetic.demo_patient(1), accession="ACC9", description="MR",
                                study_date=study_spec.study_date)
    stranger = synthetic.to_bytes(synthetic.ct_series(other, slices=1, size=64)[0])
    response = post(client, [ct_files[0], stranger], url=f"{URL}/{study_spec.study_uid}")
    assert response.status_code == 202
    assert sop_uids(response) == [sop_of(ct_files[0])]
    [(code, reason)] = failure_reasons(response)
    assert code == 0xA900
    assert "differs from the study in the request path" in reason
    assert response.json()[RETRIEVE_URL]["Value"] == [f"http://testserver{URL}/{study_spec.study_uid}"]
    only_wrong = post(client, [stranger], url=f"{URL}/{study_spec.study_uid}")
    assert only_wrong.status_code == 409
    assert not Study.objects.filter(study_instance_uid=other.study_uid).exists()


@pytest.mark.parametrize("bad_uid", ["1.2.abc", "1.2/../3", "1." + "2" * 70, "01.2"])
def test_a_malformed_study_uid_in_the_path_is_404_and_stores_nothing(cast, login, ct_files, bad_uid):
    response = post(login(cast.technologist), ct_files[:1], url=f"{URL}/{bad_uid}")
    assert response.status_code == 404
    assert not Instance.objects.exists()


# --- the request's form --------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "application/dicom",
    "application/json",
    "multipart/form-data; boundary=" + BOUNDARY,
    f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}',
    f"multipart/related; boundary={BOUNDARY}",  # no type parameter
    "",
])
def test_a_wrong_or_missing_media_type_is_415(cast, login, ct_files, content_type):
    _ctype, body = multipart(ct_files[:1])
    response = login(cast.technologist).post(URL, data=body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not Instance.objects.exists()


@pytest.mark.parametrize("content_type", [
    f"multipart/related; type=application/dicom; boundary={BOUNDARY}",
    f'Multipart/Related; Type="Application/DICOM"; boundary="{BOUNDARY}"',
    f'multipart/related; boundary="{BOUNDARY}"; type="application/dicom"; start="<part1>"',
])
def test_the_type_parameter_may_be_quoted_or_not_in_any_case(cast, login, ct_files, content_type):
    _ctype, body = multipart(ct_files[:1])
    assert login(cast.technologist).post(URL, data=body, content_type=content_type).status_code == 200


def test_parts_that_are_not_dicom_are_refused(cast, login, ct_files):
    client = login(cast.technologist)
    response = post(client, ct_files[:2], part_type="text/plain")
    assert response.status_code == 415
    assert [code for code, _ in failure_reasons(response)] == [0xC000, 0xC000]
    assert "text/plain" in failure_reasons(response)[0][1]
    # a part without its own Content-Type is the root type the request names: application/dicom
    assert post(client, ct_files[:1], part_type=None).status_code == 200


def test_a_wrong_part_among_dicom_parts_fails_alone(cast, login, ct_files):
    ctype, good = multipart(ct_files[:1])
    _, bad = multipart([b'{"hello": 1}'], part_type="application/json", close=False)
    body = bad + good  # the JSON part first, then the DICOM part and the closing delimiter
    response = login(cast.technologist).post(URL, data=body, content_type=ctype)
    assert response.status_code == 202
    assert sop_uids(response) == [sop_of(ct_files[0])]
    assert "application/json" in failure_reasons(response)[0][1]


def test_a_body_whose_boundary_does_not_match_the_header_is_400(cast, login, ct_files):
    _ctype, body = multipart(ct_files[:1], boundary="another-boundary")
    response = login(cast.technologist).post(
        URL, data=body, content_type=f'multipart/related; type="application/dicom"; boundary={BOUNDARY}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_multipart"
    assert not Instance.objects.exists()


@pytest.mark.parametrize("body", [
    b"",
    b"no multipart here at all",
    f"--{BOUNDARY}\r\nContent-Type: application/dicom".encode(),  # cut inside the headers
    f"--{BOUNDARY}x\r\n\r\nabc\r\n--{BOUNDARY}--".encode(),  # broken delimiter
    f"--{BOUNDARY}--\r\n".encode(),  # no part at all
])
def test_broken_multipart_bodies_are_400_and_store_nothing(cast, login, body):
    ctype = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    # CONTENT_TYPE given explicitly: the test client leaves it out when the body is empty
    response = login(cast.technologist).post(URL, data=body, content_type=ctype, CONTENT_TYPE=ctype)
    assert response.status_code == 400
    assert not Instance.objects.exists()


def test_a_boundary_parameter_that_is_missing_or_invalid_is_400(cast, login, ct_files):
    _ctype, body = multipart(ct_files[:1])
    client = login(cast.technologist)
    for content_type in ['multipart/related; type="application/dicom"',
                         'multipart/related; type="application/dicom"; boundary=' + "x" * 71]:
        assert client.post(URL, data=body, content_type=content_type).status_code == 400


def test_a_body_cut_off_mid_instance_keeps_the_complete_ones_and_drops_the_partial_one(cast, login, ct_files):
    ctype, body = multipart(ct_files[:2], close=False)
    cut = body[:-500]  # the second instance loses its end and there is no closing delimiter
    response = login(cast.technologist).post(URL, data=cut, content_type=ctype)
    assert response.status_code == 202
    assert sop_uids(response) == [sop_of(ct_files[0])]
    other = items(response, OTHER)
    assert other
    assert "closing boundary" in other[0]["00091001"]["Value"][0]
    assert list(Instance.objects.values_list("sop_instance_uid", flat=True)) == [sop_of(ct_files[0])]


def test_a_request_over_the_size_limit_is_413_before_anything_is_stored(cast, login, ct_files, settings):
    settings.DICOM_MAX_UPLOAD_BYTES = sum(len(d) for d in ct_files[:2]) // 2
    response = post(login(cast.technologist), ct_files[:2])
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Instance.objects.exists()


def _chunked_request(body: bytes, ctype: str, secret: str, *, terminated: bool):
    request = RequestFactory().post(URL, data=body, content_type=ctype, HTTP_AUTHORIZATION=f"Bearer {secret}",
                                    HTTP_TRANSFER_ENCODING="chunked")
    del request.META["CONTENT_LENGTH"]
    if terminated:  # what gunicorn sets after de-chunking the body
        request.META["wsgi.input_terminated"] = True
        request.META["wsgi.input"] = io.BytesIO(body)
    return request


def test_a_chunked_body_is_read_when_the_server_de_chunks_it(cast, tech_key, ct_files):
    ctype, body = multipart(ct_files[:2])
    response = stow.studies_collection(_chunked_request(body, ctype, tech_key, terminated=True))
    assert response.status_code == 200
    assert Instance.objects.count() == 2


def test_a_chunked_body_the_server_cannot_de_chunk_is_411(cast, tech_key, ct_files):
    ctype, body = multipart(ct_files[:1])
    response = stow.studies_collection(_chunked_request(body, ctype, tech_key, terminated=False))
    assert response.status_code == 411
    assert not Instance.objects.exists()


def test_a_chunked_body_over_the_limit_is_413(cast, tech_key, ct_files, settings):
    ctype, body = multipart(ct_files)
    settings.DICOM_MAX_UPLOAD_BYTES = len(body) - len(ct_files[-1]) // 2
    response = stow.studies_collection(_chunked_request(body, ctype, tech_key, terminated=True))
    assert response.status_code == 413
    message = json.loads(response.content)["error"]["message"]
    assert f"{Instance.objects.count()} instance(s) received before the limit are stored" in message


# --- who may store ------------------------------------------------------------------------------------

def test_anonymous_is_401_with_a_bearer_challenge(db, ct_files):
    response = post(Client(), ct_files[:1])
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Instance.objects.exists()


def test_an_unknown_or_revoked_token_is_401(cast, ct_files, tech_key):
    assert post(bearer("rrk_nope_nope"), ct_files[:1]).status_code == 401
    key = OrganizationApiKey.objects.get(organization=cast.center)
    account_services.api_key_revoke(actor=actor_for_user(cast.center_admin), key=key)
    response = post(bearer(tech_key), ct_files[:1])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize("principal", ["radiologist", "center_viewer", "center_finance", "patient", "platform_staff"])
def test_principals_who_may_not_send_studies_are_refused(cast, login, ct_files, principal):
    response = post(login(getattr(cast, principal)), ct_files[:1])
    assert response.status_code == 403
    assert not Instance.objects.exists()


@pytest.mark.parametrize("principal", ["center_admin", "technologist"])
def test_admins_and_technologists_of_the_center_may_store(cast, login, ct_files, principal):
    assert post(login(getattr(cast, principal)), ct_files[:1]).status_code == 200
    assert Instance.objects.get().organization == cast.center


def test_an_api_key_with_the_technologist_role_stores_into_its_center(cast, ct_files, tech_key):
    response = post(bearer(tech_key), ct_files[:2])
    assert response.status_code == 200
    assert set(Instance.objects.values_list("organization", flat=True)) == {cast.center.pk}
    assert AuditEvent.objects.get(action="study.ingested").organization == cast.center


def test_an_api_key_with_the_viewer_role_may_not_store(cast, ct_files):
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="PACS reader",
                                                   roles=["viewer"])
    assert post(bearer(secret), ct_files[:1]).status_code == 403


def test_a_personal_token_stores_as_its_user_and_query_token_works_too(cast, ct_files):
    _token, secret = account_services.personal_token_create(actor=actor_for_user(cast.technologist), name="cli")
    assert post(bearer(secret), ct_files[:1]).status_code == 200
    ctype, body = multipart(ct_files[1:2])
    assert Client().post(f"{URL}?token={secret}", data=body, content_type=ctype).status_code == 200
    assert Instance.objects.count() == 2
    assert AuditEvent.objects.filter(action="study.ingested", actor=cast.technologist).count() == 2


def test_a_phi_role_without_totp_is_refused_by_token_and_by_session(cast, login, ct_files):
    unenrolled = MembershipFactory(organization=cast.center, roles=["technologist"]).user
    _token, secret = account_services.personal_token_create(actor=actor_for_user(unenrolled), name="cli")
    by_token = post(bearer(secret), ct_files[:1])
    assert by_token.status_code == 403
    assert by_token.json()["error"]["code"] == "mfa_enrollment_required"
    by_session = post(login(unenrolled), ct_files[:1])
    assert by_session.status_code == 403
    assert not Instance.objects.exists()


def test_a_session_post_needs_the_csrf_token_and_a_bearer_post_does_not(cast, login, ct_files, tech_key):
    client = login(cast.technologist)
    client.handler.enforce_csrf_checks = True
    ctype, body = multipart(ct_files[:1])
    refused = client.post(URL, data=body, content_type=ctype)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    token = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6"
    client.cookies["csrftoken"] = token
    assert client.post(URL, data=body, content_type=ctype, HTTP_X_CSRFTOKEN=token).status_code == 200
    ctype, body = multipart(ct_files[1:2])
    assert bearer(tech_key, enforce_csrf_checks=True).post(URL, data=body, content_type=ctype).status_code == 200


def test_get_and_put_on_the_store_resources_are_not_store(cast, tech_key, study_spec):
    client = bearer(tech_key)
    assert client.put(URL, data=b"", content_type="application/dicom").status_code == 405
    assert client.delete(f"{URL}/{study_spec.study_uid}").status_code == 405


# --- tenancy -------------------------------------------------------------------------------------------

def test_a_study_uid_held_by_another_center_is_stored_separately_and_nothing_leaks(cast, login, ct_files,
                                                                                  study_spec):
    theirs = synthetic.ct_series(study_spec, slices=2, size=64)
    for ds in theirs:
        ds.PatientName = "Other^Center^Patient"
    their_files = [synthetic.to_bytes(ds) for ds in theirs]
    assert post(login(cast.other_admin), their_files).status_code == 200

    response = post(login(cast.technologist), ct_files, url=f"{URL}/{study_spec.study_uid}")
    assert response.status_code == 200
    ours = Study.objects.get(organization=cast.center)
    other = Study.objects.get(organization=cast.other_center)
    assert ours.study_instance_uid == other.study_instance_uid == study_spec.study_uid
    assert ours.number_of_instances == 5
    assert other.number_of_instances == 2
    assert ours.patient_name == "Rivera^Ana"
    assert other.patient_name == "Other^Center^Patient"
    # the response names only what this request stored
    assert sorted(sop_uids(response)) == sorted(sop_of(d) for d in ct_files)
    assert "Other^Center" not in json.dumps(response.json())
    for instance in Instance.objects.filter(organization=cast.other_center):
        with default_storage.open(instance.storage_key) as fh:
            assert fh.read() in their_files
