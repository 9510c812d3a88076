"""Fixtures of the interoperability tests: ReadRoom as deployed (gunicorn with config/gunicorn.py, the C-STORE
gateway) on free loopback ports, against the test database, and a private Orthanc pointed at both.

ReadRoom's web server is a separate gunicorn process (as in tests/core/test_gunicorn.py), not Django's
development server: Orthanc's DICOMweb client sends chunked bodies, which only a real WSGI server de-chunks.
It shares the test's PostgreSQL database (hence ``transaction=True`` and PostgreSQL only) and its media
folder (``READROOM_VAR_DIR`` is the test's ``tmp_path``, whose ``media`` the test process stores into too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.db import connection

from accounts import services as account_services
from accounts.models import Organization
from studies import synthetic
from studies.demo import load_demo_gateway
from studies.gateway import Gateway
from tests.conftest import require_or_skip
from tests.core.test_gunicorn import _start, free_port
from tests.factories import OrganizationFactory
from tests.interop import orthanc as orthanc_process
from tests.studies.conftest import study_spec  # noqa: F401 - the fictional study every DICOM test uses


@pytest.fixture(scope="session")
def orthanc_installed() -> None:
    require_or_skip(orthanc_process.installed(),
                    "Orthanc with its DICOMweb plugin (Debian packages orthanc and orthanc-dicomweb)")


@dataclass
class ReadRoom:
    url: str  # the DICOMweb root, e.g. http://127.0.0.1:41234/dicomweb
    secret: str  # an API key of Lakeside with the technologist role (may store, search and retrieve)
    center: Organization
    gateway: Gateway


@pytest.fixture
def readroom(postgres_only, transactional_db, tmp_path) -> Iterator[ReadRoom]:
    """Lakeside as the demo world sets it up (AE title LAKESIDE, ORTHANC among its peers), an API key for its
    router, gunicorn serving the site and the C-STORE gateway listening; both stopped at the end."""
    center = OrganizationFactory(name="Lakeside Imaging", slug="lakeside", region="TX")
    load_demo_gateway({"lakeside": center})
    _key, secret = account_services.api_key_create(actor=None, organization=center, name="Orthanc router",
                                                   roles=["technologist"])
    database = connection.settings_dict
    port = free_port()
    server = _start(tmp_path, port, DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:"
                                                 f"{database['PORT']}/{database['NAME']}")
    gateway = Gateway(host="127.0.0.1", port=0).start()
    try:
        yield ReadRoom(url=f"http://127.0.0.1:{port}/dicomweb", secret=secret, center=center, gateway=gateway)
    finally:
        gateway.shutdown()
        server.terminate()
        output = server.communicate(timeout=30)[0]
        assert "Traceback" not in output, output


@pytest.fixture
def orthanc(orthanc_installed, readroom, tmp_path) -> Iterator[Callable[..., orthanc_process.Orthanc]]:
    """``orthanc()`` → a running private Orthanc whose DICOMweb server ``readroom`` and modality ``readroom``
    are ReadRoom (bearer API key; AE title LAKESIDE at the gateway's port). Stopped at the end of the test."""
    started: list[orthanc_process.Orthanc] = []

    def _orthanc(**server_options) -> orthanc_process.Orthanc:
        server = {"Url": readroom.url + "/", "HttpHeaders": {"Authorization": f"Bearer {readroom.secret}"},
                  **server_options}
        instance = orthanc_process.Orthanc(
            tmp_path / f"orthanc{len(started)}", http_port=free_port(), dicom_port=free_port(),
            servers={"readroom": server},
            modalities={"readroom": {"AET": "LAKESIDE", "Host": "127.0.0.1", "Port": readroom.gateway.port}})
        started.append(instance)
        return instance.start()

    yield _orthanc
    for instance in started:
        instance.stop()


@pytest.fixture
def study_files(study_spec) -> list[bytes]:  # noqa: F811 - the fixture imported above
    """A whole study as a modality sends it: a CT series and three MR series (10 instances), Part-10 files."""
    datasets = synthetic.ct_series(study_spec, slices=4, size=64) + synthetic.mr_study(study_spec, slices=2, size=64)
    return [synthetic.to_bytes(ds) for ds in datasets]
