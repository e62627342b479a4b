"""A throwaway Orthanc (the real PACS of the gateway tests and benchmarks), on loopback.

Debian's ``orthanc`` package (``/usr/sbin/Orthanc``) with its plugins ``orthanc-dicomweb``
(DICOMweb: STOW-RS, QIDO-RS, WADO-RS) and ``orthanc-gdcm`` (decoding of JPEG 2000 and the other
compressed syntaxes, for previews). Each instance gets a temporary JSON
configuration: DICOM and HTTP ports on 127.0.0.1 chosen at run time, storage and index in a
temporary folder, AE title ``ORTHANC``, remote access and authentication off.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "Orthanc is not installed: the gateway tests need a real PACS. Install it with\n"
    "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y orthanc "
    "orthanc-dicomweb orthanc-gdcm dcmtk\n"
    "(.ci/run does it)"
)
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


#: the compressed syntaxes handed to the GDCM plugin: JPEG 2000, JPEG-LS, HTJ2K
GDCM_SYNTAXES = [
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
]


def find_orthanc() -> str | None:
    """The Orthanc binary, or None."""
    for candidate in (shutil.which("Orthanc"), "/usr/sbin/Orthanc", "/usr/bin/Orthanc"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _find_plugin(stem: str) -> str | None:
    for d in PLUGIN_DIRS:
        p = Path(d)
        if p.is_dir():
            for f in sorted(p.glob(f"lib{stem}.so*")):
                return str(f)
    return None


def find_dicomweb_plugin() -> str | None:
    """``orthanc-dicomweb``: STOW-RS, QIDO-RS, WADO-RS."""
    return _find_plugin("OrthancDicomWeb")


def find_gdcm_plugin() -> str | None:
    """``orthanc-gdcm``: decoders for JPEG 2000, JPEG-LS and the other compressed syntaxes
    Orthanc's own DCMTK does not render (previews, as a viewer would ask for)."""
    return _find_plugin("OrthancGdcm")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dcmtk_env() -> dict[str, str]:
    """The environment for a DCMTK-based program (Orthanc, storescu): ``TCP_NODELAY=1`` turns
    Nagle's algorithm off, as a tuned deployment does. Debian's DCMTK leaves it on, and a
    C-STORE then waits ~40 ms for the peer's delayed ACK (storescu into Orthanc: 12
    instances/s instead of 350)."""
    return {**os.environ, "TCP_NODELAY": "1"}


def find_storescu() -> str | None:
    """DCMTK's ``storescu`` (Debian: ``apt-get install -y dcmtk``)."""
    return shutil.which("storescu")


#: storescu's option proposing a transfer syntax (for compressed ones, beside the uncompressed)
STORESCU_PROPOSE = {
    "1.2.840.10008.1.2": "-xi",
    "1.2.840.10008.1.2.1": "-xe",
    "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.4.100": "-xm",
    "1.2.840.10008.1.2.4.101": "-xh",
    "1.2.840.10008.1.2.4.102": "-xn",
    "1.2.840.10008.1.2.4.103": "-xl",
}


def storescu(
    paths: list[Path],
    aec: str,
    port: int,
    *,
    aet: str = "STORESCU",
    host: str = "127.0.0.1",
    timeout: float = 600.0,
) -> list[subprocess.CompletedProcess[str]]:
    """DCMTK's storescu sending each file in its own transfer syntax: one run (one
    association) per syntax, with the option proposing it (``-R``: only the contexts the files
    need; ``--no-halt``: goes on after a refused instance). A syntax storescu cannot propose
    raises ValueError."""
    from dicomscrub.gateway.dimse import read_meta_file

    binary = find_storescu()
    if binary is None:
        raise FileNotFoundError("storescu not found: apt-get install -y dcmtk")
    groups: dict[str, list[str]] = {}
    for p in paths:
        ts = read_meta_file(p).transfer_syntax
        if ts not in STORESCU_PROPOSE:
            raise ValueError(f"{p}: storescu cannot propose transfer syntax {ts}")
        groups.setdefault(ts, []).append(str(p))
    runs = []
    for ts, files in groups.items():
        argv = [binary, STORESCU_PROPOSE[ts], "-R", "--no-halt", "-aet", aet, "-aec", aec]
        runs.append(
            subprocess.run(
                [*argv, host, str(port), *files],
                capture_output=True,
                text=True,
                env=dcmtk_env(),
                timeout=timeout,
            )
        )
    return runs


class Orthanc:
    """One Orthanc process. ``start()``, ``stop()``; ``start()`` again reuses its storage and
    ports (a PACS that went down and came back)."""

    def __init__(
        self,
        workdir: Path,
        *,
        aet: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
        modalities: dict[str, tuple[str, str, int]] | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        binary = find_orthanc()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.aet = aet
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        self.plugin = find_dicomweb_plugin()
        self.gdcm = find_gdcm_plugin()
        self.config_path = self.workdir / "orthanc.json"
        self.log_path = self.workdir / "orthanc.log"
        config: dict[str, Any] = {
            "Name": "dicomscrub-test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "StorageCompression": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "HttpThreadsCount": 8,
            "DicomServerEnabled": True,
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": {k: list(v) for k, v in (modalities or {}).items()},
            "UnknownSopClassAccepted": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SaveJobs": False,
            "ConcurrentJobs": 1,
            "StableAge": 3600,
            "Plugins": [p for p in (self.plugin, self.gdcm) if p],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            # GDCM only where Orthanc's own DCMTK has no decoder (as Orthanc's documentation
            # advises): GDCM 3.0.21 aborts the whole PACS on an explicit big endian RT Dose
            "Gdcm": {"Enable": True, "RestrictTransferSyntaxes": GDCM_SYNTAXES},
        }
        config.update(extra_config or {})
        self.config_path.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str | None:
        return f"{self.url}/dicom-web" if self.plugin else None

    def start(self, timeout: float = 30.0) -> Orthanc:
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, str(self.config_path)],
            cwd=self.workdir,
            env=dcmtk_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                self.get_json("/system")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout} s: {self.log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: the PACS goes down on the spot (a graceful stop waits for the associations
        in progress to end)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- REST ------------------------------------------------------------------------------------

    def request(
        self,
        path: str,
        *,
        data: bytes | None = None,
        method: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=headers or {}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def get(self, path: str) -> bytes:
        return self.request(path)

    def get_json(self, path: str) -> Any:
        return json.loads(self.request(path))

    def instances(self) -> list[str]:
        return list(self.get_json("/instances"))

    def lookup_instance(self, sop_instance_uid: str) -> str | None:
        """Orthanc's ID of the instance with this SOP Instance UID."""
        found = json.loads(self.request("/tools/lookup", data=sop_instance_uid.encode()))
        for f in found:
            if f.get("Type") == "Instance":
                return str(f["ID"])
        return None

    def delete_everything(self) -> None:
        for pid in self.get_json("/patients"):
            self.request(f"/patients/{pid}", method="DELETE")

    def wait_for_instances(self, n: int, timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            ids = self.instances()
            if len(ids) >= n or time.monotonic() > deadline:
                return ids
            time.sleep(0.2)
