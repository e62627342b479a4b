"""Security checks of the bulk engine (issue 7): nothing is written outside DST (DICOMDIR File IDs
with ``..`` or absolute components, symbolic links in DST, layout names built from hostile
values, symbolic links in SRC), and reports hold identifiers only in pseudonymized form; the
linkage file, when asked for, is mode 0600 and kept out of DST."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import stat
import warnings
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from treekit import DAMAGED, damaged_file, files_under, subset_files

from dicomscrub import Anonymizer, Profile
from dicomscrub.cli import EXIT_OK, EXIT_USAGE, cli
from dicomscrub.dicomdir import safe_file_id
from dicomscrub.errors import OutputError
from dicomscrub.layout import LayoutNamer
from dicomscrub.tree import UNSAFE_PATH

KEY = b"test key of test_security"
LAYOUT = "patient/study/series"
FEW = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_small_odd.dcm", "rtdose.dcm")
IDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@pytest.fixture(scope="module")
def anon() -> Anonymizer:
    return Anonymizer(Profile.basic(), key=KEY)


def read(p: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(p, force=True, stop_before_pixels=True)


def jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]


def small_tree(root: Path, folders: dict[str, tuple[str, ...]]) -> Path:
    """``{folder: (corpus file names...)}`` copied under ``root``."""
    by_name = {p.name: p for p in subset_files()}
    for folder, names in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(by_name[n], root / folder / n)
    return root


def snapshot(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """relative path -> sha256 (or link target) of everything under ``root`` but ``skip``."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = [x for x in dirnames if d / x not in skip]
        for name in dirnames + filenames:
            p = d / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def quarantine(dst: Path) -> list[dict]:
    return jsonl(dst / ".dicomscrub" / "quarantine.jsonl")


# -- symbolic links in DST -----------------------------------------------------------------------


def test_dst_folder_linked_outside_is_refused_mirror(anon: Anonymizer, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "src", {"a": FEW[:2], "b": FEW[2:4]})
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.dcm"
    victim.write_bytes(b"not to be touched")
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "a").symlink_to(outside, target_is_directory=True)  # a folder of DST leads out
    (dst / "b").mkdir()
    (dst / "b" / FEW[2]).symlink_to(victim)  # an output name that is a link leading out
    before = snapshot(tmp_path, skip=(dst,))
    for overwrite in (False, True):
        rep = anon.anonymize_tree(src, dst, progress=False, overwrite=overwrite)
        assert snapshot(tmp_path, skip=(dst,)) == before  # nothing written outside DST
        assert (rep.ok, rep.failed) == (1, 3)
        q = {Path(x["src"]).relative_to(src).as_posix(): x for x in quarantine(dst)}
        assert set(q) == {f"a/{FEW[0]}", f"a/{FEW[1]}", f"b/{FEW[2]}"}
        for x in q.values():
            assert x["error_kind"] == UNSAFE_PATH
            assert "outside the destination" in x["reason"] and str(outside) in x["reason"]
        lines = [x for x in jsonl(dst / ".dicomscrub" / "report.jsonl") if x["type"] == "file"]
        assert {x["error_kind"] for x in lines if x["status"] == "failed"} == {UNSAFE_PATH}
        assert (dst / "b" / FEW[3]).is_file() and not (dst / "b" / FEW[3]).is_symlink()
        assert (dst / "b" / FEW[2]).is_symlink()  # left as it was


def test_dst_folder_linked_outside_is_refused_layout(anon: Anonymizer, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "src", {"x": FEW})
    probe = anon.anonymize_tree(src, tmp_path / "probe", progress=False, layout=LAYOUT)
    assert probe.ok == len(FEW)
    patients = sorted(p.name for p in (tmp_path / "probe").iterdir() if p.name != ".dicomscrub")
    assert len(patients) >= 2
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / patients[0]).symlink_to(outside, target_is_directory=True)
    before = snapshot(tmp_path, skip=(dst,))
    rep = anon.anonymize_tree(src, dst, progress=False, layout=LAYOUT)
    assert snapshot(tmp_path, skip=(dst,)) == before
    refused = [x for x in quarantine(dst) if x["error_kind"] == UNSAFE_PATH]
    expected = [p for p in (tmp_path / "probe").rglob("*.dcm") if p.parts[-4] == patients[0]]
    assert len(refused) == rep.failed == len(expected) >= 1
    assert rep.ok == len(FEW) - len(expected)
    assert all(patients[0] in x["reason"] for x in refused)
    staging = dst / ".dicomscrub" / "staging"
    assert not staging.exists() or not any(staging.iterdir())  # refused outputs are deleted


def test_state_folder_linked_outside_refuses_the_run(anon: Anonymizer, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "src", {"x": FEW[:1]})
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / ".dicomscrub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputError, match="outside the destination"):
        anon.anonymize_tree(src, dst, progress=False)
    assert not any(outside.iterdir())
    (dst / ".dicomscrub").unlink()
    (dst / ".dicomscrub").mkdir()
    (dst / ".dicomscrub" / "report.jsonl").symlink_to(outside / "report")
    with pytest.raises(OutputError, match="symbolic link"):
        anon.anonymize_tree(src, dst, progress=False)
    assert not any(outside.iterdir())


# -- DICOMDIR File IDs -------------------------------------------------------------------------


def write_dicomdir(path: Path, file_ids: list[list[str]]) -> None:
    """A minimal DICOMDIR whose IMAGE records reference ``file_ids``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns: such File IDs are not valid CS values
        _write_dicomdir(path, file_ids)


def _write_dicomdir(path: Path, file_ids: list[list[str]]) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.FileSetID = ""
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    records = []
    for fid in file_ids:
        r = Dataset()
        r.OffsetOfTheNextDirectoryRecord = 0
        r.RecordInUseFlag = 0xFFFF
        r.OffsetOfReferencedLowerLevelDirectoryEntity = 0
        r.DirectoryRecordType = "IMAGE"
        r.ReferencedFileID = fid if len(fid) > 1 else fid[0]
        records.append(r)
    ds.DirectoryRecordSequence = records
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(
    "bad",
    [["..", "..", "OUTSIDE"], ["/tmp/OUTSIDE"], ["IM", "../../../OUTSIDE"], ["C:", "OUTSIDE"]],
    ids=["dotdot", "absolute", "separator", "drive"],
)
def test_dicomdir_file_ids_leading_outside_are_refused(
    anon: Anonymizer, tmp_path: Path, bad: list[str]
) -> None:
    src = small_tree(tmp_path / "src", {"CD": ()})
    shutil.copyfile(subset_files(("CT_small.dcm",))[0], src / "CD" / "IM1")
    write_dicomdir(src / "CD" / "DICOMDIR", [["IM1"], bad])
    shutil.copyfile(subset_files(("MR_small.dcm",))[0], tmp_path / "OUTSIDE")
    dst = tmp_path / "out"
    before = snapshot(tmp_path, skip=(dst,))
    rep = anon.anonymize_tree(src, dst, progress=False)
    assert snapshot(tmp_path, skip=(dst,)) == before
    assert rep.ok == 1 and rep.failed == 1  # the run went on: IM1 is anonymized
    assert (dst / "CD" / "IM1").is_file()
    assert not (dst / "CD" / "DICOMDIR").exists()
    (d,) = rep.dicomdirs
    assert d.status == "failed" and d.error_kind == UNSAFE_PATH
    assert d.note == "dicomdir-not-copied" and "outside the file-set" in (d.message or "")
    (q,) = quarantine(dst)
    assert q["src"].endswith("DICOMDIR") and q["error_kind"] == UNSAFE_PATH
    assert "refused" in q["reason"]
    summary = jsonl(dst / ".dicomscrub" / "report.jsonl")[-1]
    assert summary["dicomdirs"][0]["note"] == "dicomdir-not-copied"


def test_safe_file_id() -> None:
    assert safe_file_id(("PT000000", "ST000000", "IM1"))
    assert safe_file_id(("lower", "case"))  # not valid, but harmless
    for bad in (("..",), ("A", ".."), ("/etc",), ("A/B",), ("A\\B",), ("C:",), ("A\x00",), ()):
        assert not safe_file_id(bad), bad


def test_dicomdir_in_a_folder_linked_outside_is_refused(anon: Anonymizer, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "src", {"CD": ()})
    shutil.copyfile(subset_files(("CT_small.dcm",))[0], src / "top.dcm")
    write_dicomdir(src / "CD" / "DICOMDIR", [["IM1"]])
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "CD").symlink_to(outside, target_is_directory=True)
    rep = anon.anonymize_tree(src, dst, progress=False)
    assert not any(outside.iterdir())
    refused = [d for d in rep.dicomdirs if d.error_kind == UNSAFE_PATH]
    assert len(refused) == 1 and "outside the destination" in (refused[0].message or "")


# -- symbolic links in SRC ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["mirror", LAYOUT])
def test_source_links_pointing_outside(anon: Anonymizer, tmp_path: Path, layout: str) -> None:
    """A link to a file outside SRC is followed (its output takes the link's place in DST, as a
    regular file); a link to a folder is not entered. Nothing is written outside DST."""
    elsewhere = small_tree(tmp_path / "elsewhere", {".": FEW[:1], "folder": FEW[1:2]})
    src = small_tree(tmp_path / "src", {".": FEW[2:3]})
    (src / "link.dcm").symlink_to(elsewhere / FEW[0])
    (src / "linkdir").symlink_to(elsewhere / "folder", target_is_directory=True)
    dst = tmp_path / "out"
    before = snapshot(tmp_path, skip=(dst,))
    rep = anon.anonymize_tree(src, dst, progress=False, layout=layout)
    assert snapshot(tmp_path, skip=(dst,)) == before
    assert (rep.ok, rep.failed, rep.skipped) == (2, 0, 0)
    lines = jsonl(dst / ".dicomscrub" / "report.jsonl")
    outs = [Path(x["dst"]) for x in lines if x["type"] == "file" and x["dst"]]
    for out in outs:
        assert out.is_file() and not out.is_symlink()
        assert os.path.realpath(out).startswith(str(dst.resolve()) + os.sep)
    if layout == "mirror":
        assert (dst / "link.dcm") in outs and not (dst / "linkdir").exists()
    original = read(elsewhere / FEW[0]).PatientID
    assert all(read(o).PatientID != original for o in outs)


# -- layout names from hostile values ----------------------------------------------------------

HOSTILE = ["../../etc", "/etc/passwd", "..", ".", ".hidden", "a\x00b", "a/b/../..", "..\\..\\x"]


def test_layout_components_are_sanitized() -> None:
    replaced = Profile.from_rules([{"keyword": "PatientID", "action": "replace", "value": "X"}])
    for profile in (replaced, Profile.keep_all()):
        namer = LayoutNamer(profile.to_plan(), KEY)
        for v in HOSTILE:
            ids = {"PatientID": v, "StudyInstanceUID": v, "SeriesInstanceUID": v}
            rel = namer.relpath(ids, v, "src/rel.dcm")
            parts = rel.split(os.sep)
            assert len(parts) == 4, (v, rel)
            for c in parts:
                assert c and c not in (".", "..") and not c.startswith("."), (v, rel)
                assert "\x00" not in c and "/" not in c and "\\" not in c, (v, rel)
            root = "/dst"
            assert os.path.normpath(os.path.join(root, rel)).startswith(root + os.sep)


@pytest.mark.parametrize("how", ["keep-all", "replace"])
def test_layout_with_a_hostile_patient_id_stays_inside(tmp_path: Path, how: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ds = pydicom.dcmread(subset_files(("CT_small.dcm",))[0])
    ds.PatientID = "../../etc"
    ds.save_as(src / "evil.dcm")
    profile = (
        Profile.keep_all()
        if how == "keep-all"
        else Profile.from_rules(
            [{"keyword": "PatientID", "action": "replace", "value": "../../etc"}]
        )
    )
    dst = tmp_path / "a" / "b" / "out"
    before = snapshot(tmp_path, skip=(dst,))
    rep = Anonymizer(profile, key=KEY).anonymize_tree(src, dst, progress=False, layout=LAYOUT)
    assert rep.ok == 1
    assert snapshot(tmp_path, skip=(dst,)) == before
    (rel,) = files_under(dst)
    patient = Path(rel).parts[0]
    assert ".." not in Path(rel).parts and "/" not in patient and not patient.startswith(".")
    if how == "keep-all":  # a kept value never names a folder (the core copies the file
        # unparsed, so there is no value at all; were there one, its keyed pseudonym K-...)
        assert patient.startswith(("K-", "NO-")) and "etc" not in patient
    else:
        assert patient == "_.._etc"
    assert read(dst / rel).PatientID == "../../etc"


# -- reports and the linkage file ----------------------------------------------------------------


def identifiers(files: list[Path]) -> set[str]:
    """Patient IDs, names (whole and their longer parts) and UIDs of source files."""
    out: set[str] = set()
    for p in files:
        ds = read(p)
        for kw in IDS:
            v = str(ds.get(kw, "") or "").strip()
            if len(v) >= 4:
                out.add(v)
        name = str(ds.get("PatientName", "") or "")
        if name.strip("^ "):
            out.add(name)
        out |= {t for t in re.split(r"[^A-Za-z0-9]+", name) if len(t) >= 5}
    return out - {"Anonymous", "Anonymized"}


def found(values: set[str], blob: bytes) -> set[str]:
    """The values occurring in ``blob`` as whole tokens (not inside a longer number or word)."""
    return {
        v
        for v in values
        if re.search(rb"(?<![A-Za-z0-9])" + re.escape(v.encode()) + rb"(?![A-Za-z0-9])", blob)
    }


@pytest.mark.parametrize(
    ("profile", "layout"),
    [
        (Profile.basic(), "mirror"),
        (Profile.basic(["retain-uids"]), LAYOUT),
        (Profile.keep_all(), LAYOUT),
    ],
    ids=["basic", "retain-uids", "keep-all"],
)
def test_reports_hold_no_original_identifier(tmp_path: Path, profile: Profile, layout: str) -> None:
    names = tuple(p.name for p in subset_files())[:12]
    src = small_tree(tmp_path / "src", {"s1": names[:6], "s2": names[6:]})
    (src / "bad").mkdir()
    shutil.copyfile(damaged_file(), src / "bad" / DAMAGED)
    values = identifiers([p for p in src.rglob("*") if p.is_file()])
    assert {"1CT1", "4MR1", "CompressedSamples^CT1", "Phantom30sep"} <= values
    dst = tmp_path / "out"
    linkage = tmp_path / "private" / "linkage.jsonl"
    anon = Anonymizer(profile, key=KEY)
    rep = anon.anonymize_tree(src, dst, progress=False, layout=layout, linkage=linkage)
    assert rep.failed == 1 and rep.ok == len(names)
    state = dst / ".dicomscrub"
    assert {"report.jsonl", "quarantine.jsonl", "journal.sqlite"} <= {
        p.name for p in state.iterdir()
    }
    assert quarantine(dst)  # the damaged file
    for p in state.iterdir():  # report, quarantine, journal (and its WAL, if any)
        if p.is_file():
            assert not found(values, p.read_bytes()), p.name
    paths = "\n".join(files_under(dst)).encode()
    assert not found(values, paths)
    # the check finds them where they are: in the linkage file (the user asked for it)
    assert {"1CT1", "4MR1"} <= found(values, linkage.read_bytes())
    # the reports show pseudonymized IDs, the linkage maps the outputs' real values
    rows = {r["dst"]: r for r in jsonl(linkage)}
    for x in jsonl(state / "report.jsonl"):
        if x["type"] == "file" and x["status"] == "ok":
            out = read(Path(x["dst"]))
            pid = rows[x["dst"]]["pseudonymized"].get("PatientID") or ""
            assert pid == str(out.get("PatientID") or "")
            if x["ids"].get("PatientID"):
                kept = profile.name == "keep-all"
                assert x["ids"]["PatientID"].startswith("K-") == kept


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_linkage_file(anon: Anonymizer, tmp_path: Path, ext: str) -> None:
    src = small_tree(tmp_path / "src", {"a": FEW[:3], "b": FEW[3:]})
    (src / "notes.txt").write_text("not DICOM\n")
    linkage = tmp_path / "private" / f"linkage.{ext}"
    linkage.parent.mkdir()
    linkage.write_text("an older file, world-readable\n")
    os.chmod(linkage, 0o644)
    dst = tmp_path / "out"
    for _ in range(2):  # the second run resumes every file: they are all in its linkage too
        rep = anon.anonymize_tree(src, dst, progress=False, linkage=linkage)
        assert rep.ok == len(FEW) and rep.linkage_path == str(linkage)
        assert stat.S_IMODE(os.stat(linkage).st_mode) == 0o600
        if ext == "csv":
            with open(linkage, newline="", encoding="utf-8") as f:
                table = list(csv.DictReader(f))
            rows = [
                {"src": r["src"], "dst": r["dst"],
                 "original": {k: r[f"original_{k}"] for k in IDS if r[f"original_{k}"]},
                 "pseudonymized": {k: r[f"pseudonymized_{k}"] for k in IDS
                                   if r[f"pseudonymized_{k}"]}}
                for r in table
            ]  # fmt: skip
        else:
            rows = jsonl(linkage)
        assert len(rows) == len(FEW)
        for r in rows:
            s, o = read(Path(r["src"])), read(Path(r["dst"]))
            assert Path(r["dst"]) == dst / Path(r["src"]).relative_to(src)
            assert r["original"] == {k: str(s.get(k)) for k in IDS if s.get(k)}
            assert r["pseudonymized"] == {k: str(o.get(k)) for k in IDS if o.get(k)}
            assert r["original"]["PatientID"] != r["pseudonymized"]["PatientID"]
            assert r["original"]["SOPInstanceUID"] != r["pseudonymized"]["SOPInstanceUID"]
    assert [p.name for p in linkage.parent.iterdir()] == [linkage.name]  # no temporary left


def test_linkage_refused_inside_dst(anon: Anonymizer, tmp_path: Path) -> None:
    src = small_tree(tmp_path / "src", {"a": FEW[:1]})
    dst = tmp_path / "out"
    (tmp_path / "alias").symlink_to(dst, target_is_directory=True)  # DST under another name
    for inside in (dst / "linkage.csv", dst / ".dicomscrub" / "l.csv", tmp_path / "alias" / "l"):
        with pytest.raises(ValueError, match="inside the destination"):
            anon.anonymize_tree(src, dst, progress=False, linkage=inside)
        assert not inside.exists()
    forced = dst / "linkage.csv"
    rep = anon.anonymize_tree(src, dst, progress=False, linkage=forced, linkage_in_dst=True)
    assert rep.ok == 1 and stat.S_IMODE(os.stat(forced).st_mode) == 0o600


def test_cli_linkage(tmp_path: Path) -> None:
    src = small_tree(tmp_path / "src", {"a": FEW[:2]})
    key = tmp_path / "key"
    key.write_bytes(KEY)
    dst = tmp_path / "out"
    runner = CliRunner()
    base = ["run", str(src), str(dst), "--key-file", str(key), "--no-progress"]
    r = runner.invoke(cli, [*base, "--linkage", str(dst / "l.csv")])
    assert r.exit_code == EXIT_USAGE and "inside the destination" in r.output
    assert not (dst / "l.csv").exists()
    linkage = tmp_path / "l.csv"
    r = runner.invoke(cli, [*base, "--linkage", str(linkage)])
    assert r.exit_code == EXIT_OK, r.output
    assert "linkage" in r.output and stat.S_IMODE(os.stat(linkage).st_mode) == 0o600
    assert len(linkage.read_text().splitlines()) == 3
    r = runner.invoke(cli, [*base, "--linkage", str(dst / "l.csv"), "--allow-linkage-in-dst"])
    assert r.exit_code == EXIT_OK and (dst / "l.csv").is_file()
