"""The benchmark machinery itself (``dicomscrub bench``, benches/corpus.py, benches/engines.py) on
tiny trees: the table lists every requested engine, ``--json`` parses, an engine that is not
installed is reported as unavailable, and an engine whose output fails the check is reported
with its failure count. No figure is asserted here: timings are never unit-tested."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dicomscrub._core")
click_testing = pytest.importorskip("click.testing")

from dicomscrub import bench as bench_mod  # noqa: E402

corpus, engines = bench_mod.load_benches()

N = 6
BASE = ["--files", str(N), "--corpus", "real", "--rounds", "1", "--no-micro"]

# Copies the tree with pydicom, blanking PatientName/PatientID, except that it keeps the first
# file's PatientName and truncates the second file's output: two files must fail the check.
STUB = textwrap.dedent(
    """
    import os, sys, warnings
    import pydicom
    warnings.simplefilter("ignore")
    src, dst = sys.argv[1], sys.argv[2]
    k = 0
    for dirpath, dirnames, names in os.walk(src):
        dirnames.sort()
        for name in sorted(names):
            s = os.path.join(dirpath, name)
            d = os.path.join(dst, os.path.relpath(s, src))
            os.makedirs(os.path.dirname(d), exist_ok=True)
            ds = pydicom.dcmread(s, force=True)
            if k != 0:
                ds.PatientName = "STUB"
            ds.PatientID = "STUB"
            ds.save_as(d, enforce_file_format=False)
            if k == 1:
                with open(d, "r+b") as f:
                    f.truncate(200)
            k += 1
    """
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("stub") / "stub.py"
    p.write_text(STUB)
    return p


def invoke(args: list[str], cache: Path) -> Any:
    runner = click_testing.CliRunner()
    return runner.invoke(
        bench_mod.bench, [*args, "--cache-dir", str(cache)], catch_exceptions=False
    )


def test_tree_is_built_once_with_distinct_identities(cache: Path) -> None:
    tree = corpus.build_tree(N, prefer="real", cache=cache)
    assert tree.n_files == N
    assert corpus.build_tree(N, prefer="real", cache=cache).root == tree.root  # cached
    files = tree.files
    assert len({f["patient_id"] for f in files}) == N
    assert len({f["patient_name"] for f in files}) == N
    # round-robin over transfer syntaxes: a small tree already holds several
    assert len({f["transfer_syntax"] for f in files}) >= min(N, 4)
    import pydicom

    uids = set()
    for f in files:
        ds = pydicom.dcmread(tree.files_dir / f["rel"], force=True)
        assert str(ds.PatientID) == f["patient_id"]
        uids.add((ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    assert len(uids) == N


def test_json_lists_every_requested_engine(cache: Path) -> None:
    result = invoke([*BASE, "--against", "pydicom,reference", "--json"], cache)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [r["engine"] for r in report["results"]]
    assert names == ["cp", "pydicom", "reference", "dicomscrub-1thread", "dicomscrub"]
    by = {r["engine"]: r for r in report["results"]}
    for r in by.values():
        assert r["status"] == "ok", r
        assert r["files"] == N
        assert r["wall_s"] > 0 and r["files_per_s"] > 0 and r["peak_rss_kib"] > 0
    assert by["dicomscrub"]["failures"] == 0
    assert by["dicomscrub-1thread"]["failures"] == 0
    assert by["dicomscrub"]["ratio_dicomscrub"] == pytest.approx(1.0)
    assert by["cp"]["ratio_cp"] == pytest.approx(1.0)
    assert report["corpus"]["n"] == N
    statuses = {t["status"] for t in report["targets"]}
    assert statuses <= {"PASS", "FAIL", "N/A"}
    assert any("dicognito" in t["target"] for t in report["targets"])


def test_table_and_a_failing_engine(cache: Path, stub: Path) -> None:
    result = invoke(
        [
            *BASE,
            "--against",
            "pydicom",
            "--engine",
            f"stub={sys.executable} {stub} {{src}} {{dst}}",
        ],
        cache,
    )
    assert result.exit_code == 0, result.output
    table = result.stdout
    for name in ("cp", "pydicom", "dicomscrub-1thread", "dicomscrub", "stub"):
        assert any(line.startswith(name + " ") for line in table.splitlines()), (name, table)
    line = next(x for x in table.splitlines() if x.startswith("stub "))
    assert f"2/{N}" in line, line
    assert "targets" in table


def test_failing_engine_counts_per_reason(cache: Path, stub: Path, tmp_path: Path) -> None:
    report = bench_mod.run_bench(
        against=[],
        n_files=N,
        rounds=1,
        micro=False,
        corpus_name="real",
        extra_engines=[("stub", f"{sys.executable} {stub} {{src}} {{dst}}")],
        cache=cache,
        work=tmp_path / "work",
    )
    by = {r["engine"]: r for r in report["results"]}
    stub_res = by["stub"]
    assert stub_res["status"] == "ok"
    assert stub_res["failures"] == 2
    assert stub_res["failure_reasons"]["PatientName unchanged"] == 1
    assert sum(stub_res["failure_reasons"].values()) == 2
    assert by["dicomscrub"]["failures"] == 0


def test_unavailable_and_crashed_engines_are_reported(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = dataclasses.replace(engines.ENGINES["deid"], modules=("no_such_module_for_bench",))
    monkeypatch.setitem(engines.ENGINES, "deid", missing)
    report = bench_mod.run_bench(
        against=["deid"],
        n_files=N,
        rounds=1,
        micro=False,
        corpus_name="real",
        extra_engines=[
            ("broken", f"{sys.executable} -c 'import sys; sys.exit(3)' {{src}} {{dst}}")
        ],
        cache=cache,
        work=tmp_path / "work",
    )
    by = {r["engine"]: r for r in report["results"]}
    assert by["deid"]["status"] == "unavailable"
    assert "no_such_module_for_bench" in by["deid"]["reason"]
    assert by["broken"]["status"] == "crashed"
    assert by["broken"]["failures"] == N
    assert by["broken"]["failure_reasons"] == {"missing output": N}
    text = bench_mod.format_report(report)
    assert "deid" in text and "unavailable: module no_such_module_for_bench" in text
    assert "broken (crashed)" in text


def test_unknown_engine_is_a_usage_error(cache: Path) -> None:
    result = invoke([*BASE, "--against", "nosuchtool"], cache)
    assert result.exit_code != 0
    assert "unknown engine" in result.output


def test_check_output_reasons(cache: Path, tmp_path: Path) -> None:
    import shutil

    import pydicom

    tree = corpus.build_tree(N, prefer="real", cache=cache)
    out = tmp_path / "out"
    shutil.copytree(tree.files_dir, out)
    (out / tree.files[0]["rel"]).unlink()
    check = engines.check_output(tree, out, deidentifies=False)
    assert check.failures == 1 and check.reasons == {"missing output": 1}
    check = engines.check_output(tree, out, deidentifies=True)  # a copy changes no identity
    assert check.reasons["missing output"] == 1
    assert check.reasons["PatientName unchanged"] == N - 1
    target = next(f for f in tree.files[1:] if f["pixels"]["7FE00010"] is not None)
    path = out / target["rel"]
    data = bytearray(path.read_bytes())
    pixels = bytes(pydicom.dcmread(path, force=True).PixelData)
    probe = pixels[len(pixels) // 2 : len(pixels) // 2 + 32]
    at = data.find(probe)
    assert at > 0
    data[at] ^= 0xFF  # one byte of the pixel data
    path.write_bytes(bytes(data))
    check = engines.check_output(tree, out, deidentifies=False)
    assert check.reasons == {"missing output": 1, "pixel data changed": 1}


def _report(walls: dict[str, float], failures: int = 0, n: int = 2000) -> dict[str, Any]:
    results = [
        {
            "engine": name,
            "status": "ok",
            "wall_s": wall,
            "failures": failures if name == "dicomscrub" else 0,
            "rust": name in ("dcmanon", "fw-file-rs"),
            "reason": None,
        }
        for name, wall in walls.items()
    ]
    return {
        "corpus": {"n": n, "kind": "tree", "origin": "R", "real_origin": "R"},
        "results": results,
        "micro": [
            {"engine": "dicomscrub", "per_file_s": 1e-5},
            {"engine": "dcmanon", "per_file_s": 2e-4},
        ],
    }


def test_targets_pass_and_fail() -> None:
    walls = {
        "cp": 1.0,
        "dicomscrub": 1.4,
        "dicomscrub-1thread": 2.4,
        "dicognito": 40.0,
        "dcmanon": 3.0,
        "fw-file-rs": 2.2,
    }
    targets = bench_mod.evaluate_targets(_report(walls))
    status = [x["status"] for x in targets]
    assert status == ["PASS", "PASS", "PASS", "PASS", "PASS"], targets
    assert targets[0]["note"] == ""
    targets = bench_mod.evaluate_targets(_report(walls, failures=1))
    assert targets[0]["status"] == "FAIL"  # failures fail the cp target
    slow = dict(walls, dicomscrub=2.0)
    s = [x["status"] for x in bench_mod.evaluate_targets(_report(slow))]
    assert s == ["FAIL", "FAIL", "FAIL", "PASS", "FAIL"]
    small = bench_mod.evaluate_targets(_report(walls, n=40))
    assert "indicative" in small[0]["note"]
    no_peer = {k: v for k, v in walls.items() if k not in ("dicognito", "dcmanon", "fw-file-rs")}
    s = [x["status"] for x in bench_mod.evaluate_targets(_report(no_peer))]
    assert s[1] == s[2] == "N/A"


def test_large_files_are_built_by_repeating_frames(tmp_path: Path) -> None:
    sizes = (("3MB-native", 3, "native"), ("1MB-jpeg", 1, "encapsulated"))
    large = corpus.build_large(sizes, cache=tmp_path / "cache")
    assert [f["label"] for f in large.files] == ["3MB-native", "1MB-jpeg"]
    for f in large.files:
        assert 0.5e6 < f["size"] < 5e6, f
        assert f["frames"] >= 1
        part = corpus.subtree(large, f["label"])
        assert part.n_files == 1
        for name in ("cp", "dicomscrub"):
            r = engines.measure(engines.ENGINES[name], part, tmp_path / "work", rounds=1)
            assert r.status == "ok" and r.failures == 0, (name, r)
