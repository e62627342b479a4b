"""Replay of the inputs the fuzzers found (tests/data/fuzz/, see python/tools/fuzz.sh): each
goes through the Python entry points and must give a dicomscrub exception or an output that
parses again (and that pydicom reads when it reads the input). README.md says what each was."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest

from dicomscrub import Profile, _core, errors

FUZZ = Path(__file__).parent / "data" / "fuzz"
FILES = sorted(FUZZ.glob("*.dcm"))
KEY = b"dicomscrub test key: not a secret"


def _reads(data: bytes) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            for _ in ds.iterall():
                pass
    except Exception:
        return False
    return True


def test_every_file_is_described() -> None:
    readme = (FUZZ / "README.md").read_text()
    assert FILES
    for p in FILES:
        assert p.name in readme, f"describe {p.name} in tests/data/fuzz/README.md"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("profile", ["basic", "keep_all"])
def test_replay(path: Path, profile: str, tmp_path: Path) -> None:
    prof = Profile.basic() if profile == "basic" else Profile.keep_all()
    plan = _core.Plan(prof.to_json(), KEY)
    data = path.read_bytes()
    try:
        _core.dump(data)
    except errors.DicomScrubError:
        pass
    try:
        out = _core.anonymize_bytes(data, plan)
    except errors.DicomScrubError as e:
        assert e.offset is not None or "not a DICOM" in str(e)
        with pytest.raises(errors.DicomScrubError):
            _core.anonymize_file(str(path), str(tmp_path / "out.dcm"), plan)
        assert list(tmp_path.iterdir()) == []
        return
    _core.dump(out)
    if _reads(data):
        assert _reads(out)
    rec = _core.anonymize_file(str(path), str(tmp_path / "out.dcm"), plan)
    assert rec["status"] == "ok"
    assert (tmp_path / "out.dcm").read_bytes() == out
