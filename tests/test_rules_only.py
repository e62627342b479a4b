"""Rules-only profiles: exactly the asked edits, at every depth, and nothing else."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomscrub import Profile, ProfileError, _core

from corpus import corpus_id, readable_files

RULES = {
    "PatientName": "remove",
    "PatientID": ("replace", "SUBJ01"),
    "(0008,0080)": "empty",
    "(0009,xx10)": "remove",
    "ReferencedSOPInstanceUID": "remove",
}


def read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for _ in ds.iterall():
            pass
    return ds


def expected_edit(ds: Dataset) -> None:
    """The same edits with pydicom, at every depth."""

    def visit(d: Dataset) -> None:
        for tag in list(d.keys()):
            elem = d[tag]
            t = int(tag)
            group, element = t >> 16, t & 0xFFFF
            if t in (0x00100010, 0x00081155):
                del d[tag]
            elif t == 0x00100020:
                elem.value = "SUBJ01"
            elif t == 0x00080080:
                elem.value = ""
            elif group == 0x0009 and element >= 0x1000 and element & 0xFF == 0x10:
                del d[tag]
            elif elem.VR == "SQ":
                for item in elem.value:
                    visit(item)

    visit(ds)


@pytest.mark.parametrize("path", readable_files()[::4], ids=corpus_id)
def test_from_rules_changes_exactly_the_asked_elements(path: Path) -> None:
    plan = _core.Plan(Profile.from_rules(RULES).to_json(), b"k")
    data = path.read_bytes()
    out = read(_core.anonymize_bytes(data, plan))
    expected = read(data)
    expected_edit(expected)
    from dicomscrub import reference

    # The File Meta is dicomscrub's and the preamble is zeroed (it can hide data): by design.
    diffs = [
        d
        for d in reference.differences(expected, out)
        if not d.path.startswith("file_meta") and d.kind != "preamble"
    ]
    assert diffs == []


def test_keep_all_is_identity() -> None:
    plan = _core.Plan(Profile.keep_all().to_json(), b"k")
    assert not plan.changes_anything
    for path in readable_files()[:20]:
        data = path.read_bytes()
        assert _core.anonymize_bytes(data, plan) == data


def test_private_selector_never_targets_creators() -> None:
    plan = Profile.from_rules({"(0009,xx10)": "remove"}).to_plan()
    assert "00090010" not in plan["tags"]
    assert "00091010" in plan["tags"] and "0009FF10" in plan["tags"]


@pytest.mark.parametrize(
    "rules",
    [{"PatientNam": "remove"}, {"PatientName": "erase"}, {"PatientID": ("replace",)}],
)
def test_bad_rules_name_the_problem(rules: dict) -> None:
    with pytest.raises(ProfileError) as info:
        Profile.from_rules(rules)
    assert repr(next(iter(rules))) in str(info.value)
