"""Fixtures of the gateway tests: a real PACS (Orthanc, session-scoped), the corpus files sent
through the gateway, and ``dicomscrub serve`` run as a subprocess on a free port.

Orthanc must be installed (Debian: ``apt-get install -y orthanc orthanc-dicomweb``): without it
the tests that need it FAIL with that command, they are not skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # orthanc.py, gwproc.py, helpers.py
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))  # tests/corpus.py

from gwproc import GATEWAY_AET, SENDER_AET, Serve
from orthanc import INSTALL_HINT, Orthanc, find_orthanc, free_port

__all__ = ["GATEWAY_AET", "SENDER_AET", "Serve", "make_orthanc"]


@pytest.fixture(scope="session")
def gateway_port() -> int:
    """The port of the gateway Orthanc knows as a modality."""
    return free_port()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory, gateway_port: int) -> Iterator[Orthanc]:
    """A running Orthanc on loopback (AE title ORTHANC), with the gateway as a modality."""
    if find_orthanc() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    o = Orthanc(
        tmp_path_factory.mktemp("orthanc"),
        modalities={"dicomscrub": (GATEWAY_AET, "127.0.0.1", gateway_port)},
    )
    o.start()
    try:
        yield o
    finally:
        o.stop()


def make_orthanc(workdir: Path, **kwargs: object) -> Orthanc:
    if find_orthanc() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return Orthanc(workdir, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """``serve(port, [args...])``: a started gateway subprocess (stopped at the end)."""
    started: list[Serve] = []

    def factory(port: int, args: list[str], **kw: str) -> Serve:
        s = Serve(port, args, tmp_path, **kw).start()
        started.append(s)
        return s

    yield factory
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
