"""Start-up cost of the built-in profile and of ``dicomscrub run`` (issue 6).

``import dicomscrub``, ``Profile.basic(...)`` and a ``dicomscrub run`` with the basic profile
import neither pydicom nor numpy: what the plan needs from the data dictionary (each Table E.1-1
row's VR, the keywords of the identifying attributes) is generated into
``dicomscrub/profiles/_ps3_15.py``. The plan must be exactly the one pydicom's dictionary gives,
for every option set: checked here against a computation that asks pydicom.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_VR

from dicomscrub import Profile
from dicomscrub.profiles import plan as plan_module
from dicomscrub.profiles import resolution
from dicomscrub.profiles.options import EXCLUSIVE, OPTIONS
from dicomscrub.profiles.table import ROW_TAGS, ROWS, Row

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
#: packages that must not be imported by the built-in profile or a plain `dicomscrub run`
HEAVY = ("pydicom", "numpy")


def _option_sets() -> Iterator[tuple[str, ...]]:
    """Every set of options that may be combined (2^10 less the exclusive pairs: 768)."""
    names = [o.name for o in OPTIONS]
    for bits in range(1 << len(names)):
        chosen = tuple(n for i, n in enumerate(names) if bits >> i & 1)
        if not any(a in chosen and b in chosen for a, b in EXCLUSIVE):
            yield chosen


OPTION_SETS = list(_option_sets())


def _pydicom_vr(row: Row) -> str | None:
    """The VR pydicom's data dictionary gives a row: None for the private-attributes row and a
    whole group (a wildcard row without keyword), else the dictionary VR of the row's tag (the
    first tag of a wildcard row), ``"OB or OW"`` as is."""
    if row.kind == "private" or (row.kind == "mask" and row.keyword is None):
        return None
    try:
        return str(dictionary_VR(row.mask[1]))
    except KeyError:
        return None


def test_generated_row_vrs_are_pydicoms() -> None:
    assert len(OPTION_SETS) == 768
    assert [(r.tag, r.vr) for r in ROWS] == [(r.tag, _pydicom_vr(r)) for r in ROWS]
    assert {"PatientID", "StationName", "InstitutionName"} <= set(ROW_TAGS)


def test_basic_plan_equals_the_plan_of_pydicoms_dictionary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For every option set, the plan JSON is byte for byte the one built when the rows' VRs and
    the identifying keywords' tags are taken from pydicom's dictionary."""
    generated = {options: Profile.basic(options).to_json() for options in OPTION_SETS}
    rows = tuple(r._replace(vr=_pydicom_vr(r)) for r in ROWS)
    monkeypatch.setattr(resolution, "ROWS", rows)
    monkeypatch.setattr(plan_module, "ROW_TAGS", {})  # every keyword through pydicom
    for options in OPTION_SETS:
        assert Profile.basic(options).to_json() == generated[options], options


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_import_and_basic_profile_import_no_pydicom(tmp_path: Path) -> None:
    code = f"""
import json, sys
import dicomscrub, dicomscrub.cli
from dicomscrub import Profile
from dicomscrub.profiles.options import OPTIONS
Profile.basic().to_json()
Profile.basic(["retain-safe-private", "retain-long-modified-dates", "clean-descriptors"]).to_json()
Profile.basic([o.name for o in OPTIONS if o.name != "retain-long-full-dates"]).to_json()
Profile.basic(["retain-long-full-dates", "retain-uids"]).to_plan()
Profile.keep_all().to_json()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
"""
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    "options",
    [(), ("retain-safe-private", "retain-long-modified-dates", "clean-structured-content")],
    ids=["basic", "basic+options"],
)
def test_run_imports_no_pydicom(tmp_path: Path, options: tuple[str, ...]) -> None:
    """``dicomscrub run`` on a tree without DICOMDIR: sys.modules checked at exit (atexit)."""
    src, dst, seen = tmp_path / "src", tmp_path / "dst", tmp_path / "modules.json"
    shutil.copytree(SAMPLES, src, ignore=shutil.ignore_patterns("DICOMDIR"))
    key = tmp_path / "key"
    key.write_bytes(b"test key of test_startup")
    argv = ["run", str(src), str(dst), "--key-file", str(key), "--no-progress"]
    for name in options:
        argv += ["--option", name]
    code = f"""
import atexit, json, sys

def _modules():
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    with open({str(seen)!r}, "w") as f:
        json.dump(heavy, f)

atexit.register(_modules)
from dicomscrub.cli import main
sys.exit(main({argv!r}))
"""
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok       7" in done.stdout, done.stdout
    assert len(list(dst.rglob("*000001"))) == 5
    assert json.loads(seen.read_text()) == []


@pytest.mark.parametrize("command", ["dump", "dry-run"])
def test_dump_and_dry_run_import_no_pydicom(tmp_path: Path, command: str) -> None:
    """``dicomscrub dump`` and ``run --dry-run`` name tags with the core's dictionary."""
    src, seen = tmp_path / "src", tmp_path / "modules.json"
    shutil.copytree(SAMPLES, src, ignore=shutil.ignore_patterns("DICOMDIR"))
    key = tmp_path / "key"
    key.write_bytes(b"test key of test_startup")
    if command == "dump":
        argv = ["dump", str(next(p for p in sorted(src.rglob("*000001"))))]
        expected = "PatientName"
    else:
        argv = ["run", str(src), str(tmp_path / "dst"), "--key-file", str(key), "--dry-run"]
        expected = "PatientName"
    code = f"""
import atexit, json, sys

def _modules():
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    with open({str(seen)!r}, "w") as f:
        json.dump(heavy, f)

atexit.register(_modules)
from dicomscrub.cli import main
sys.exit(main({argv!r}))
"""
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout
    assert json.loads(seen.read_text()) == []
    assert not (tmp_path / "dst").exists() or not any((tmp_path / "dst").rglob("*000001"))
