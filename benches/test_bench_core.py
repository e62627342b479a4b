"""Core benchmarks (issue "Core"): keep-all and a 10-rule edit over the real corpus, in memory
and file to file, against pydicom ``dcmread`` + ``save_as`` on the same files; peak memory of a
fresh process rewriting a large file.

Run timed: ``make bench`` (release build). CI runs them once with ``--benchmark-disable``: the
correctness checks still run, the figures are then meaningless.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pydicom
import pytest

from dicomscrub import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus import readable_files

TEN_RULES = {
    "version": 1,
    "tags": {
        "00100010": {"action": "replace", "value": "ANON^PATIENT"},
        "00100020": {"action": "replace", "value": "SUBJ01"},
        "00100030": {"action": "empty"},
        "00100040": {"action": "remove"},
        "00080080": {"action": "empty"},
        "00080090": {"action": "empty"},
        "00081030": {"action": "remove"},
        "0008103E": {"action": "remove"},
        "00080020": {"action": "empty"},
        "00200010": {"action": "empty"},
    },
}
KEEP_ALL = {"version": 1}


def _corpus() -> list[tuple[Path, bytes]]:
    files = []
    for p in readable_files():
        data = p.read_bytes()
        try:
            _core.dump(data)
        except Exception:
            continue
        files.append((p, data))
    return files


CORPUS = _corpus()
TOTAL_BYTES = sum(len(d) for _, d in CORPUS)


def _report(benchmark, label: str, n_files: int, n_bytes: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None or not getattr(stats, "stats", None):
        return
    mean = stats.stats.mean
    files_s = n_files / mean
    mb_s = n_bytes / mean / 1e6
    benchmark.extra_info.update({"files_per_s": files_s, "MB_per_s": mb_s})
    print(f"\n{label}: {files_s:,.0f} files/s, {mb_s:,.0f} MB/s ({n_files} files, {mean:.3f} s)")


def _pydicom_edit(data: bytes, rules: dict) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for tag_hex, rule in rules.get("tags", {}).items():
            tag = int(tag_hex, 16)
            if tag in ds:
                if rule["action"] == "remove":
                    del ds[tag]
                elif rule["action"] == "empty":
                    ds[tag].value = ""
                else:
                    ds[tag].value = rule["value"]
        out = io.BytesIO()
        ds.save_as(out)
    return out.getvalue()


def _pydicom_files() -> list[bytes]:
    """The corpus files pydicom can both read and write (it fails on a few)."""
    ok = []
    for _, data in CORPUS:
        try:
            _pydicom_edit(data, TEN_RULES)
            ok.append(data)
        except Exception:
            continue
    return ok


@pytest.mark.parametrize("rules", ["keep-all", "10-rules"])
def test_bench_dicomscrub_in_memory(benchmark, rules: str) -> None:
    plan = _core.Plan(json.dumps(KEEP_ALL if rules == "keep-all" else TEN_RULES), b"bench")
    datas = [d for _, d in CORPUS]
    # correctness before timing: pydicom reads every output, the edits are there
    for data in datas[:50]:
        ds = pydicom.dcmread(io.BytesIO(_core.anonymize_bytes(data, plan)), force=True)
        if rules == "10-rules" and "PatientID" in ds:
            assert ds.PatientID == "SUBJ01"

    def run() -> None:
        for data in datas:
            _core.anonymize_bytes(data, plan)

    benchmark.group = f"core in memory, {rules}"
    benchmark.pedantic(run, rounds=3, iterations=1)
    _report(benchmark, f"dicomscrub in memory {rules}", len(datas), TOTAL_BYTES)


@pytest.mark.parametrize("rules", ["keep-all", "10-rules"])
def test_bench_pydicom_in_memory(benchmark, rules: str) -> None:
    datas = _pydicom_files()
    r = KEEP_ALL if rules == "keep-all" else TEN_RULES

    def run() -> None:
        for data in datas:
            _pydicom_edit(data, r)

    benchmark.group = f"core in memory, {rules}"
    benchmark.pedantic(run, rounds=1, iterations=1)
    _report(benchmark, f"pydicom dcmread+save_as {rules}", len(datas), sum(map(len, datas)))


def test_bench_dicomscrub_file_to_file(benchmark, tmp_path: Path) -> None:
    plan = _core.Plan(json.dumps(TEN_RULES), b"bench")
    pairs = [(str(p), str(tmp_path / f"{i}.dcm")) for i, (p, _) in enumerate(CORPUS)]
    counter = iter(range(10**6))

    def run() -> None:
        round_dir = tmp_path / f"r{next(counter)}"
        round_dir.mkdir()
        for src, dst in pairs:
            _core.anonymize_file(src, str(round_dir / Path(dst).name), plan)

    benchmark.group = "core file to file, 10-rules"
    benchmark.pedantic(run, rounds=3, iterations=1)
    _report(benchmark, "dicomscrub file to file 10-rules", len(pairs), TOTAL_BYTES)


LARGE_MB = int(os.environ.get("DICOMSCRUB_BENCH_LARGE_MB", "64"))


def _large_file(path: Path, megabytes: int) -> None:
    """A real header (CT_small) with `megabytes` of native pixel data, written in chunks."""
    small = next(p for p, _ in CORPUS if p.name == "CT_small.dcm")
    ds = pydicom.dcmread(small)
    del ds.PixelData
    head = io.BytesIO()
    ds.save_as(head, enforce_file_format=True)
    n = megabytes << 20
    with open(path, "wb") as f:
        f.write(head.getvalue())
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + n.to_bytes(4, "little"))
        chunk = bytes(range(256)) * 4096
        for _ in range(n // len(chunk)):
            f.write(chunk)


# VmHWM (peak RSS of this address space) rather than ru_maxrss, which a child inherits from
# the forking parent (pytest's own size) on Linux.
HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
PEAK_SCRIPT = """
import json, sys, time
from dicomscrub import _core
plan = _core.Plan(json.dumps({plan}), b"bench")
t = time.perf_counter()
_core.anonymize_file(sys.argv[1], sys.argv[2], plan)
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "peak_kib": HWM}}))
""".replace("HWM", HWM)


def test_peak_memory_is_bounded_by_the_header(tmp_path: Path) -> None:
    """A fresh process rewrites a large file; its peak RSS stays near the interpreter's own
    (the pixel data goes file to file through the kernel, never through memory)."""
    big = tmp_path / "big.dcm"
    _large_file(big, LARGE_MB)
    baseline = subprocess.run(
        [sys.executable, "-c", f"import dicomscrub._core; print({HWM})"],
        check=True,
        capture_output=True,
        text=True,
    )
    base_kib = int(baseline.stdout)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_SCRIPT.format(plan=json.dumps(TEN_RULES)),
            str(big),
            str(tmp_path / "out.dcm"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    r = json.loads(run.stdout)
    out = tmp_path / "out.dcm"
    assert out.stat().st_size > big.stat().st_size - 4096
    extra_mib = (r["peak_kib"] - base_kib) / 1024
    mb_s = big.stat().st_size / r["seconds"] / 1e6
    print(
        f"\nlarge file {LARGE_MB} MiB: peak RSS {r['peak_kib'] / 1024:.1f} MiB "
        f"(interpreter + import {base_kib / 1024:.1f} MiB, +{extra_mib:.1f} MiB), {mb_s:,.0f} MB/s"
    )
    assert extra_mib < 16, f"peak memory grew by {extra_mib:.1f} MiB for a {LARGE_MB} MiB file"
    with open(out, "rb") as f:  # the tail (pixel data) is byte-identical
        f.seek(-(1 << 20), 2)
        tail_out = f.read()
    with open(big, "rb") as f:
        f.seek(-(1 << 20), 2)
        assert f.read() == tail_out
