"""Ingest and read-back against a real S3-compatible server (moto's standalone server on 127.0.0.1).

The storage backend is configured exactly as ``config/settings.py`` builds it from the ``S3_*``
variables (read from a fresh settings import with those variables set), pointed at the server.
CI starts ``moto_server`` and exports ``READROOM_TEST_S3_ENDPOINT``; without it a server is started
here (moto[server] is a dev dependency). A laptop without moto skips; CI fails instead.

What moto enforces and what it does not (checked, so only the real behaviour is asserted): an
anonymous request for a private object is refused (403); signatures and expiry of pre-signed
URLs are not verified by moto, so their expiry is asserted on the URL itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage

from studies import synthetic
from studies.ingest import Source, Status, ingest_stream
from studies.ingest_rows import storage_key
from studies.models import Instance, Study
from tests.conftest import require_or_skip

boto3 = pytest.importorskip("boto3")

ACCESS_KEY = SECRET_KEY = "testing"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _moto_server_command() -> list[str] | None:
    beside_python = Path(sys.executable).parent / "moto_server"
    path = str(beside_python) if beside_python.exists() else shutil.which("moto_server")
    return [path] if path else None


def _wait_until_up(endpoint: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=1):  # noqa: S310 (our own loopback server)
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def s3_endpoint():
    endpoint = os.environ.get("READROOM_TEST_S3_ENDPOINT", "").rstrip("/")
    if endpoint:
        require_or_skip(_wait_until_up(endpoint, timeout=10), f"the S3 server at {endpoint}")
        yield endpoint
        return
    command = _moto_server_command()
    require_or_skip(command is not None, "moto's standalone S3 server (moto_server, from moto[server])")
    port = _free_port()
    process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        require_or_skip(_wait_until_up(endpoint), "moto_server (it did not start)")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def production_storage_options(env: dict[str, str]) -> dict:
    """The default storage exactly as config/settings.py builds it when these S3_* variables are set."""
    code = "import json; from config import settings; print(json.dumps(settings.STORAGES['default']))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("S3_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                            cwd=django_settings.BASE_DIR, env={**clean, **env})
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def s3_client(s3_endpoint):
    return boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


def _use_s3(settings, s3_endpoint, s3_client, *, region: str = "") -> str:
    bucket = f"readroom-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    env = {"S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3_endpoint, "S3_ACCESS_KEY_ID": ACCESS_KEY,
           "S3_SECRET_ACCESS_KEY": SECRET_KEY}
    if region:
        env["S3_REGION"] = region
    storage = production_storage_options(env)
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["default_acl"] == "private"
    assert storage["OPTIONS"]["querystring_auth"] is True
    assert storage["OPTIONS"]["file_overwrite"] is False
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    return bucket


@pytest.fixture
def bucket(_private_media, settings, s3_endpoint, s3_client):
    """A fresh private bucket as the default storage (after the per-test local folder fixture)."""
    return _use_s3(settings, s3_endpoint, s3_client)


def _ingest(org, data: bytes):
    return ingest_stream(organization=org, stream=io.BytesIO(data), filename="x.dcm", source=Source.UPLOAD)


def _object_bytes(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_ingest_stores_each_instance_under_its_exact_key_byte_for_byte(cast, ct_files, bucket, s3_client):
    outcomes = [_ingest(cast.center, data) for data in ct_files]
    assert [o.status for o in outcomes] == [Status.STORED] * len(ct_files)
    keys = sorted(obj["Key"] for obj in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    instances = Instance.objects.order_by("storage_key")
    assert keys == [i.storage_key for i in instances]
    for data, outcome in zip(ct_files, outcomes, strict=True):
        instance = outcome.instance
        assert instance.storage_key == storage_key(cast.center, instance.study.study_instance_uid,
                                                   instance.series.series_instance_uid, instance.sop_instance_uid)
        stored = _object_bytes(s3_client, bucket, instance.storage_key)
        assert stored == data
        assert hashlib.sha256(stored).hexdigest() == instance.sha256


def test_reading_back_through_the_storage_backend_returns_the_same_bytes(cast, ct_files, bucket):
    instance = _ingest(cast.center, ct_files[0]).instance
    with default_storage.open(instance.storage_key, "rb") as fh:
        digest = hashlib.sha256()
        while chunk := fh.read(4096):
            digest.update(chunk)
    assert digest.hexdigest() == instance.sha256


def test_duplicates_write_nothing_and_conflicts_never_overwrite(cast, study_spec, bucket, s3_client):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    original = synthetic.to_bytes(ds)
    instance = _ingest(cast.center, original).instance
    before = s3_client.head_object(Bucket=bucket, Key=instance.storage_key)
    time.sleep(1.1)  # LastModified has one-second resolution
    assert _ingest(cast.center, original).status == Status.DUPLICATE
    ds.SeriesDescription = "EDITED"
    assert _ingest(cast.center, synthetic.to_bytes(ds)).status == Status.CONFLICT
    after = s3_client.head_object(Bucket=bucket, Key=instance.storage_key)
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert _object_bytes(s3_client, bucket, instance.storage_key) == original
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_a_leftover_object_without_a_row_is_replaced_at_the_exact_key(cast, ct_files, bucket, s3_client):
    """file_overwrite=False would save under another name; ingest must still write exactly its key."""
    outcome = _ingest(cast.center, ct_files[0])
    key = outcome.instance.storage_key
    Instance.objects.all().delete()  # as if a crash had lost the row after the upload
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"half-written garbage")
    again = _ingest(cast.center, ct_files[0])
    assert again.status == Status.STORED
    assert again.instance.storage_key == key
    assert _object_bytes(s3_client, bucket, key) == ct_files[0]
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_objects_are_private_anonymous_requests_are_refused(cast, ct_files, bucket, s3_client, s3_endpoint):
    instance = _ingest(cast.center, ct_files[0]).instance
    grants = s3_client.get_object_acl(Bucket=bucket, Key=instance.storage_key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"]["Type"] == "CanonicalUser" for g in grants)  # no AllUsers / AuthenticatedUsers
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{s3_endpoint}/{bucket}/{instance.storage_key}", timeout=10)  # noqa: S310
    assert refused.value.code == 403


@pytest.mark.parametrize("region", ["", "eu-central-1"])
def test_signed_urls_expire_within_five_minutes(cast, ct_files, settings, s3_endpoint, s3_client, region):
    """No region (or us-east-1): botocore signs with SigV2 (absolute ``Expires``); a region: SigV4
    (``X-Amz-Expires``). Either way the URL is valid for at most 300 seconds."""
    _use_s3(settings, s3_endpoint, s3_client, region=region)
    instance = _ingest(cast.center, ct_files[0]).instance
    url = default_storage.url(instance.storage_key)
    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:
        assert 0 < int(query["X-Amz-Expires"][0]) <= 300
    else:
        assert not region  # SigV2 only where botocore falls back to it
        assert 0 < int(query["Expires"][0]) - time.time() <= 300
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        assert response.read() == ct_files[0]
    unsigned = urlunsplit(urlsplit(url)._replace(query=""))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=10)  # noqa: S310
    assert refused.value.code == 403


def test_a_storage_failure_leaves_no_row_behind(cast, ct_files, settings):
    port = _free_port()  # nothing listens here
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": "readroom-down", "endpoint_url": f"http://127.0.0.1:{port}", "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY, "default_acl": "private", "file_overwrite": False}}}
    from botocore.config import Config

    settings.STORAGES["default"]["OPTIONS"]["client_config"] = Config(retries={"max_attempts": 1},
                                                                      connect_timeout=1, read_timeout=1)
    with pytest.raises(Exception):  # noqa: B017,PT011 (botocore's connection error, whatever its class)
        _ingest(cast.center, ct_files[0])
    assert not Instance.objects.exists()
    assert not Study.objects.exists()
