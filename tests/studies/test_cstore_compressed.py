"""Issue 19 item 5: DCMTK's storescu sends compressed instances to the C-STORE gateway, each file in an
association that proposes the file's own transfer syntax (storescu's -xy, -xs, -xt, -xv, -xr).

The compressed files are made in the test from an uncompressed CT slice: JPEG baseline, JPEG lossless and
JPEG-LS by DCMTK's dcmcjpeg and dcmcjpls, RLE by dcmcrle, JPEG 2000 by pydicom's openjpeg plugin (DCMTK has no
JPEG 2000 encoder). Each is answered Success, stored as sent (DCMTK sends a data set unchanged when the
negotiated syntax is the file's own), retrieved byte for byte with ``transfer-syntax=*``, and decoded by WADO-RS:
its frame as plain pixels and its rendered image.
"""

from __future__ import annotations

import io
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from studies import synthetic
from studies.demo import load_demo_gateway
from studies.gateway import Gateway
from studies.models import Instance
from tests.conftest import require_or_skip
from tests.studies.test_gateway import TOOLS, dataset_part, dcmtk, dcmtk_tool, run, stored_bytes  # noqa: F401
from tests.studies.test_wado import parse_multipart, url

pytestmark = pytest.mark.django_db(transaction=True)

SIZE = 128
AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DEFAULT_SYNTAX = 'multipart/related; type="application/dicom"'
PLAIN_PIXELS = 'multipart/related; type="application/octet-stream"'  # uncompressed: decoded on the way out


@dataclass(frozen=True)
class Encoding:
    syntax: str
    propose: str  # storescu's option proposing this syntax (and the uncompressed ones after it)
    converter: tuple[str, ...] | None  # DCMTK's converter and its options; None: pydicom's encoder
    lossless: bool = True


ENCODINGS = [
    Encoding(JPEGBaseline8Bit, "-xy", ("dcmcjpeg", "+eb"), lossless=False),
    Encoding(JPEGLosslessSV1, "-xs", ("dcmcjpeg",)),
    Encoding(JPEGLSLossless, "-xt", ("dcmcjpls",)),
    Encoding(JPEG2000Lossless, "-xv", None),
    Encoding(RLELossless, "-xr", ("dcmcrle",)),
]


@pytest.fixture
def gateway(dcmtk, cast):  # noqa: F811 - the module fixture imported above
    """Lakeside as the demo world registers it (AE title LAKESIDE, CT_ROOM1 among its peers), listening."""
    load_demo_gateway({"lakeside": cast.center})
    gw = Gateway(host="127.0.0.1", port=0).start()
    yield gw
    gw.shutdown()


def compressed_file(encoding: Encoding, spec, folder: Path) -> Path:
    """One CT slice, written uncompressed, then encoded in ``encoding.syntax`` by a real encoder."""
    ds = synthetic.ct_series(spec, slices=1, size=SIZE)[0]
    source, target = folder / "uncompressed.dcm", folder / "compressed.dcm"
    if encoding.converter is None:
        ds.compress(encoding.syntax, encoding_plugin="pylibjpeg")
        target.write_bytes(synthetic.to_bytes(ds))
        return target
    tool, *options = encoding.converter
    path = dcmtk_tool(tool)
    require_or_skip(path is not None, f"DCMTK's {tool} (Debian package dcmtk)")
    source.write_bytes(synthetic.to_bytes(ds))
    subprocess.run([path, *options, str(source), str(target)], check=True, capture_output=True, timeout=60)
    return target


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: pydicom.uid.UID(e.syntax).keyword)
def test_storescu_sends_each_compressed_syntax_as_proposed_and_it_is_stored_retrieved_and_decoded(
        gateway, cast, login, study_spec, tmp_path, encoding):
    path = compressed_file(encoding, study_spec, tmp_path)
    sent = path.read_bytes()
    original = pydicom.dcmread(io.BytesIO(sent))
    assert original.file_meta.TransferSyntaxUID == encoding.syntax

    result = run(TOOLS["storescu"], "-v", "+v", encoding.propose, "-aet", "CT_ROOM1", "-aec", "LAKESIDE",
                 "127.0.0.1", gateway.port, path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Received Store Response (Success)" in output, output
    # the gateway accepted the file's own syntax, so storescu sent the data set without converting it
    [(before, after)] = re.findall(r"Converting transfer syntax: (.+?) -> (.+?)\n", output)
    assert before == after, output

    instance = Instance.objects.get(sop_instance_uid=original.SOPInstanceUID)
    assert instance.organization == cast.center
    assert instance.received_via == "cstore"
    assert instance.transfer_syntax_uid == encoding.syntax
    assert dataset_part(stored_bytes(instance)) == dataset_part(sent)  # the compressed data set as sent

    client = login(cast.center_admin)
    uids = (original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID)
    [(headers, content)] = parse_multipart(client.get(url(*uids), HTTP_ACCEPT=AS_STORED))
    assert headers["content-type"] == f"application/dicom; transfer-syntax={encoding.syntax}"
    assert content == stored_bytes(instance)

    # no transfer syntax: PS3.18's default, Explicit VR Little Endian, decoded; still the same instance
    [(headers, content)] = parse_multipart(client.get(url(*uids), HTTP_ACCEPT=DEFAULT_SYNTAX))
    assert headers["content-type"] == f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}"
    decompressed = pydicom.dcmread(io.BytesIO(content))
    assert decompressed.SOPInstanceUID == decompressed.file_meta.MediaStorageSOPInstanceUID == uids[2]
    assert decompressed.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian

    response = client.get(url(*uids, tail="/frames/1"), HTTP_ACCEPT=PLAIN_PIXELS)
    assert response.status_code == 200
    [(headers, pixels)] = parse_multipart(response)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    expected = original.pixel_array
    decoded = np.frombuffer(pixels, dtype=expected.dtype).reshape(expected.shape)
    if encoding.lossless:
        np.testing.assert_array_equal(decoded, expected)
    else:  # a lossy code: close to what pydicom's own decoder makes of the same bytes
        assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 2

    rendered = client.get(url(*uids, tail="/rendered"), HTTP_ACCEPT="image/png")
    assert rendered.status_code == 200
    image = Image.open(io.BytesIO(rendered.content))
    assert image.format == "PNG"
    assert image.size == (SIZE, SIZE)
    assert np.asarray(image).std() > 0  # a picture, not a blank
