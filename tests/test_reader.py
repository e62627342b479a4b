"""The reader against pydicom: every corpus file is indexed as pydicom reads it, and the writer
copies what it does not touch byte for byte."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomscrub import _core
from dicomscrub.errors import InvalidDicomError

from corpus import REFUSED, corpus_files, corpus_id, readable_files

FILES = readable_files()
TEXT_VRS = ("LO", "SH", "PN", "ST", "LT", "UT", "UC", "CS", "UI", "DA")
IDENTITY = _core.Plan(json.dumps({"version": 1}), b"k")
# A plan that forces a rewrite but matches no element of any corpus file.
NO_MATCH = _core.Plan(json.dumps({"version": 1, "tags": {"0011FFFF": {"action": "remove"}}}), b"k")


def pydicom_read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def compare(ours: list[dict], theirs: Dataset, where: str) -> None:
    """Tags, item counts and decoded text values at every depth."""
    assert [e["tag"] for e in ours] == [int(t) for t in theirs.keys()], where
    for e in ours:
        elem = theirs[e["tag"]]
        path = f"{where}/{elem.tag}"
        if e["items"] is not None:
            assert elem.VR in ("SQ", "UN"), path
            if elem.VR == "SQ":
                assert len(e["items"]) == len(elem.value), path
                pairs = zip(e["items"], elem.value, strict=True)
                for n, (ours_item, their_item) in enumerate(pairs):
                    compare(ours_item, their_item, f"{path}[{n}]")
            continue
        if e["text"] is not None and elem.VR == e["vr"] and e["vr"] in TEXT_VRS:
            value = elem.value
            if isinstance(value, (list, pydicom.multival.MultiValue)):
                value = "\\".join(str(v) for v in value)
            text = e["text"].rstrip(" \x00")
            assert text == str(value).rstrip(" \x00"), path


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_index_matches_pydicom(path: Path) -> None:
    d = _core.dump(path.read_bytes())
    ds = pydicom_read(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in ds.iterall():
            pass
        compare(d["dataset"], ds, path.name)
        if d["meta"]:
            compare(d["meta"], ds.file_meta, path.name + ":meta")


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_identity_plan_returns_input(path: Path) -> None:
    data = path.read_bytes()
    assert not IDENTITY.changes_anything
    assert _core.anonymize_bytes(data, IDENTITY) == data


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
def test_untouched_data_set_is_copied_verbatim(path: Path, tmp_path: Path) -> None:
    """A rewrite that edits nothing keeps every data set byte (only the File Meta is new), in
    memory and file to file (window reads, kernel copies)."""
    data = path.read_bytes()
    d_in = _core.dump(data)
    out = _core.anonymize_bytes(data, NO_MATCH)
    d_out = _core.dump(out)
    assert d_out["transfer_syntax"] == d_in["transfer_syntax"]
    dst = tmp_path / "out.dcm"
    rec = _core.anonymize_file(str(path), str(dst), NO_MATCH)
    assert dst.read_bytes() == out
    assert rec["bytes_out"] == len(out) and rec["bytes_in"] == len(data)
    if "1.2.840.10008.1.2.1.99" in d_in["transfer_syntax"] or not d_in["dataset"]:
        return  # deflated: the data set bytes are re-deflated
    start_in = d_in["dataset"][0]["offset"]
    start_out = d_out["dataset"][0]["offset"]
    body = out[start_out:]
    assert data[start_in : start_in + len(body)] == body
    assert len(data) - start_in - len(body) < 8  # only sub-element trailing bytes are dropped


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_damaged_corpus_files_are_refused_with_where(name: str) -> None:
    matches = [p for p in corpus_files() if p.name == name]
    if not matches:  # no_meta.dcm is not picked up as DICOM by the corpus scan
        from pydicom.data import get_testdata_file

        found = get_testdata_file(name, download=False)
        assert found is not None, name
        matches = [Path(found)]
    with pytest.raises(InvalidDicomError) as info:
        _core.anonymize_bytes(matches[0].read_bytes(), NO_MATCH)
    assert REFUSED[name] in str(info.value)
    if "truncated" in REFUSED[name]:
        assert info.value.offset is not None and "offset 0x" in str(info.value)
        assert info.value.tag is not None


def test_file_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"this is not DICOM at all, just text\n" * 10)
    with pytest.raises(InvalidDicomError) as info:
        _core.anonymize_file(str(bad), str(tmp_path / "out.dcm"), NO_MATCH)
    assert info.value.path == str(bad)
    assert str(bad) in str(info.value)
    assert not (tmp_path / "out.dcm").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.dcm"]


def test_missing_input_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _core.anonymize_file(str(tmp_path / "nope.dcm"), str(tmp_path / "o.dcm"), NO_MATCH)


@pytest.mark.parametrize("name", ["ctbrain1.dcm", "ctbrain2.dcm"])
def test_ctbrain_files_are_kept_whole(name: str) -> None:
    """deid-data's ctbrain files carry malformed private elements (0011,0001-0003) right after
    group 0010; a peer drops everything after them. Every element (pixel data included) stays."""
    path = next(p for p in corpus_files() if p.name == name)
    data = path.read_bytes()
    tags_in = [e["tag"] for e in _core.dump(data)["dataset"]]
    assert 0x00110001 in tags_in and 0x7FE00010 in tags_in
    out = _core.anonymize_bytes(data, NO_MATCH)
    assert [e["tag"] for e in _core.dump(out)["dataset"]] == tags_in
    ds = pydicom_read(path)
    assert [int(t) for t in ds.keys()] == tags_in
