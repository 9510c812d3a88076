"""The C-STORE gateway, driven by DCMTK's own echoscu and storescu (Debian ``dcmtk``).

The gateway runs in a thread of the test process on a free port, against the test database, so
these tests need a transactional database (pynetdicom serves each association in its own thread,
with its own database connection).

What "byte-identical" means over DICOM networking: the sender's file meta information (group
0002) is never transmitted; only the data set is. The gateway stores the data set exactly as it
came off the wire behind a file meta header built from the association. So we compare the data
set part (everything after group 0002) of the file storescu read with the file we stored, and the
SHA-256 the index holds with the stored file. DCMTK sends a data set unchanged when the negotiated
transfer syntax is the file's own (it re-encodes only to convert syntaxes), which these tests
arrange and check (``stored transfer syntax == file's transfer syntax``).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import evt

from accounts.models import AuditEvent
from studies import synthetic
from studies.gateway import Gateway, QuickAckSocket, authorize_association, normalise_host
from studies.models import DicomAeTitle, DicomPeer, Instance, Study
from tests.conftest import require_or_skip
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def dcmtk_tool(name: str) -> str | None:
    """DCMTK's ``name`` on PATH. pynetdicom installs its own ``storescu``/``echoscu`` scripts in the
    virtualenv's bin/, first on PATH under ``uv run``: those are not the peer these tests want."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = shutil.which(name, path=folder)
        if not path:
            continue
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
        if "dcmtk" in (version.stdout + version.stderr).lower():
            return path
    return None


TOOLS: dict[str, str] = {}


@pytest.fixture(scope="module")
def dcmtk():
    for tool in ("echoscu", "storescu"):
        TOOLS[tool] = dcmtk_tool(tool) or ""
        require_or_skip(bool(TOOLS[tool]), f"DCMTK's {tool} (Debian package dcmtk)")


@pytest.fixture
def orgs():
    center = OrganizationFactory(name="Lakeside Imaging", slug="lakeside", region="TX")
    other = OrganizationFactory(name="Harbor Radiology Center", slug="harbor", region="FL")
    lakeside = DicomAeTitle.objects.create(organization=center, ae_title="LAKESIDE_GW")
    harbor = DicomAeTitle.objects.create(organization=other, ae_title="HARBOR_GW")
    DicomPeer.objects.create(called=lakeside, calling_ae_title="MODALITY1", host="127.0.0.1")
    DicomPeer.objects.create(called=harbor, calling_ae_title="MODALITY2", host="127.0.0.1")
    # Allowed only from another address: a call from 127.0.0.1 must be refused.
    DicomPeer.objects.create(called=lakeside, calling_ae_title="CT_ROOM3", host="10.20.30.40")
    return center, other


@pytest.fixture
def gateway(dcmtk, orgs):
    """A running gateway on a free port, as the management command runs it (data sets spooled to disk)."""
    gw = Gateway(host="127.0.0.1", port=0).start()
    yield gw
    gw.shutdown()


@pytest.fixture(params=["chunked", "in-memory"])
def gateway_both_modes(request, dcmtk, orgs):
    """Both ways pynetdicom can hand a received data set over: a temporary file, or bytes in memory."""
    gw = Gateway(host="127.0.0.1", port=0, chunked=request.param == "chunked").start()
    yield gw
    gw.shutdown()


def run(*args: str | Path, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False)


def echoscu(gw: Gateway, calling: str, called: str) -> subprocess.CompletedProcess:
    return run(TOOLS["echoscu"], "-aet", calling, "-aec", called, "127.0.0.1", gw.port)


def storescu(gw: Gateway, calling: str, called: str, *paths: Path, options: tuple[str, ...] = ()):
    # -v: storescu prints the status and the ErrorComment of each response it gets.
    return run(TOOLS["storescu"], "-v", *options, "-aet", calling, "-aec", called, "127.0.0.1", gw.port, *paths)


def write_series(folder: Path, spec, *, slices: int = 3, transfer_syntax=ExplicitVRLittleEndian) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in synthetic.ct_series(spec, slices=slices, size=64, transfer_syntax=transfer_syntax):
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        path.write_bytes(synthetic.to_bytes(ds))
        paths.append(path)
    return paths


def dataset_part(data: bytes) -> bytes:
    """What DICOM networking transmits: the file minus preamble, 'DICM' and the group 0002 meta."""
    assert data[128:132] == b"DICM"
    # (0002,0000) UL FileMetaInformationGroupLength, explicit VR: tag(4) VR(2) len(2) value(4)
    assert data[132:136] == b"\x02\x00\x00\x00"
    group_length = struct.unpack("<I", data[140:144])[0]
    return data[144 + group_length:]


def stored_bytes(instance: Instance) -> bytes:
    with default_storage.open(instance.storage_key) as fh:
        return fh.read()


def wait_for_audit(action: str, count: int, timeout: float = 10) -> list[AuditEvent]:
    """The ingest audit is written when the association ends, just after storescu returns."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(AuditEvent.objects.filter(action=action).order_by("id"))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


# --- C-ECHO and the allow-list --------------------------------------------------------------------

def test_echoscu_from_an_allowed_peer_succeeds(gateway):
    result = echoscu(gateway, "MODALITY1", "LAKESIDE_GW")
    assert result.returncode == 0, result.stderr


def test_an_unknown_calling_ae_title_is_rejected_and_audited(gateway):
    result = echoscu(gateway, "INTRUDER", "LAKESIDE_GW")
    assert result.returncode != 0
    assert "Reason: Calling AE Title Not Recognized" in result.stderr + result.stdout
    [row] = wait_for_audit("dicom.association_rejected", 1)
    assert row.outcome == AuditEvent.Outcome.DENIED
    assert row.organization.slug == "lakeside"
    assert row.extra == {"called_ae_title": "LAKESIDE_GW", "calling_ae_title": "INTRUDER", "host": "127.0.0.1"}


def test_an_unknown_called_ae_title_is_rejected_and_audited(gateway):
    result = echoscu(gateway, "MODALITY1", "NOSUCH_GW")
    assert result.returncode != 0
    assert "Reason: Called AE Title Not Recognized" in result.stderr + result.stdout
    [row] = wait_for_audit("dicom.association_rejected", 1)
    assert row.organization is None
    assert "NOSUCH_GW" in row.reason


def test_a_known_calling_ae_title_from_another_host_is_rejected(gateway):
    result = echoscu(gateway, "CT_ROOM3", "LAKESIDE_GW")
    assert result.returncode != 0
    assert "Reason: Calling AE Title Not Recognized" in result.stderr + result.stdout
    [row] = wait_for_audit("dicom.association_rejected", 1)
    assert "not from 127.0.0.1" in row.reason


def test_a_peer_may_call_only_the_ae_title_it_is_listed_for(gateway):
    result = echoscu(gateway, "MODALITY2", "LAKESIDE_GW")  # MODALITY2 is Harbor's modality
    assert result.returncode != 0
    assert "Reason: Calling AE Title Not Recognized" in result.stderr + result.stdout


def test_an_inactive_ae_title_is_rejected(gateway):
    DicomAeTitle.objects.filter(ae_title="LAKESIDE_GW").update(is_active=False)
    result = echoscu(gateway, "MODALITY1", "LAKESIDE_GW")
    assert result.returncode != 0
    assert "Reason: Called AE Title Not Recognized" in result.stderr + result.stdout


def test_ipv4_mapped_ipv6_peers_match_their_ipv4_allow_list_entry():
    assert normalise_host("::ffff:127.0.0.1") == "127.0.0.1"
    assert normalise_host("2001:db8::1") == "2001:db8::1"
    assert normalise_host("10.0.0.7") == "10.0.0.7"


def test_authorize_association_names_the_reason(orgs):
    assert authorize_association(called_ae_title="LAKESIDE_GW ", calling_ae_title="MODALITY1",
                                 host="127.0.0.1").accepted
    refused = authorize_association(called_ae_title="LAKESIDE_GW", calling_ae_title="NOBODY", host="127.0.0.1")
    assert not refused.accepted
    assert refused.reason == "calling AE title 'NOBODY' is not allowed to call 'LAKESIDE_GW'"


# --- C-STORE -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("transfer_syntax", "options"), [
    (ExplicitVRLittleEndian, ()),
    (ImplicitVRLittleEndian, ()),
    (RLELossless, ("-xr",)),  # storescu proposes RLE only when asked; it sends the fragments as they are
])
def test_storescu_stores_the_data_set_byte_for_byte_in_its_transfer_syntax(gateway_both_modes, orgs, study_spec,
                                                                           tmp_path, transfer_syntax, options):
    center, other = orgs
    paths = write_series(tmp_path / "in", study_spec, transfer_syntax=transfer_syntax)
    result = storescu(gateway_both_modes, "MODALITY1", "LAKESIDE_GW", *paths, options=options)
    assert result.returncode == 0, result.stderr
    assert Instance.objects.count() == 3
    for path in paths:
        sent = path.read_bytes()
        instance = Instance.objects.get(sop_instance_uid=pydicom.dcmread(path).SOPInstanceUID)
        assert instance.organization == center
        assert instance.received_via == "cstore"
        assert instance.transfer_syntax_uid == transfer_syntax  # DCMTK did not convert it in transit
        stored = stored_bytes(instance)
        assert hashlib.sha256(stored).hexdigest() == instance.sha256
        assert hashlib.sha256(dataset_part(stored)).hexdigest() == hashlib.sha256(dataset_part(sent)).hexdigest()
        assert pydicom.dcmread(default_storage.path(instance.storage_key)).file_meta.TransferSyntaxUID == \
            transfer_syntax
    study = Study.objects.get()
    assert study.organization == center
    assert study.number_of_instances == 3
    assert study.jurisdiction == "US-TX"
    [audit] = wait_for_audit("study.ingested", 1)
    assert audit.object_id == study_spec.study_uid
    assert audit.extra == {"source": "cstore", "stored": 3}


def test_a_folder_sent_recursively_is_stored(gateway, study_spec, tmp_path):
    write_series(tmp_path / "in" / "series1", study_spec, slices=2)
    write_series(tmp_path / "in" / "series2" / "deeper", study_spec, slices=2, transfer_syntax=ImplicitVRLittleEndian)
    result = storescu(gateway, "MODALITY1", "LAKESIDE_GW", tmp_path / "in", options=("+sd", "+r"))
    assert result.returncode == 0, result.stderr
    study = Study.objects.get()
    assert (study.number_of_series, study.number_of_instances) == (2, 4)


def test_sending_the_same_files_again_succeeds_and_writes_nothing(gateway, study_spec, tmp_path):
    paths = write_series(tmp_path / "in", study_spec)
    assert storescu(gateway, "MODALITY1", "LAKESIDE_GW", *paths).returncode == 0
    before = {i.sop_instance_uid: (i.pk, i.sha256) for i in Instance.objects.all()}
    again = storescu(gateway, "MODALITY1", "LAKESIDE_GW", *paths)
    assert again.returncode == 0, again.stderr
    assert "Failed" not in again.stderr
    assert {i.sop_instance_uid: (i.pk, i.sha256) for i in Instance.objects.all()} == before
    assert Study.objects.get().number_of_instances == 3
    audits = wait_for_audit("study.ingested", 2)
    assert [a.extra for a in audits] == [{"source": "cstore", "stored": 3}, {"source": "cstore", "duplicate": 3}]


def test_different_bytes_under_a_stored_sop_instance_uid_fail_with_a_reason(gateway, study_spec, tmp_path):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    original = tmp_path / "original.dcm"
    original.write_bytes(synthetic.to_bytes(ds))
    assert storescu(gateway, "MODALITY1", "LAKESIDE_GW", original).returncode == 0
    ds.SeriesDescription = "EDITED AFTER SENDING"
    edited = tmp_path / "edited.dcm"
    edited.write_bytes(synthetic.to_bytes(ds))
    result = storescu(gateway, "MODALITY1", "LAKESIDE_GW", edited, options=("-d",))
    output = result.stdout + result.stderr
    assert "DIMSE Status                  : 0xa900" in output
    assert "[SOP Instance UID already stored with different content]" in output  # the ErrorComment
    instance = Instance.objects.get()
    assert dataset_part(stored_bytes(instance)) == dataset_part(original.read_bytes())


def test_an_invalid_instance_is_refused_with_cannot_understand(gateway, study_spec, tmp_path):
    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    inner = pydicom.Dataset()
    for _ in range(40):  # deeper than the ingest limit of 32 nested sequences
        outer = pydicom.Dataset()
        outer.ReferencedSeriesSequence = [inner]
        inner = outer
    ds.ReferencedSeriesSequence = inner.ReferencedSeriesSequence
    path = tmp_path / "nested.dcm"
    path.write_bytes(synthetic.to_bytes(ds))
    result = storescu(gateway, "MODALITY1", "LAKESIDE_GW", path, options=("-d",))
    output = result.stdout + result.stderr
    assert "DIMSE Status                  : 0xc000" in output
    assert "[sequences are nested deeper than 32 levels]" in output  # the ErrorComment
    assert not Instance.objects.exists()
    [audit] = wait_for_audit("study.ingested", 1)
    assert audit.extra == {"source": "cstore", "rejected": 1}


def test_a_peer_of_another_organization_stores_into_that_organization_only(gateway, orgs, study_spec,
                                                                           tmp_path):
    center, other = orgs
    paths = write_series(tmp_path / "in", study_spec, slices=2)
    assert storescu(gateway, "MODALITY2", "HARBOR_GW", *paths).returncode == 0
    assert set(Instance.objects.values_list("organization", flat=True)) == {other.pk}
    study = Study.objects.get()
    assert study.organization == other
    assert study.jurisdiction == "US-FL"
    # The same study sent to Lakeside afterwards is another, separate study.
    assert storescu(gateway, "MODALITY1", "LAKESIDE_GW", *paths).returncode == 0
    assert Study.objects.filter(study_instance_uid=study_spec.study_uid).count() == 2
    assert Instance.objects.filter(organization=center).count() == 2


def test_the_peers_jurisdiction_is_given_to_new_studies(gateway, study_spec, tmp_path):
    DicomPeer.objects.filter(calling_ae_title="MODALITY1").update(jurisdiction_country="US", jurisdiction_region="NM")
    paths = write_series(tmp_path / "in", study_spec, slices=1)
    assert storescu(gateway, "MODALITY1", "LAKESIDE_GW", *paths).returncode == 0
    assert Study.objects.get().jurisdiction == "US-NM"


def test_accepted_sockets_have_tcp_nodelay_and_acknowledge_at_once(gateway):
    """Timing is not tested (tests never time things); the socket options are, on the live socket."""
    seen: list[tuple[int, bool]] = []

    def on_open(event):
        sock = event.assoc.dul.socket.socket
        seen.append((sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), isinstance(sock, QuickAckSocket)))

    gateway.server.bind(evt.EVT_CONN_OPEN, on_open)
    assert echoscu(gateway, "MODALITY1", "LAKESIDE_GW").returncode == 0
    assert len(seen) == 1
    nodelay, quick_ack = seen[0]
    assert nodelay
    assert quick_ack == hasattr(socket, "TCP_QUICKACK")


def test_gateways_started_with_a_shared_port_share_the_associations(dcmtk, orgs, study_spec, tmp_path):
    """Several gateway processes (here two servers in one process) listen on one port; the kernel spreads
    the associations among them and each one stores what it receives."""
    first = Gateway(host="127.0.0.1", port=0, shared_port=True).start()
    second = None
    try:
        second = Gateway(host="127.0.0.1", port=first.port, shared_port=True).start()
        served = {id(first): 0, id(second): 0}

        def counter(gateway):
            def on_open(_event):
                served[id(gateway)] += 1
            return on_open

        for gw in (first, second):
            gw.server.bind(evt.EVT_CONN_OPEN, counter(gw))
        for _ in range(24):  # each association from a new source port: both servers get some
            assert echoscu(first, "MODALITY1", "LAKESIDE_GW").returncode == 0
        assert sum(served.values()) == 24
        assert all(count > 0 for count in served.values()), served

        paths = write_series(tmp_path / "in", study_spec, slices=3)
        result = storescu(first, "MODALITY1", "LAKESIDE_GW", *paths)
        assert result.returncode == 0, result.stderr
        assert Instance.objects.count() == 3
    finally:
        if second is not None:
            second.shutdown()
        first.shutdown()


def test_a_port_in_use_is_not_shared_without_the_option(dcmtk, orgs):
    first = Gateway(host="127.0.0.1", port=0, shared_port=True).start()
    try:
        with pytest.raises(OSError, match="in use"):
            Gateway(host="127.0.0.1", port=first.port).start()
    finally:
        first.shutdown()


def test_the_management_command_serves_until_shut_down(dcmtk, orgs):
    from django.core.management import call_command

    from studies.management.commands.dicom_gateway import Command

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = Command()
    thread = threading.Thread(target=call_command, args=(command,),
                              kwargs={"host": "127.0.0.1", "port": port}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while command.gateway is None or command.gateway.server is None:
        assert time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    result = run(TOOLS["echoscu"], "-aet", "MODALITY1", "-aec", "LAKESIDE_GW", "127.0.0.1", port)
    assert result.returncode == 0, result.stderr
    command.gateway.shutdown()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_associations_leave_no_database_connection_behind(postgres_only, gateway, study_spec, tmp_path):
    from django.db import connection

    paths = write_series(tmp_path / "in", study_spec, slices=2)
    for _ in range(3):
        assert storescu(gateway, "MODALITY1", "LAKESIDE_GW", *paths).returncode == 0
        assert echoscu(gateway, "INTRUDER", "LAKESIDE_GW").returncode != 0
        assert echoscu(gateway, "MODALITY1", "NOSUCH_GW").returncode != 0

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    deadline = time.monotonic() + 10
    while sessions() > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sessions() == 1  # this test's own connection only


# --- configuring the gateway in the admin (platform staff) -----------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("value", "ok"), [
    ("LAKESIDE_GW", True), ("  CT ROOM 1 ", True), ("A" * 16, True),
    ("A" * 17, False), ("BAD\\AE", False), ("", False), ("TAB\tAE", False), ("ÄRZTE", False),
])
def test_ae_titles_are_validated_in_the_admin_forms(value, ok):
    from studies.admin import DicomAeTitleForm

    org = OrganizationFactory()
    form = DicomAeTitleForm(data={"organization": org.pk, "ae_title": value, "is_active": True})
    assert form.is_valid() is ok, form.errors
    if ok:
        assert form.cleaned_data["ae_title"] == value.strip()


@pytest.mark.django_db
@pytest.mark.parametrize(("country", "region", "error_field"), [
    ("us", "nm", None), ("", "", None), ("DE", "", None),
    ("US", "", "jurisdiction_region"), ("", "TX", "jurisdiction_country"), ("USA", "TX", "jurisdiction_country"),
])
def test_a_peers_jurisdiction_is_validated_in_the_admin(country, region, error_field):
    from studies.admin import DicomPeerForm

    ae_title = DicomAeTitle.objects.create(organization=OrganizationFactory(), ae_title="ANY_GW")
    form = DicomPeerForm(data={"called": ae_title.pk, "calling_ae_title": "CT1", "host": "192.0.2.10",
                               "jurisdiction_country": country, "jurisdiction_region": region})
    assert form.is_valid() is (error_field is None), form.errors
    if error_field:
        assert error_field in form.errors
    else:
        assert (form.cleaned_data["jurisdiction_country"], form.cleaned_data["jurisdiction_region"]) == \
            (country.upper(), region.upper())


@pytest.mark.django_db
def test_platform_staff_see_the_study_index_in_the_admin_without_patient_data(cast, login, study_spec):
    import io as _io

    from django.contrib.auth.models import Permission

    from studies.ingest import Source, ingest_stream

    canary = "ZQXJCANARY"
    ds = synthetic.with_private_and_nested_phi(synthetic.ct_series(study_spec, slices=1, size=32)[0], canary)
    ds.SeriesDescription = f"{canary} SERIES"
    outcome = ingest_stream(organization=cast.center, stream=_io.BytesIO(synthetic.to_bytes(ds)), filename="x.dcm",
                            source=Source.UPLOAD)
    staff = cast.platform_staff
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="studies",
                                                          codename__startswith="view_"))
    client = login(staff)
    instance = outcome.instance
    for name in ("study", "series", "instance", "studyaccessgrant", "dicomaetitle", "dicompeer"):
        response = client.get(f"/admin/studies/{name}/")
        assert response.status_code == 200, name
        assert canary not in response.content.decode(), name
    listing = client.get("/admin/studies/instance/").content.decode()
    assert instance.sha256 in listing
    assert instance.storage_key in listing
    # No detail pages (the admin would title them with descriptions), and nothing can be changed.
    for page in (f"/admin/studies/study/{instance.study_id}/change/", f"/admin/studies/series/{instance.series_id}/"
                 "change/", f"/admin/studies/instance/{instance.pk}/change/"):
        assert client.get(page).status_code == 403, page
    assert client.post(f"/admin/studies/study/{instance.study_id}/delete/", {"post": "yes"}).status_code == 403
    assert Study.objects.filter(pk=instance.study_id).exists()


def test_when_the_sender_converts_in_transit_what_it_sent_is_stored(gateway, study_spec, tmp_path):
    """storescu -xb offers explicit VR big endian first, then little endian. The gateway does not take
    big endian (retired), so the little endian context is used and DCMTK re-encodes the implicit VR
    file as explicit VR: the stored file is what came over the wire, and it decodes to the same data
    set as the file on the sender's disk."""
    [path] = write_series(tmp_path / "in", study_spec, slices=1, transfer_syntax=ImplicitVRLittleEndian)
    result = storescu(gateway, "MODALITY1", "LAKESIDE_GW", path, options=("-xb",))
    assert result.returncode == 0, result.stderr
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid == ExplicitVRLittleEndian
    stored = stored_bytes(instance)
    assert hashlib.sha256(stored).hexdigest() == instance.sha256
    assert dataset_part(stored) != dataset_part(path.read_bytes())  # re-encoded by DCMTK, not by us
    sent, kept = pydicom.dcmread(path), pydicom.dcmread(io.BytesIO(stored))
    assert kept.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert sent == kept


def test_a_data_set_that_is_not_the_announced_sop_instance_is_refused(gateway, study_spec, tmp_path, monkeypatch):
    """The C-STORE request names the instance (Affected SOP Instance UID; pynetdicom sending a file takes it
    from the file meta): a data set carrying another SOP Instance UID is refused, the offending element named."""
    from pynetdicom import AE, _config

    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    data = synthetic.to_bytes(ds)
    meta = pydicom.dcmread(io.BytesIO(data)).file_meta
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(buffer, meta, enforce_standard=True)
    path = tmp_path / "mismatch.dcm"
    path.write_bytes(data[:128] + b"DICM" + buffer.getvalue() + dataset_part(data))
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send the file as it is
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ds.SOPClassUID, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", gateway.port, ae_title="LAKESIDE_GW")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(path)
    finally:
        assoc.release()
    assert status.Status == 0xC000
    assert status.ErrorComment == "SOPInstanceUID differs from the Affected SOP Instance UID"
    assert status.OffendingElement == 0x00080018
    assert not Instance.objects.exists()
    [audit] = wait_for_audit("study.ingested", 1)
    assert audit.extra == {"source": "cstore", "rejected": 1}


@pytest.mark.postgres
def test_concurrent_associations_share_commits_and_every_instance_is_counted(postgres_only, gateway, study_spec,
                                                                             tmp_path):
    """Four senders at once into one study: all stored (each answered after its commit), exact counters.
    (PostgreSQL: the in-memory SQLite test database fails concurrent writers with "table is locked".)"""
    folders = [write_series(tmp_path / f"sender{n}", study_spec, slices=4) for n in range(4)]
    results: list[subprocess.CompletedProcess] = []

    def send(paths: list[Path]) -> None:
        results.append(storescu(gateway, "MODALITY1", "LAKESIDE_GW", *paths))

    threads = [threading.Thread(target=send, args=(paths,)) for paths in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0, 0, 0]
    study = Study.objects.get(study_instance_uid=study_spec.study_uid)
    assert study.number_of_instances == Instance.objects.filter(study=study).count() == 16
    assert study.number_of_series == 4
    assert study.total_size == sum(i.size for i in Instance.objects.filter(study=study))
