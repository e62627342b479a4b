"""The backbone: for every corpus file and profile, what the Rust engine writes, read back by
pydicom, equals what the pure-Python reference produces from the same input, element by element
at every depth (File Meta included), and pixel data bytes are those of the input."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomscrub import Profile, _core, reference
from dicomscrub.profiles.options import EXCLUSIVE

from corpus import corpus_id, readable_files

TEST_KEY = b"dicomscrub test key: not a secret"

ALL_OPTIONS = [name for name, _meaning, _code in Profile.options()]
_DROP = {pair[0] for pair in EXCLUSIVE}  # all options but one of each exclusive pair

PROFILES: dict[str, list[str]] = {
    "basic": [],
    **{name: [name] for name in ALL_OPTIONS},
    "all": [o for o in ALL_OPTIONS if o not in _DROP],
}

_plans: dict[str, tuple[dict, _core.Plan]] = {}


#: inserts at depth: into every item of two sequences common in the corpus
NESTED_INSERTS = [
    {"tag": "00204000", "vr": "LT", "value": "inserted at depth", "in": "00081140"},
    {"tag": "00081150", "vr": "UI", "value": "1.2.3.4", "in": "00081140"},
    {"tag": "00080100", "vr": "SH", "value": "X1", "in": "0040A043"},
]


def plan_for(name: str) -> tuple[dict, _core.Plan]:
    if name not in _plans:
        if name == "nested-insert":
            plan = Profile.basic().to_plan()
            plan["insert"] = plan.get("insert", []) + NESTED_INSERTS
        else:
            plan = Profile.basic(PROFILES[name]).to_plan()
        _plans[name] = (plan, _core.Plan(json.dumps(plan), TEST_KEY))
    return _plans[name]


def read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for _ in ds.iterall():  # decode everything now, under the filter
            pass
    return ds


def pixel_bytes(ds: Dataset) -> bytes | None:
    elem = ds.get((0x7FE0, 0x0010))
    return None if elem is None else elem.value


def check(path: Path, name: str) -> None:
    plan_dict, plan = plan_for(name)
    data = path.read_bytes()
    out = _core.anonymize_bytes(data, plan)
    found = read(out)
    source = read(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference.apply_plan(source, plan_dict, TEST_KEY)
    diffs = reference.differences(expected, found)
    assert not diffs, "\n".join(
        f"{d.kind} {d.path}: expected {d.expected!r}, found {d.found!r}" for d in diffs[:20]
    )
    if "PixelData" in source:
        assert pixel_bytes(found) == pixel_bytes(source)
    if "SOPInstanceUID" in found:
        assert found.file_meta.MediaStorageSOPInstanceUID == found.SOPInstanceUID


FILES = readable_files()


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
@pytest.mark.parametrize("name", ["basic", "all", "nested-insert"])
def test_rust_equals_reference(path: Path, name: str) -> None:
    check(path, name)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=corpus_id)
@pytest.mark.parametrize("name", ALL_OPTIONS)
def test_rust_equals_reference_each_option(path: Path, name: str) -> None:
    check(path, name)
