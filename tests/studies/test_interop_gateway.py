"""Issue 19: the gateway works out of the box and a resend through the other door is harmless.

DCMTK's echoscu/storescu against the demo world's AE title and peers; STOW-RS then C-STORE of the same
instances (each door writes its own file meta): every instance stored once, every answer a success; a
deflated data set over C-STORE stored as sent.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.test import Client
from pydicom.uid import DeflatedExplicitVRLittleEndian

from accounts import services as account_services
from studies import synthetic
from studies.demo import load_demo_gateway
from studies.gateway import Gateway
from studies.models import DicomPeer, Instance
from tests.factories import OrganizationFactory
from tests.studies.test_gateway import TOOLS, dcmtk, echoscu, run, stored_bytes  # noqa: F401 - fixture
from tests.studies.test_stow import STORED, items, multipart

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lakeside():
    center = OrganizationFactory(name="Lakeside Imaging", slug="lakeside", region="TX")
    load_demo_gateway({"lakeside": center})
    return center


@pytest.fixture
def gateway(dcmtk, lakeside):  # noqa: F811 - the module fixture imported above
    gw = Gateway(host="127.0.0.1", port=0).start()
    yield gw
    gw.shutdown()


def storescu(gw: Gateway, *paths: Path, options: tuple[str, ...] = ()):
    return run(TOOLS["storescu"], "-v", *options, "-aet", "CT_ROOM1", "-aec", "LAKESIDE", "127.0.0.1", gw.port,
               *paths)


def test_the_demo_world_registers_the_readme_ae_titles_and_peers_once(lakeside):
    load_demo_gateway({"lakeside": lakeside})  # a second run adds nothing
    peers = set(DicomPeer.objects.filter(called__ae_title="LAKESIDE").values_list("calling_ae_title", "host"))
    assert {("CT_ROOM1", "127.0.0.1"), ("ORTHANC", "127.0.0.1"), ("STORESCU", "127.0.0.1")} <= peers
    assert DicomPeer.objects.filter(called__ae_title="LAKESIDE").count() == len(peers)


def test_echoscu_and_storescu_from_the_readme_work_with_the_demo_world(gateway, study_spec, tmp_path):
    result = echoscu(gateway, "CT_ROOM1", "LAKESIDE")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "ct.dcm"
    path.write_bytes(synthetic.to_bytes(synthetic.ct_series(study_spec, slices=1, size=64)[0]))
    result = storescu(gateway, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Instance.objects.count() == 1


def test_stow_then_cstore_then_stow_again_stores_each_instance_once_with_every_answer_a_success(
        gateway, lakeside, study_spec, tmp_path):
    datasets = synthetic.ct_series(study_spec, slices=3, size=64)
    files = [synthetic.to_bytes(ds) for ds in datasets]
    _key, secret = account_services.api_key_create(actor=None, organization=lakeside, name="Router",
                                                   roles=["technologist"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    ctype, body = multipart(files[:2])
    assert client.post("/dicomweb/studies", data=body, content_type=ctype).status_code == 200
    before = {i.sop_instance_uid: stored_bytes(i) for i in Instance.objects.all()}

    paths = []
    for number, data in enumerate(files):
        paths.append(tmp_path / f"{number}.dcm")
        paths[-1].write_bytes(data)
    result = storescu(gateway, *paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Status: Success" in result.stderr or "Success" in result.stdout + result.stderr
    assert "0xa900" not in (result.stdout + result.stderr).lower()
    assert Instance.objects.count() == 3
    assert {k: v for k, v in ((i.sop_instance_uid, stored_bytes(i)) for i in Instance.objects.all())
            if k in before} == before

    # and back through STOW-RS: the copy the gateway stored (its own file meta) is the same data set
    ctype, body = multipart(files)
    response = client.post("/dicomweb/studies", data=body, content_type=ctype)
    assert response.status_code == 200, response.content[:400]
    assert len(items(response, STORED)) == 3
    assert Instance.objects.count() == 3


def test_a_deflated_data_set_over_c_store_is_stored_as_sent(gateway, study_spec, tmp_path):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    path = tmp_path / "deflated.dcm"
    path.write_bytes(out.getvalue())
    result = storescu(gateway, path, options=("-xd",))
    assert result.returncode == 0, result.stdout + result.stderr
    instance = Instance.objects.get()
    assert instance.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    stored = pydicom.dcmread(io.BytesIO(stored_bytes(instance)))
    assert stored.PixelData == ds.PixelData
