"""anonymize_tree: tree in, tree out on copies of the corpus; resume, kills, locks, layouts,
quarantine and DICOMDIR."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet
from treekit import DAMAGED, DICOMDIR_SET, files_under, make_tree, subset_files, temp_files

from dicomscrub import Anonymizer, Profile, Report, RunLockedError
from dicomscrub.errors import OutputError
from dicomscrub.lock import RunLock

KEY = b"test key of test_bulk"
PYTHONPATH = str(Path(__file__).parents[1] / "python")


@pytest.fixture(scope="module")
def anon() -> Anonymizer:
    return Anonymizer(Profile.basic(), key=KEY)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")


def read(p: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(p, force=True)


def jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]


# -- tree in, tree out -----------------------------------------------------------------------


def test_tree_mirror(anon: Anonymizer, src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    before = files_under(src)
    rep = anon.anonymize_tree(src, dst, progress=False, jobs=2, batch_size=5)
    assert isinstance(rep, Report)
    n = len(subset_files())
    assert (rep.ok, rep.failed, rep.skipped) == (n, 1, 1)
    assert rep.files == n + 2 and rep.resumed == 0 and not rep.success
    assert files_under(src) == before  # inputs untouched
    out = files_under(dst)
    for rel, data in before.items():
        if rel.endswith(".dcm") and DAMAGED not in rel:
            assert out[rel] == anon.anonymize_bytes(data), rel
    assert set(out) == {r for r in before if r.endswith(".dcm") and DAMAGED not in r}
    assert rep.actions["uid"] > 0 and rep.bytes_in > 0 and rep.files_per_s > 0
    # report: one line per file, then the summary
    lines = jsonl(dst / ".dicomscrub" / "report.jsonl")
    assert [x["type"] for x in lines] == ["file"] * rep.files + ["summary"]
    assert lines[-1]["ok"] == n and lines[-1]["failed"] == 1
    status = {Path(x["src"]).name: x for x in lines[:-1]}
    assert status["notes.txt"]["status"] == "skipped"
    assert status["notes.txt"]["error_kind"] == "NotDicom"
    # quarantine: the damaged file, with its reason and offset
    [q] = jsonl(dst / ".dicomscrub" / "quarantine.jsonl")
    assert q["src"].endswith(DAMAGED) and "truncated" in q["reason"] and q["offset"] > 0
    assert temp_files(dst) == []
    # the journal: WAL, every file recorded
    db = sqlite3.connect(dst / ".dicomscrub" / "journal.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM files").fetchone()[0] == rep.files
    assert db.execute("SELECT count(*) FROM files WHERE status='pending'").fetchone()[0] == 0


def test_resume_skips_done_files_and_redoes_changed_ones(
    anon: Anonymizer, src: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "out"
    first = anon.anonymize_tree(src, dst, progress=False)
    snapshot = files_under(dst)
    again = anon.anonymize_tree(src, dst, progress=False)
    assert again.resumed == first.ok + first.skipped  # the failed file is tried again
    assert (again.ok, again.failed, again.skipped) == (first.ok, 1, first.skipped)
    assert files_under(dst) == snapshot
    # a source that changes is redone (its output replaced: it is ours, the journal says so)
    target = next(src.rglob("CT_small.dcm"))
    other = subset_files(("MR_small.dcm",))[0]
    shutil.copyfile(other, target)
    third = anon.anonymize_tree(src, dst, progress=False)
    assert third.resumed == first.ok + first.skipped - 1
    rel = str(target.relative_to(src))
    assert (dst / rel).read_bytes() == anon.anonymize_bytes(other.read_bytes())
    # an output deleted by hand is made again
    victim = next(dst.rglob("rtplan.dcm"))
    victim.unlink()
    fourth = anon.anonymize_tree(src, dst, progress=False)
    assert victim.exists() and fourth.resumed == first.ok + first.skipped - 1


def test_pending_batch_is_redone_and_temp_files_swept(
    anon: Anonymizer, src: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "out"
    anon.anonymize_tree(src, dst, progress=False, batch_size=4)
    expected = files_under(dst)
    # As a kill leaves it: one batch pending (outputs may be written or not), temp files.
    db = sqlite3.connect(dst / ".dicomscrub" / "journal.sqlite")
    rows = db.execute(
        "SELECT src, dst FROM files WHERE status='ok' ORDER BY src LIMIT 4"
    ).fetchall()
    with db:
        db.executemany("UPDATE files SET status='pending' WHERE src=?", [(r[0],) for r in rows])
        db.execute("UPDATE runs SET finished_at=NULL")
    db.close()
    os.unlink(os.fsdecode(rows[0][1]))  # never renamed into place
    Path(os.fsdecode(rows[1][1])).write_bytes(b"stale")  # whatever was there is redone
    stale = dst / "series0" / ".CT_small.dcm.4242-7.dicomscrub-tmp"
    stale.write_bytes(b"partial")
    rep = anon.anonymize_tree(src, dst, progress=False)
    assert rep.resumed == rep.ok + rep.skipped - 4
    assert files_under(dst) == expected
    assert temp_files(dst) == []


def test_lock_refuses_a_second_run(anon: Anonymizer, src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    (dst / ".dicomscrub").mkdir(parents=True)
    with RunLock(dst / ".dicomscrub" / "lock"):
        with pytest.raises(RunLockedError, match="another dicomscrub run"):
            anon.anonymize_tree(src, dst, progress=False)
    assert anon.anonymize_tree(src, dst, progress=False).ok > 0  # released: runs


def test_existing_outputs_are_not_overwritten_unless_asked(
    anon: Anonymizer, src: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "out"
    rel = str(next(src.rglob("rtdose.dcm")).relative_to(src))
    (dst / rel).parent.mkdir(parents=True)
    (dst / rel).write_bytes(b"not ours")
    rep = anon.anonymize_tree(src, dst, progress=False)
    assert rep.errors["OutputError"] == 1
    assert (dst / rel).read_bytes() == b"not ours"
    quarantined = [q["src"] for q in jsonl(dst / ".dicomscrub" / "quarantine.jsonl")]
    assert not any(q.endswith("rtdose.dcm") for q in quarantined)  # not the input's fault
    rep = anon.anonymize_tree(src, dst, progress=False, overwrite=True)
    assert "OutputError" not in rep.errors
    assert (dst / rel).read_bytes() == anon.anonymize_bytes((src / rel).read_bytes())


def test_another_plan_is_refused_unless_overwrite(src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    Anonymizer(key=b"one").anonymize_tree(src, dst, progress=False)
    with pytest.raises(OutputError, match="another profile or key"):
        Anonymizer(key=b"two").anonymize_tree(src, dst, progress=False)
    rep = Anonymizer(key=b"two").anonymize_tree(src, dst, progress=False, overwrite=True)
    assert rep.resumed == 0 and rep.ok > 0
    with pytest.raises(OutputError, match="layout"):
        Anonymizer(key=b"two").anonymize_tree(
            src, dst, progress=False, layout="patient/study/series"
        )


def test_destination_inside_source_is_not_walked(anon: Anonymizer, src: Path) -> None:
    first = anon.anonymize_tree(src, src / "anon", progress=False)
    second = anon.anonymize_tree(src, src / "anon", progress=False)
    assert second.files == first.files  # the outputs were not taken as inputs
    with pytest.raises(ValueError):
        anon.anonymize_tree(src, src, progress=False)


def test_non_dicom_copied_when_asked(anon: Anonymizer, src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    rep = anon.anonymize_tree(src, dst, progress=False, copy_non_dicom=True)
    assert rep.copied == 1 and rep.skipped == 1
    assert (dst / "notes.txt").read_bytes() == (src / "notes.txt").read_bytes()
    assert anon.anonymize_tree(src, dst, progress=False, copy_non_dicom=True).copied == 0
    with pytest.raises(ValueError):
        anon.anonymize_tree(
            src, tmp_path / "o2", copy_non_dicom=True, layout="patient/study/series"
        )


def test_dry_run_writes_nothing(anon: Anonymizer, src: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    rep = anon.anonymize_tree(src, dst, dry_run=True)
    assert not dst.exists()
    assert rep.dry_run and rep.planned_files == len(subset_files()) + 2
    assert 0 < rep.ok <= 3 and rep.changes
    kinds = {c.change for c in rep.changes}
    assert "changed" in kinds and {c.keyword for c in rep.changes} >= {"SOPInstanceUID"}


def test_progress_line(anon: Anonymizer, src: Path, tmp_path: Path) -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    anon.anonymize_tree(src, tmp_path / "a", progress_stream=tty, batch_size=3)
    assert "\r" in tty.getvalue() and "files/s" in tty.getvalue() and "MB/s" in tty.getvalue()
    pipe = io.StringIO()
    anon.anonymize_tree(src, tmp_path / "b", progress_stream=pipe)
    assert pipe.getvalue() == ""  # not a terminal: no progress
    anon.anonymize_tree(src, tmp_path / "c", progress_stream=pipe, progress="always")
    assert "ETA" in pipe.getvalue()


# -- layout ----------------------------------------------------------------------------------


def _identifiers(src: Path) -> tuple[set[str], set[str]]:
    """Original identifiers of the source files: exact values, and name tokens."""
    values: set[str] = set()
    tokens: set[str] = set()
    for p in src.rglob("*"):
        if not p.is_file():
            continue
        ds = read(p)
        for kw in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                   "AccessionNumber", "StudyID"):  # fmt: skip
            v = str(ds.get(kw, "") or "").strip()
            if len(v) >= 4:
                values.add(v)
        name = str(ds.get("PatientName", "") or "")
        tokens |= {t.lower() for t in re.split(r"[^A-Za-z]+", name) if len(t) >= 4}
    tokens -= {"anon", "anonymized", "anonymous"}
    return values, tokens


@pytest.mark.parametrize("options", [(), ("retain-uids",)], ids=["basic", "retain-uids"])
def test_layout_paths_hold_no_original_identifier(
    src: Path, tmp_path: Path, options: tuple[str, ...]
) -> None:
    anon = Anonymizer(Profile.basic(list(options)), key=KEY)
    dst = tmp_path / "out"
    rep = anon.anonymize_tree(src, dst, progress=False, layout="patient/study/series")
    assert rep.ok == len(subset_files())
    values, tokens = _identifiers(src)
    paths = list(files_under(dst))
    assert len(paths) == rep.ok
    for rel in paths:
        parts = Path(rel).parts
        assert len(parts) == 4 and parts[-1].endswith(".dcm")
        for v in values:
            assert v not in rel, (v, rel)
        for t in tokens:
            assert t not in rel.lower(), (t, rel)
    lines = [x for x in jsonl(dst / ".dicomscrub" / "report.jsonl") if x["type"] == "file"]
    for x in lines:
        if x["status"] == "ok":
            ds = read(Path(x["dst"]))
            name = Path(x["dst"]).name
            stem = name.split(".dcm")[0].split("_")[0]
            if "SOPInstanceUID" not in ds:  # named from a keyed hash of the source path
                assert stem.startswith("F-")
            elif not options:  # the names are the output's own pseudonymized UIDs
                assert stem == ds.SOPInstanceUID
    assert not (dst / ".dicomscrub" / "staging").exists() or not any(
        (dst / ".dicomscrub" / "staging").iterdir()
    )
    again = anon.anonymize_tree(src, dst, progress=False, layout="patient/study/series")
    assert again.resumed == rep.ok + rep.skipped
    assert len(files_under(dst)) == rep.ok


# -- DICOMDIR --------------------------------------------------------------------------------


def _record_values(dicomdir: Path) -> set[str]:
    """PatientID and PatientName of every record of a source DICOMDIR."""
    ds = read(dicomdir)
    out: set[str] = set()
    for rec in ds.DirectoryRecordSequence:
        for kw in ("PatientID", "PatientName"):
            if rec.get(kw):
                out.add(str(rec.get(kw)))
    return out


def test_dicomdir_regenerated_from_outputs(anon: Anonymizer, tmp_path: Path) -> None:
    src = tmp_path / "cd"
    shutil.copytree(DICOMDIR_SET, src)
    dst = tmp_path / "out"
    rep = anon.anonymize_tree(src, dst, progress=False)
    assert rep.failed == 0 and rep.skipped == 2 + len(rep.dicomdirs) - sum(
        d.note == "dicomdir-regenerated" for d in rep.dicomdirs
    )
    notes = {str(Path(d.src).relative_to(src)): d for d in rep.dicomdirs}
    # TINY_ALPHA: File IDs PT000000/ST000000/...: regenerated from the anonymized outputs
    assert notes["TINY_ALPHA/DICOMDIR"].note == "dicomdir-regenerated"
    originals = _record_values(src / "TINY_ALPHA" / "DICOMDIR")
    src_fs = FileSet(src / "TINY_ALPHA" / "DICOMDIR")
    for inst in src_fs:
        ds = read(Path(inst.path))
        originals |= {str(ds.PatientID), str(ds.PatientName)}
    originals.discard("")
    assert originals
    data = (dst / "TINY_ALPHA" / "DICOMDIR").read_bytes()
    for v in originals:
        assert v.encode() not in data, v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs = FileSet(dst / "TINY_ALPHA" / "DICOMDIR")
    assert len(fs) == len(src_fs) == 50
    for inst in fs:
        out = Path(inst.path)
        assert out.is_file() and out.is_relative_to(dst)
        ds = read(out)
        assert ds.SOPInstanceUID == inst.SOPInstanceUID  # the record matches the output
        assert str(ds.PatientID).startswith("ANON-")
        assert ds.SOPInstanceUID != read(src / out.relative_to(dst)).SOPInstanceUID
    # The top DICOMDIR's File IDs start with the Patient ID (77654033/CR1/6154): a new one
    # would repeat it, so it is not copied, and says why.
    top = notes["DICOMDIR"]
    assert top.note == "dicomdir-not-copied" and "identifying" in (top.message or "")
    assert not (dst / "DICOMDIR").exists()
    for d in rep.dicomdirs:
        if d.note == "dicomdir-regenerated":
            for v in _record_values(Path(d.src)):
                assert v.encode() not in Path(d.dst).read_bytes(), (d.src, v)
    # the layout that renames files cannot keep a DICOMDIR: reported, not copied
    rep2 = anon.anonymize_tree(src, tmp_path / "o2", progress=False, layout="patient/study/series")
    assert {d.note for d in rep2.dicomdirs} == {"dicomdir-not-copied"}
    assert not list((tmp_path / "o2").rglob("DICOMDIR*"))


# -- kill -9 at random moments, then resume ----------------------------------------------------


def _run_cli(src: Path, dst: Path, key: Path, **kw: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "DICOMSCRUB_JOBS": "2"}
    cmd = [sys.executable, "-m", "dicomscrub", "run", str(src), str(dst), "--key-file", str(key),
           "--no-progress", "--batch-size", "3"]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def _outputs(dst: Path) -> int:
    n = 0
    for _dirpath, dirnames, files in os.walk(dst):
        if ".dicomscrub" in dirnames:
            dirnames.remove(".dicomscrub")
        n += sum(not f.endswith(".dicomscrub-tmp") for f in files)
    return n


def _kill_at(p: subprocess.Popen[bytes], dst: Path, target: int, extra: float) -> bool:
    """SIGKILL ``p`` once ``target`` outputs exist (+ ``extra`` seconds); False if it ended."""
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline:
        if _outputs(dst) >= target:
            time.sleep(extra)
            if p.poll() is not None:
                return False
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            return True
        time.sleep(0.001)
    p.wait(timeout=60)
    return False


def test_sigkill_then_resume_gives_identical_output(tmp_path: Path) -> None:
    """Three runs killed at random points of their progress (a random number of outputs
    written, plus a random delay: mid-batch, mid-sync, mid-journal, mid-DICOMDIR), then a run
    to the end: the output tree is byte for byte the one an uninterrupted run makes."""
    src = make_tree(tmp_path / "src")
    shutil.copytree(DICOMDIR_SET, src / "cd")
    key = tmp_path / "key"
    key.write_bytes(KEY)
    ref = tmp_path / "ref"
    p = _run_cli(src, ref, key)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 1, err  # the damaged file
    expected = files_under(ref)
    seed = int(os.environ.get("DICOMSCRUB_KILL_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    dst = tmp_path / "dst"
    kills = 0
    for _ in range(3):
        done = _outputs(dst) if dst.exists() else 0
        target = rng.randint(done, len(expected))
        kills += _kill_at(_run_cli(src, dst, key), dst, target, rng.uniform(0, 0.05))
        # whatever the moment: every output present is whole and final
        for rel, data in files_under(dst).items():
            if not rel.endswith(".dicomscrub-tmp"):
                assert data == expected[rel], (seed, rel)
    p = _run_cli(src, dst, key)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 1, (seed, err)
    assert files_under(dst) == expected, seed
    assert temp_files(dst) == [], seed
    db = sqlite3.connect(dst / ".dicomscrub" / "journal.sqlite")
    assert db.execute("SELECT count(*) FROM files WHERE status='pending'").fetchone()[0] == 0
    assert kills >= 1, f"no run was killed (seed {seed})"
