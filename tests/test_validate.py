"""``verify`` and ``scan`` (dicomscrub.validate): they pass on real outputs of the Rust engine and
catch a planted difference (top level and inside sequences), an invalid output and a planted
leak (in a public text element, a private element, bytes pydicom does not show), in the library
and through the command line."""

from __future__ import annotations

import json
import shutil
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import click
import pydicom
import pydicom.data
import pytest
from click.testing import CliRunner
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

import dicomscrub
from dicomscrub import Profile, _core, validate
from dicomscrub.validate import is_trivial, pair_files, sample_pairs, scan, verify

TEST_KEY = b"dicomscrub test key: not a secret"

#: pydicom test files: explicit/implicit/big endian/deflated/encapsulated/no File Meta, with
#: sequences up to depth 3 (test-SR), person names in and out of sequences, private elements
FILES = [
    "CT_small.dcm",
    "rtplan.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "image_dfl.dcm",
    "JPEG2000.dcm",
    "ExplVR_LitEndNoMeta.dcm",
    "SC_rgb_small_odd.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
]


_TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def get_testdata_file(name: str) -> str:
    """A file of pydicom's own test files (found locally: pydicom's helper may download)."""
    return str(next(p for p in sorted(_TEST_FILES.rglob(name)) if p.is_file()))


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def _save(ds: Dataset, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=False)


def _make(tmp_path: Path, profile: Profile, files: list[str] = FILES) -> tuple[Path, Path]:
    """SRC holds copies of ``files``; DST their Rust outputs under ``profile``."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    plan = _core.Plan(profile.to_json(), TEST_KEY)
    for name in files:
        sub = "a" if name < "M" else "b/c"  # a small tree
        s, d = src / sub / name, dst / sub / name
        s.parent.mkdir(parents=True, exist_ok=True)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(get_testdata_file(name), s)
        d.write_bytes(_core.anonymize_bytes(s.read_bytes(), plan))
    return src, dst


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    return _make(tmp_path, Profile.basic())


def _out(dst: Path, name: str) -> Path:
    return next(dst.rglob(name))


def _failing(report: validate.VerifyReport | validate.ScanReport) -> list[validate.FileCheck]:
    return [f for f in report.files if f.status == "failed"]


# ---------------------------------------------------------------------------------------------
# Real outputs pass
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [[], ["clean-descriptors", "retain-long-modified-dates", "retain-patient-characteristics"]],
    ids=["basic", "options"],
)
def test_verify_passes_on_rust_outputs(tmp_path: Path, options: list[str]) -> None:
    profile = Profile.basic(options)
    src, dst = _make(tmp_path, profile)
    report = verify(src, dst, profile, TEST_KEY)
    assert report.ok, "\n".join(line for f in report.files for line in f.lines())
    assert report.checked == len(FILES) and report.total == len(FILES)
    assert report.differences == report.problems == report.findings == 0
    assert scan(src, dst, profile).ok


def test_verify_one_file_and_the_package_alias(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    s, d = next(src.rglob("CT_small.dcm")), _out(dst, "CT_small.dcm")
    report = dicomscrub.verify(s, d, Profile.basic(), TEST_KEY)
    assert report.ok and report.checked == 1
    assert dicomscrub.scan(s, d).ok


def test_keep_all_output_must_be_the_input(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    s = next(src.rglob("CT_small.dcm"))
    assert verify(s, s, Profile.keep_all(), TEST_KEY).ok
    report = verify(s, _out(dst, "CT_small.dcm"), Profile.keep_all(), TEST_KEY)
    assert [p.kind for p in report.files[0].problems] == ["bytes"]


def test_identifying_values_follow_the_profile() -> None:
    ds = _read(Path(get_testdata_file("CT_small.dcm")))
    basic = validate.identifying_values(ds, Profile.basic())
    kept = validate.identifying_values(
        ds, Profile.basic(["retain-institution-identity", "retain-uids"])
    )
    assert ("institution", "JFK IMAGING CENTER", "InstitutionName") in basic
    assert ("person-name", "CompressedSamples", "PatientName") in basic
    assert ("patient-id", "ABCD1234", "OtherPatientIDsSequence[0].PatientID") in basic
    assert any(c == "uid" for c, _v, _s in basic)
    assert not any(c in ("institution", "uid") for c, _v, _s in kept)


def test_trivial_values() -> None:
    written = frozenset({"anonymized", "anon"})
    for value in ["", "  ", "AB", "^^", "---", "123", "UNKNOWN", "Anonymous^Patient", "ANON",
                  "Enter text", "SIEMENS", "n/a", "S R", "de-identified"]:  # fmt: skip
        assert is_trivial(value, written), value
    for value in ["Doe^John", "1234", "ID1", "Jörg", "山田", "General Hospital"]:
        assert not is_trivial(value, written), value


# ---------------------------------------------------------------------------------------------
# Planted differences and invalid outputs
# ---------------------------------------------------------------------------------------------


def _diff_paths(report: validate.VerifyReport) -> dict[str, validate.reference.Difference]:
    return {d.path: d for f in report.files for d in f.differences}


def test_planted_difference_top_level(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "CT_small.dcm")
    ds = _read(out)
    ds.Modality = "MR"
    _save(ds, out)
    report = verify(src, dst, Profile.basic(), TEST_KEY)
    assert not report.ok and report.failed == 1
    d = _diff_paths(report)["Modality"]
    assert (d.kind, d.expected, d.found) == ("value", "'CT'", "'MR'")


def test_planted_difference_inside_sequences(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "rtplan.dcm")
    ds = _read(out)
    ds.BeamSequence[0].ControlPointSequence[0].GantryAngle = 33.5  # depth 2
    del ds.FractionGroupSequence[0].NumberOfBeams  # depth 1, missing
    ds.BeamSequence[0].BeamName = "Extra"  # depth 1, a value
    _save(ds, out)
    diffs = _diff_paths(verify(src, dst, Profile.basic(), TEST_KEY))
    path = "BeamSequence[0].ControlPointSequence[0].GantryAngle"
    assert (diffs[path].kind, diffs[path].expected, diffs[path].found) == (
        "value",
        "'0.0'",
        "'33.5'",
    )
    assert diffs["FractionGroupSequence[0].NumberOfBeams"].kind == "missing"
    assert diffs["BeamSequence[0].BeamName"].found == "'Extra'"
    assert len(diffs) == 3


def test_planted_difference_at_depth_3(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "test-SR.dcm")
    ds = _read(out)
    item = ds.ContentSequence[4].ContentSequence[1].ContentSequence[0]
    item.RelationshipType = "CONTAINS"
    _save(ds, out)
    diffs = _diff_paths(verify(src, dst, Profile.basic(), TEST_KEY))
    assert list(diffs) == [
        "ContentSequence[4].ContentSequence[1].ContentSequence[0].RelationshipType"
    ]


def test_meta_inconsistency_is_caught(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "CT_small.dcm")
    ds = _read(out)
    ds.file_meta.MediaStorageSOPInstanceUID = "2.25.1"
    _save(ds, out)
    report = verify(src, dst, Profile.basic(), TEST_KEY)
    problems = [p.message for f in report.files for p in f.problems]
    assert any("Media Storage SOP Instance UID '2.25.1' differs" in m for m in problems)
    assert "file_meta.MediaStorageSOPInstanceUID" in _diff_paths(report)


def test_wrong_group_length_is_caught(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "CT_small.dcm")
    data = bytearray(out.read_bytes())
    assert data[132:136] == b"\x02\x00\x00\x00"  # (0002,0000) UL, 4 bytes at 140
    real = struct.unpack_from("<I", data, 140)[0]
    struct.pack_into("<I", data, 140, real + 2)
    out.write_bytes(bytes(data))
    report = verify(src, dst, Profile.basic(), TEST_KEY)
    problems = [p for f in report.files for p in f.problems]
    assert [p.kind for p in problems] == ["meta"]
    assert f"group length is {real + 2} but the group holds {real} bytes" in problems[0].message


def test_changed_pixel_data_is_caught(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "MR_small_bigendian.dcm")
    ds = _read(out)
    pixels = bytearray(ds.PixelData)
    pixels[100] ^= 0xFF
    ds.PixelData = bytes(pixels)
    _save(ds, out)
    report = verify(src, dst, Profile.basic(), TEST_KEY)
    kinds = [p.kind for f in report.files for p in f.problems]
    assert kinds == ["pixel-data"]
    assert "PixelData" in _diff_paths(report)


def test_missing_unreadable_and_not_dicom(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    _out(dst, "CT_small.dcm").unlink()
    _out(dst, "rtplan.dcm").write_bytes(b"not DICOM at all")
    (src / "a" / "notes.txt").write_text("a text file, not DICOM\n")
    report = verify(src, dst, Profile.basic(), TEST_KEY)
    by_name = {Path(f.src).name: f for f in report.files}
    assert [p.kind for p in by_name["CT_small.dcm"].problems] == ["missing"]
    assert [p.kind for p in by_name["rtplan.dcm"].problems] == ["unreadable"]
    assert by_name["notes.txt"].status == "skipped"
    assert report.failed == 2 and report.skipped == 1


def test_wrong_key_fails_everywhere(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    report = verify(src, dst, Profile.basic(), b"another key")
    assert report.failed == len(FILES)
    assert any(d.path == "SOPInstanceUID" for f in report.files for d in f.differences)


# ---------------------------------------------------------------------------------------------
# Planted leaks
# ---------------------------------------------------------------------------------------------


def _plant(dst: Path, name: str, edit: Callable[[Dataset], None]) -> None:
    out = _out(dst, name)
    ds = _read(out)
    edit(ds)
    _save(ds, out)


def _hits(report: validate.ScanReport | validate.VerifyReport) -> set[tuple[str, str, str]]:
    return {(f.category, f.value, f.where) for c in report.files for f in c.findings}


def test_leak_in_image_comments(tree: tuple[Path, Path]) -> None:
    src, dst = tree

    def edit(ds: Dataset) -> None:
        ds.ImageComments = "seen by Dr Moriarty for lestrade"

    _plant(dst, "SC_rgb_small_odd.dcm", edit)
    report = scan(src, dst)
    assert not report.ok and report.failed == 1
    assert _hits(report) == {
        ("person-name", "Moriarty", "ImageComments"),  # ReferringPhysicianName's family name
        ("person-name", "Lestrade", "ImageComments"),  # PatientName's, another case
    }
    assert _hits(verify(src, dst, Profile.basic(), TEST_KEY)) == _hits(report)


def test_leak_in_private_elements_at_depth(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    name = str(_read(Path(get_testdata_file("CT_small.dcm"))).PatientName)

    def edit(ds: Dataset) -> None:
        block = ds.private_block(0x0011, "LEAKY CREATOR", create=True)
        block.add_new(0x01, "LO", name)
        item = ds.ReferencedImageSequence[0] if "ReferencedImageSequence" in ds else Dataset()
        item.add(DataElement(0x00131010, "UN", b"1CT1 "))  # PatientID, read as bytes
        if "ReferencedImageSequence" not in ds:
            ds.ReferencedImageSequence = [item]

    _plant(dst, "CT_small.dcm", edit)
    hits = _hits(scan(src, dst))
    assert ("person-name", name, "(0011,1001)") in hits
    assert ("patient-id", "1CT1", "ReferencedImageSequence[0].(0013,1010)") in hits


def test_leak_in_bytes_pydicom_does_not_show(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    out = _out(dst, "image_dfl.dcm")  # deflated: the data set is searched inflated
    data = bytearray(out.read_bytes())
    uid = "1.3.6.1.4.1.5962.1.2.0.977067310.6001.0"  # the source's Study Instance UID
    data[10 : 10 + len(uid)] = uid.encode()  # in the preamble
    out.write_bytes(bytes(data))
    assert _hits(scan(src, dst)) == {("uid", uid, "bytes@0xA")}


def test_leak_of_a_non_ascii_name() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    needles = {v for _c, v, _s in validate.identifying_values(ds)}
    assert {"Yamada", "Tarou", "山田", "太郎", "やまだ", "たろう"} <= needles
    out = Dataset()
    out.SpecificCharacterSet = "ISO_IR 192"
    out.StudyDescription = "検査 山田太郎様"
    found = validate._scan_output(
        validate._needles(ds, Profile.basic().to_plan(), frozenset()), b"", out, ["utf_8"]
    )
    assert {(f.value, f.where) for f in found} == {
        ("山田", "StudyDescription"),
        ("太郎", "StudyDescription"),
    }


def test_dicomdir_is_scanned_not_compared(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    d = Path(get_testdata_file("DICOMDIR"))
    shutil.copyfile(d, src / "DICOMDIR")
    plan = _core.Plan(Profile.basic().to_json(), TEST_KEY)
    (dst / "DICOMDIR").write_bytes(_core.anonymize_bytes(d.read_bytes(), plan))
    report = verify(src, dst, Profile.basic(), TEST_KEY)
    (check,) = report.files
    assert check.note is not None and "DICOMDIR" in check.note
    assert not check.differences
    # the pydicom test tree names its folders after the Patient ID, and the DICOMDIR's
    # Referenced File IDs (kept by the basic profile) carry those folder names
    assert {(f.category, f.value) for f in check.findings} == {("patient-id", "77654033")}


def test_paths_are_searched_on_request(tmp_path: Path) -> None:
    src, dst = _make(tmp_path, Profile.basic(), ["CT_small.dcm"])
    (dst / "a" / "CT_small.dcm").rename(dst / "a" / "1CT1.dcm")
    (src / "a" / "CT_small.dcm").rename(src / "a" / "1CT1.dcm")
    assert scan(src, dst).ok
    report = scan(src, dst, paths=True)
    assert _hits(report) == {("patient-id", "1CT1", "path 'a/1CT1.dcm'")}


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------


def test_sampling_is_deterministic(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    first = verify(src, dst, Profile.basic(), TEST_KEY, sample=4)
    again = verify(src, dst, Profile.basic(), TEST_KEY, sample=4)
    names = [f.src for f in first.files]
    assert names == [f.src for f in again.files] and len(names) == 4
    assert first.total == len(FILES) and first.sample == 4
    everything = [str(s) for s, _d in pair_files(src, dst)]
    assert set(names) <= set(everything)
    assert names == [n for n in everything if n in names]  # in tree order
    # a larger sample holds the smaller one: the ranks do not depend on N
    assert set(names) <= {f.src for f in verify(src, dst, None, TEST_KEY, sample=7).files}
    pairs = pair_files(src, dst)
    seeds = {tuple(sample_pairs(pairs, 4, src, seed)) for seed in range(5)}
    assert len(seeds) > 1
    assert sample_pairs(pairs, 100, src) == pairs


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _cli() -> click.Group:
    cli = pytest.importorskip("dicomscrub.cli")
    if "verify" in cli.cli.commands:
        return cli.cli
    group = click.Group()
    validate.register(group)
    return group


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_bytes(TEST_KEY + b"\n")
    return path


def test_cli_verify(tree: tuple[Path, Path], key_file: Path) -> None:
    src, dst = tree
    runner = CliRunner()
    ok = runner.invoke(_cli(), ["verify", str(src), str(dst), "--key-file", str(key_file)])
    assert ok.exit_code == 0, ok.output
    assert f"verified {len(FILES)} file(s): {len(FILES)} ok, 0 failed" in ok.output

    def edit(ds: Dataset) -> None:
        ds.BeamSequence[0].BeamName = "Changed"

    _plant(dst, "rtplan.dcm", edit)
    args = ["verify", str(src), str(dst), "--key-file", str(key_file), "--json"]
    bad = runner.invoke(_cli(), args)
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    (failed,) = report["files"]
    assert failed["differences"] == [
        {
            "path": "BeamSequence[0].BeamName",
            "expected": "'Field 1'",
            "found": "'Changed'",
            "kind": "value",
        }
    ]
    sampled = runner.invoke(
        _cli(), ["verify", str(src), str(dst), "--key-file", str(key_file), "--sample", "2"]
    )
    assert "(a sample of 10)" in sampled.output


def test_cli_scan_catches_a_planted_leak(tree: tuple[Path, Path]) -> None:
    src, dst = tree
    runner = CliRunner()
    clean = runner.invoke(_cli(), ["scan", str(src), str(dst)])
    assert clean.exit_code == 0, clean.output
    assert "0 PHI hit(s)" in clean.output

    def edit(ds: Dataset) -> None:
        block = ds.private_block(0x0029, "LEAKY", create=True)
        block.add_new(0x10, "LT", "Patient: CompressedSamples^MR1")

    _plant(dst, "MR_small_implicit.dcm", edit)  # implicit VR: the private LT reads as UN
    leak = runner.invoke(_cli(), ["scan", str(src), str(dst)])
    assert leak.exit_code == 1
    assert "PHI person-name 'CompressedSamples^MR1' (from PatientName) found in (0029,1010)" in (
        leak.output
    )
    verified = runner.invoke(
        _cli(), ["verify", str(src), str(dst), "--key-file", str(Path(src).parent / "nokey")]
    )
    assert verified.exit_code == 2  # an unreadable key file is a usage error


def test_cli_usage_errors(tree: tuple[Path, Path], key_file: Path) -> None:
    src, dst = tree
    runner = CliRunner()
    result = runner.invoke(
        _cli(), ["verify", str(src), str(dst), "--key-file", str(key_file), "--option", "nope"]
    )
    assert result.exit_code == 2
    result = runner.invoke(_cli(), ["scan", str(src), str(dst), "--profile", "missing.toml"])
    assert result.exit_code == 2
