"""The dicomscrub command: exit codes, profiles, dump, progress only on a terminal, samples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from treekit import damaged_file, make_tree, subset_files

from dicomscrub.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, cli, main
from dicomscrub.lock import RunLock

ROOT = Path(__file__).parents[1]
SAMPLES = ROOT / "samples"


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    k = tmp_path / "key"
    k.write_bytes(b"test key of test_cli")
    return k


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    r = runner.invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def subprocess_run(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m dicomscrub ARGS``; output decoded without newline translation."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    p = subprocess.run(
        [sys.executable, "-m", "dicomscrub", *args], env=env, capture_output=True, timeout=300
    )
    return subprocess.CompletedProcess(
        p.args,
        p.returncode,
        p.stdout.decode("utf-8", "replace"),
        p.stderr.decode("utf-8", "replace"),
    )


# -- run: exit codes -----------------------------------------------------------------------------


def test_run_ok_is_0_with_skipped_non_dicom(
    runner: CliRunner, tmp_path: Path, keyfile: Path
) -> None:
    src = make_tree(tmp_path / "src", damaged=False)
    code, out, _ = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile)
    )
    assert code == EXIT_OK, out
    assert "skipped" in out and "report" in out and "files/s" in out
    assert (tmp_path / "out" / ".dicomscrub" / "report.jsonl").is_file()


def test_run_with_a_failed_file_is_1(runner: CliRunner, tmp_path: Path, keyfile: Path) -> None:
    src = make_tree(tmp_path / "src")
    report = tmp_path / "elsewhere" / "report.jsonl"
    code, out, _ = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile),
        "--report", str(report), "--jobs", "1",
    )  # fmt: skip
    assert code == EXIT_FAILED
    assert "quarantine.jsonl" in out
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert lines[-1]["type"] == "summary" and lines[-1]["failed"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nope"], "unknown profile"),
        (["--option", "retain-uid"], "did you mean 'retain-uids'"),
        (["--layout", "flat"], "Invalid value"),
        (["--jobs", "0"], "Invalid value"),
    ],
)
def test_run_usage_errors_are_2(
    runner: CliRunner, tmp_path: Path, keyfile: Path, args: list[str], message: str
) -> None:
    src = make_tree(tmp_path / "src")
    code, out, err = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile), *args
    )
    assert code == EXIT_USAGE
    assert message in out + err
    assert not (tmp_path / "out" / "series0").exists()


def test_bad_toml_profile_is_2_with_its_line(
    runner: CliRunner, tmp_path: Path, keyfile: Path
) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text('name = "site"\n\n[[rules]]\nkeyword = "PatientNmae"\naction = "remove"\n')
    src = make_tree(tmp_path / "src")
    code, out, err = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile),
        "--profile", str(bad),
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "site.toml:4" in out + err and "PatientName" in out + err
    code, _, err = invoke(runner, "profile", "show", str(tmp_path / "missing.toml"))
    assert code == EXIT_USAGE and "cannot read" in err


def test_good_toml_profile(runner: CliRunner, tmp_path: Path, keyfile: Path) -> None:
    site = ROOT / "docs" / "examples" / "site.toml"
    src = make_tree(tmp_path / "src", damaged=False)
    code, out, _ = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile),
        "--profile", str(site), "--option", "retain-uids",
    )  # fmt: skip
    assert code == EXIT_OK, out


def test_bad_key_file_is_2(runner: CliRunner, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    code, _, err = invoke(runner, "run", str(src), str(tmp_path / "o"), "--key-file", str(empty))
    assert code == EXIT_USAGE and "empty" in err
    code, _, err = invoke(runner, "run", str(src), str(tmp_path / "o"), "--key-file", "/nope/k")
    assert code == EXIT_USAGE and "cannot read" in err


def test_locked_destination_is_2(runner: CliRunner, tmp_path: Path, keyfile: Path) -> None:
    src = make_tree(tmp_path / "src")
    dst = tmp_path / "out"
    (dst / ".dicomscrub").mkdir(parents=True)
    with RunLock(dst / ".dicomscrub" / "lock"):
        code, _, err = invoke(runner, "run", str(src), str(dst), "--key-file", str(keyfile))
    assert code == EXIT_USAGE and "another dicomscrub run" in err


def test_dry_run_prints_changes_writes_nothing(
    runner: CliRunner, tmp_path: Path, keyfile: Path
) -> None:
    src = make_tree(tmp_path / "src", damaged=False)
    code, out, _ = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile), "--dry-run"
    )
    assert code == EXIT_OK, out
    assert "dry run" in out and "PatientName" in out and "->" in out
    assert not (tmp_path / "out").exists()
    # a sampled file that would fail makes the dry run say so, and exit 1
    make_tree(src)
    code, out, _ = invoke(
        runner, "run", str(src), str(tmp_path / "out"), "--key-file", str(keyfile), "--dry-run"
    )
    assert code == EXIT_FAILED and "would fail" in out and "truncated" in out
    assert not (tmp_path / "out").exists()


# -- progress only on a terminal -----------------------------------------------------------------


def test_progress_off_when_not_a_tty_and_forced_on(tmp_path: Path, keyfile: Path) -> None:
    src = make_tree(tmp_path / "src", damaged=False)
    p = subprocess_run("run", str(src), str(tmp_path / "a"), "--key-file", str(keyfile))
    assert p.returncode == EXIT_OK, p.stderr
    assert "\r" not in p.stderr and "files/s" not in p.stderr  # stderr is a pipe here
    assert "files/s" in p.stdout  # the summary
    p = subprocess_run(
        "run", str(src), str(tmp_path / "b"), "--key-file", str(keyfile), "--progress"
    )
    assert p.returncode == EXIT_OK
    assert "\r" in p.stderr and "files/s" in p.stderr and "MB/s" in p.stderr and "ETA" in p.stderr


# -- anonymize one file --------------------------------------------------------------------------


def test_anonymize_one_file(runner: CliRunner, tmp_path: Path, keyfile: Path) -> None:
    src = subset_files(("CT_small.dcm",))[0]
    dst = tmp_path / "ct.dcm"
    code, out, _ = invoke(runner, "anonymize", str(src), str(dst), "--key-file", str(keyfile))
    assert code == EXIT_OK and dst.is_file() and "uid" in out
    code, _, err = invoke(runner, "anonymize", str(src), str(dst), "--key-file", str(keyfile))
    assert code == EXIT_FAILED and "exists" in err
    code, _, err = invoke(
        runner, "anonymize", str(damaged_file()), str(tmp_path / "x.dcm"), "--key-file",
        str(keyfile),
    )  # fmt: skip
    assert code == EXIT_FAILED and "truncated" in err and not (tmp_path / "x.dcm").exists()


# -- dump ----------------------------------------------------------------------------------------


def test_dump_tree_and_json(runner: CliRunner) -> None:
    src = subset_files(("rtplan.dcm",))[0]
    code, out, _ = invoke(runner, "dump", str(src))
    assert code == EXIT_OK
    assert "(0010,0010) PN [Last^First^mid^pre]" in out and "PatientName" in out
    assert "# File Meta Information" in out and "TransferSyntaxUID" in out
    assert "  > item 1" in out  # sequences are walked
    code, out, _ = invoke(runner, "dump", str(src), "--json")
    model = json.loads(out)
    assert model["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Last^First^mid^pre"}]}
    assert "00020010" in model
    code, out, _ = invoke(runner, "dump", str(src), "--json", "--no-meta")
    assert "00020010" not in json.loads(out)


def test_dump_bad_file_is_1(runner: CliRunner, tmp_path: Path) -> None:
    txt = tmp_path / "x.txt"
    txt.write_text("plain text, not DICOM, long enough to be looked at\n")
    code, _, err = invoke(runner, "dump", str(txt))
    assert code == EXIT_FAILED and "not a DICOM file" in err


# -- profile -------------------------------------------------------------------------------------


def test_profile_list_and_show(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "profile", "list")
    assert code == EXIT_OK and "basic" in out and "retain-uids" in out and "113110" in out
    code, out, err = invoke(runner, "profile", "show")
    plan = json.loads(out)
    assert plan["version"] == 1 and plan["tags"]["0020000D"] == {"action": "uid"}
    assert "edition" in err
    code, out, _ = invoke(runner, "profile", "show", "--option", "retain-uids")
    assert json.loads(out)["tags"].get("0020000D", {}).get("action") != "uid"
    code, _, err = invoke(runner, "profile", "show", "--option", "nope")
    assert code == EXIT_USAGE


# -- the command as installed --------------------------------------------------------------------


def test_python_m_and_help() -> None:
    p = subprocess_run("--help")
    assert p.returncode == 0
    for command in ("run", "anonymize", "dump", "profile"):
        assert command in p.stdout
    assert main(["--help"]) == 0
    assert main(["run"]) == EXIT_USAGE  # missing arguments


def test_samples_run_clean(tmp_path: Path, keyfile: Path) -> None:
    """The bundled sample study: every DICOM file anonymized, README skipped, DICOMDIR rebuilt;
    with clean-structured-content (the SR's free text names the patient) no fake PHI is left."""
    p = subprocess_run(
        "run", str(SAMPLES), str(tmp_path / "out"), "--key-file", str(keyfile),
        "--option", "clean-structured-content",
    )  # fmt: skip
    assert p.returncode == EXIT_OK, p.stdout + p.stderr
    assert "dicomdir-regenerated" in p.stdout and "skipped   1" in p.stdout
    out = tmp_path / "out"
    phi = [b"Doe^Jane", b"Jane", b"MRN-0042731", b"Harbour Road", b"M\xfcller", b"PID-77-31902",
           b"SSN-078", b"House^Gregory", b"Wagner", b"St. Elsewhere", b"Hamburg", b"5550199",
           b"19620314", b"Lindenstra"]  # fmt: skip
    outputs = [f for f in out.rglob("*") if f.is_file() and ".dicomscrub" not in f.parts]
    assert len(outputs) == 8  # 7 files and the DICOMDIR
    for f in outputs:
        data = f.read_bytes()
        leaked = [x for x in phi if x in data]
        assert not leaked, (f, leaked)


def test_samples_are_what_the_script_makes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    subprocess.run(
        [sys.executable, str(ROOT / "python" / "tools" / "make_samples.py"), str(tmp_path / "s")],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    made = sorted(p.relative_to(tmp_path / "s") for p in (tmp_path / "s").rglob("*") if p.is_file())
    committed = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*") if p.is_file())
    assert made == committed and len(made) <= 12
    total = 0
    for rel in made:
        assert (tmp_path / "s" / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
        total += (SAMPLES / rel).stat().st_size
    assert total < 2_000_000
    shutil.rmtree(tmp_path / "s")
