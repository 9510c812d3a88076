"""A private Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) for the interoperability tests.

Each test starts its own Orthanc on free loopback ports with its own storage in a temporary folder (never the
Debian service, never ``../shared/bench``'s fixed ports), drives it through its REST API and stops it by its
process id. Orthanc's own log is kept beside its storage and quoted when something it did failed.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
AE_TITLE = "ORTHANC"  # the calling AE title the demo world registers as a peer of LAKESIDE


def installed() -> bool:
    return Path(ORTHANC_BINARY).is_file() and Path(DICOMWEB_PLUGIN).is_file()


class OrthancError(AssertionError):
    """Orthanc answered an error or a job of it failed; the message carries its log's tail."""


class Orthanc:
    """One running Orthanc: ``Orthanc(folder, servers=..., modalities=...).start()``, then ``stop()``."""

    def __init__(self, folder: Path, *, http_port: int, dicom_port: int, servers: dict | None = None,
                 modalities: dict | None = None) -> None:
        self.folder = folder
        self.http_port, self.dicom_port = http_port, dicom_port
        self.url = f"http://127.0.0.1:{http_port}"
        self.log = folder / "orthanc.log"
        self.config = {
            "Name": "ReadRoomInterop",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "storage"),
            "Plugins": [DICOMWEB_PLUGIN],
            "HttpPort": http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAet": AE_TITLE,
            "DicomPort": dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomModalities": modalities or {},
            "SaveJobs": False,
            # As the package ships it otherwise: the DICOMweb client sends chunked bodies (gunicorn de-chunks them).
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": servers or {}},
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Orthanc:
        (self.folder / "storage").mkdir(parents=True, exist_ok=True)
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(self.config, indent=2))
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([ORTHANC_BINARY, "--verbose", "--trace-dicom", str(config)], stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OrthancError(f"Orthanc exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.get("/system")
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise OrthancError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        """Orthanc's log so far: HTTP statuses of its requests, and (``--trace-dicom``) every DIMSE message."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- REST ------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, *,
                content_type: str = "application/json") -> bytes:
        headers = {"Content-Type": content_type} if body is not None else {}
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - Orthanc's loopback URL
                return response.read()
        except urllib.error.HTTPError as error:
            raise OrthancError(f"{method} {path} answered {error.code}: {error.read()[:2000]!r}\n"
                               f"{self.log_tail()}") from None

    def get(self, path: str):
        return json.loads(self.request("GET", path))

    def post(self, path: str, payload: dict | list):
        answer = self.request("POST", path, json.dumps(payload).encode())
        return json.loads(answer) if answer.strip() else None

    def upload(self, data: bytes) -> dict:
        """Store one Part-10 file in Orthanc, as a router receives it: Orthanc keeps the file as it came."""
        return json.loads(self.request("POST", "/instances", data, content_type="application/dicom"))

    def file(self, orthanc_id: str) -> bytes:
        return self.request("GET", f"/instances/{orthanc_id}/file")

    def study_id(self, study_uid: str) -> str:
        """Orthanc's own id of the study with that Study Instance UID."""
        answer = json.loads(self.request("POST", "/tools/lookup", study_uid.encode(), content_type="text/plain"))
        [found] = [item["ID"] for item in answer if item["Type"] == "Study"]
        return found

    def instances(self) -> list[str]:
        return self.get("/instances")

    def run_job(self, path: str, payload: dict, timeout: float = 120) -> dict:
        """Start an asynchronous job (a STOW push, a C-STORE, a retrieve) and wait for its end; the job's
        final state is returned whatever it is, with ``Orthanc``'s log tail under the key ``log``."""
        job = self.post(path, {**payload, "Asynchronous": True})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.get(f"/jobs/{job['ID']}")
            if state["State"] in {"Success", "Failure"}:
                return {**state, "log": self.log_tail()}
            time.sleep(0.2)
        raise OrthancError(f"job {job['ID']} still running after {timeout} s:\n{self.log_tail()}")
