"""Benchmarks: every engine over the same tree, disk to disk (pytest-benchmark).

Each engine's output is checked before it is timed: dicomscrub, the reference and the floors
must pass on every file; a peer that fails on some files is timed all the same, its failures
reported (``extra_info["failures"]`` and a warning). An engine that is not installed is skipped
as "unavailable: <reason>" and listed as such in the summary table.

    pytest benches/                              # 2000 files, 3 rounds per engine
    pytest benches/ --benchmark-disable          # smoke: 40 files, each engine once
    DICOMSCRUB_BENCH_LARGE=1 pytest benches/ -k large
    pytest benches/ --benchmark-json=bench.json  # figures and extra_info for dashboards
"""

from __future__ import annotations

import io
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from dicomscrub.bench import load_benches

corpus, engines = load_benches(Path(__file__).resolve().parent)
record = engines.record

TREE_ENGINES = list(engines.ENGINES)  # cp first, dicomscrub last: the ratios fill in as we go
LARGE_ENGINES = ("cp", "pydicom", "dicomscrub")
LARGE_LABELS = [label for label, _, _ in corpus.DEFAULT_LARGE]


def _run_checked(
    engine: Any, tree: Any, work: Path, benchmark: Any, rounds: int, scenario: str
) -> Any:
    """Check one run of ``engine`` over ``tree``, then time ``rounds`` runs; the Result."""
    benchmark.group = scenario
    res = engines.new_result(engine, tree)
    if res.status != "ok":
        record(scenario, res, benchmark.extra_info)
        pytest.skip(f"unavailable: {res.reason}")
    out = work / engine.name
    scratch = work / f".{engine.name}.log"
    argv = engines.engine_argv(engine, tree.files_dir, out, None)

    # correctness first: one run, every output read back and checked
    shutil.rmtree(out, ignore_errors=True)
    first = engines.run_child(argv, scratch=scratch)
    check = engines.check_output(tree, out, deidentifies=engine.deidentifies)
    engines.apply_check(res, first, check)
    assert res.status == "ok", res.reason
    if engine.kind != "peer":
        assert check.failures == 0, (check.reasons, check.examples)
    elif check.failures:
        warnings.warn(
            f"{engine.name}: {check.failures}/{check.files} files fail the check {check.reasons}",
            stacklevel=1,
        )

    runs: list[Any] = []

    def setup() -> None:
        shutil.rmtree(out, ignore_errors=True)
        os.sync()

    def target() -> None:
        runs.append(engines.run_child(argv, scratch=scratch))

    benchmark.pedantic(target, setup=setup, rounds=rounds if first.wall_s < 30 else 1, iterations=1)
    shutil.rmtree(out, ignore_errors=True)
    engines.summarize(res, runs, tree)
    benchmark.extra_info.update(
        files=tree.n_files,
        megabytes=round(tree.total_bytes / 1e6, 2),
        files_per_s=res.files_per_s,
        mb_per_s=res.mb_per_s,
        peak_rss_mib=res.peak_rss_kib / 1024,
        failures=res.failures,
        failure_reasons=res.failure_reasons,
        engine_errors=res.engine_errors,
    )
    record(scenario, res, benchmark.extra_info)
    return res


@pytest.mark.parametrize("name", TREE_ENGINES)
def test_tree(
    benchmark: Any, name: str, bench_tree: Any, bench_work: Path, bench_rounds: int
) -> None:
    _run_checked(
        engines.ENGINES[name],
        bench_tree,
        bench_work,
        benchmark,
        bench_rounds,
        f"tree of {bench_tree.n_files} files",
    )


@pytest.mark.parametrize("name", LARGE_ENGINES)
@pytest.mark.parametrize("label", LARGE_LABELS)
def test_large(
    benchmark: Any, label: str, name: str, large_tree: Any, bench_work: Path, bench_rounds: int
) -> None:
    part = corpus.subtree(large_tree, label)
    _run_checked(
        engines.ENGINES[name], part, bench_work, benchmark, bench_rounds, f"large file {label}"
    )


@pytest.mark.parametrize("name", engines.MICRO)
def test_in_memory(benchmark: Any, name: str) -> None:
    """One thread, one file in memory (pydicom's CT_small.dcm), bytes to bytes."""
    import pydicom
    import pydicom.data

    benchmark.group = "in memory: CT_small.dcm, 1 thread"
    why = engines.ENGINES[name].unavailable()
    if why:
        pytest.skip(f"unavailable: {why}")
    path = pydicom.data.get_testdata_file("CT_small.dcm")
    fn = engines.micro_fn(name, path)
    out = fn()  # correctness first
    ds = pydicom.dcmread(io.BytesIO(out))
    src = pydicom.dcmread(path)
    assert ds.PixelData == src.PixelData
    assert str(ds.get("PatientName", "")) != str(src.PatientName)
    benchmark(fn)
    if benchmark.stats is not None:  # None with --benchmark-disable
        benchmark.extra_info["per_file_us"] = benchmark.stats.stats.median * 1e6
