"""The Anonymizer API over real corpus files: outputs pydicom reads, pixel data untouched,
inputs untouched, atomic outputs, no overwrite unless asked."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pydicom
import pytest
from treekit import damaged_file, subset_files, temp_files

import dicomscrub
from dicomscrub import Anonymizer, FileResult, Profile
from dicomscrub.errors import InvalidDicomError, OutputError


@pytest.fixture(scope="module")
def anon() -> Anonymizer:
    return Anonymizer(Profile.basic(), key=b"test key of test_anonymizer")


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def read(p: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(p, force=True)


def pixel_bytes(ds: pydicom.Dataset) -> bytes | None:
    elem = ds.get((0x7FE0, 0x0010))
    return None if elem is None else bytes(elem.value)


@pytest.mark.parametrize("src", subset_files(), ids=lambda p: p.name)
def test_file_output_readable_pixels_identical_input_untouched(
    anon: Anonymizer, src: Path, tmp_path: Path
) -> None:
    before = sha(src)
    dst = tmp_path / "out" / "x.dcm"
    r = anon.anonymize_file(src, dst)
    assert isinstance(r, FileResult) and r.status == "ok"
    assert sha(src) == before
    assert r.bytes_in == src.stat().st_size and r.bytes_out == dst.stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = pydicom.dcmread(dst)  # a conformant file: preamble and File Meta, no force
    orig = read(src)
    assert pixel_bytes(out) == pixel_bytes(orig)
    if "SOPInstanceUID" in orig:
        assert out.SOPInstanceUID != orig.SOPInstanceUID
        assert out.SOPInstanceUID == r.sop_instance_uid
        assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    if orig.get("PatientName"):
        assert str(out.get("PatientName", "")) != str(orig.PatientName)
    assert out.get("PatientIdentityRemoved") == "YES"
    assert temp_files(tmp_path) == []


def test_bytes_equal_file(anon: Anonymizer, tmp_path: Path) -> None:
    src = subset_files(("CT_small.dcm",))[0]
    dst = tmp_path / "ct.dcm"
    anon.anonymize_file(src, dst)
    assert anon.anonymize_bytes(src.read_bytes()) == dst.read_bytes()
    assert anon.anonymize_bytes(bytearray(src.read_bytes())) == dst.read_bytes()


def test_bad_file_raises_and_leaves_no_output(anon: Anonymizer, tmp_path: Path) -> None:
    dst = tmp_path / "out" / "bad.dcm"
    with pytest.raises(InvalidDicomError) as info:
        anon.anonymize_file(damaged_file(), dst)
    assert info.value.offset is not None and "truncated" in info.value.message
    assert not dst.exists()
    assert temp_files(tmp_path) == []


def test_existing_output_not_overwritten_unless_asked(anon: Anonymizer, tmp_path: Path) -> None:
    src = subset_files(("MR_small.dcm",))[0]
    dst = tmp_path / "mr.dcm"
    dst.write_bytes(b"precious")
    with pytest.raises(OutputError):
        anon.anonymize_file(src, dst)
    assert dst.read_bytes() == b"precious"
    anon.anonymize_file(src, dst, overwrite=True)
    assert dst.read_bytes() == anon.anonymize_bytes(src.read_bytes())
    assert temp_files(tmp_path) == []


def test_paths_in_order_bad_file_does_not_stop_the_rest(anon: Anonymizer, tmp_path: Path) -> None:
    srcs = [*subset_files()[:6], damaged_file(), *subset_files()[6:10]]
    pairs = [(s, tmp_path / f"{i:02d}.dcm") for i, s in enumerate(srcs)]
    results = list(anon.anonymize_paths(pairs, jobs=2, batch_size=4))
    assert [r.src for r in results] == [str(s) for s, _ in pairs]
    assert [r.status for r in results] == ["ok"] * 6 + ["failed"] + ["ok"] * 4
    bad = results[6]
    assert bad.error_kind == "InvalidDicomError" and bad.offset is not None
    assert not (tmp_path / "06.dcm").exists()
    for (s, d), r in zip(pairs, results, strict=True):
        if r.ok:
            assert d.read_bytes() == anon.anonymize_bytes(Path(s).read_bytes())
            assert r.actions and sum(r.actions.values()) > 0


def test_paths_existing_outputs_fail_without_overwrite(anon: Anonymizer, tmp_path: Path) -> None:
    src = subset_files(("CT_small.dcm",))[0]
    (tmp_path / "a.dcm").write_bytes(b"keep me")
    [r] = anon.anonymize_paths([(src, tmp_path / "a.dcm")])
    assert r.status == "failed" and r.error_kind == "OutputError"
    assert (tmp_path / "a.dcm").read_bytes() == b"keep me"
    [r] = anon.anonymize_paths([(src, tmp_path / "a.dcm")], overwrite=True)
    assert r.ok and (tmp_path / "a.dcm").read_bytes() != b"keep me"


def test_non_dicom_is_skipped(anon: Anonymizer, tmp_path: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("hello, not DICOM at all: a plain text file of some length\n" * 4)
    [r] = anon.anonymize_paths([(txt, tmp_path / "out.txt")])
    assert r.status == "skipped" and r.error_kind == "NotDicom"
    assert not (tmp_path / "out.txt").exists()


def test_same_key_same_output_other_key_other_output(tmp_path: Path) -> None:
    src = subset_files(("CT_small.dcm",))[0].read_bytes()
    a1 = Anonymizer(key=b"one").anonymize_bytes(src)
    assert Anonymizer(key=b"one").anonymize_bytes(src) == a1
    assert Anonymizer(key=b"two").anonymize_bytes(src) != a1


def test_module_shortcuts(tmp_path: Path) -> None:
    src = subset_files(("CT_small.dcm",))[0]
    expected = Anonymizer(key=b"k").anonymize_bytes(src.read_bytes())
    assert dicomscrub.anonymize_bytes(src.read_bytes(), key=b"k") == expected
    r = dicomscrub.anonymize_file(src, tmp_path / "a.dcm", key=b"k")
    assert r.ok and (tmp_path / "a.dcm").read_bytes() == expected
    tree = tmp_path / "in"
    tree.mkdir()
    shutil.copyfile(src, tree / "ct.dcm")
    rep = dicomscrub.anonymize_tree(tree, tmp_path / "out", key=b"k", progress=False)
    assert rep.ok == 1 and (tmp_path / "out" / "ct.dcm").read_bytes() == expected


def test_keep_all_profile_copies_bytes(tmp_path: Path) -> None:
    src = subset_files(("rtplan.dcm",))[0]
    anon = Anonymizer(Profile.keep_all(), key=b"k")
    assert not anon.changes_anything
    anon.anonymize_file(src, tmp_path / "same.dcm")
    assert (tmp_path / "same.dcm").read_bytes() == src.read_bytes()


def test_import_is_lazy_and_exports() -> None:
    for name in ("Anonymizer", "FileResult", "Report", "anonymize_bytes", "anonymize_file",
                 "anonymize_tree"):  # fmt: skip
        assert name in dicomscrub.__all__ and getattr(dicomscrub, name) is not None
    with pytest.raises(AttributeError):
        _ = dicomscrub.no_such_name  # type: ignore[attr-defined]
    code = "import sys, dicomscrub; print('dicomscrub._core' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(dicomscrub.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
