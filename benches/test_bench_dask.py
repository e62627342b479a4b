"""Dask benchmark (issue "Scale out on Dask"): files/s of ``anonymize_tree`` on a LocalCluster of
1 and 2 worker processes (1 thread each) against the local multi-threaded engine, same tree, same
key (outputs checked byte-identical first); and the Dask overhead per batch: the wall time of a
batch seen from the client (submit to result) minus the time its worker reports, batches sent one
at a time (no queueing), as a percentage of the worker's time. Target < 10%: printed PASS/FAIL,
not asserted (a loaded machine moves it).

    pytest benches/test_bench_dask.py --benchmark-enable -s    # 2000 files (DICOMSCRUB_BENCH_FILES)
    pytest benches/test_bench_dask.py --benchmark-disable      # smoke: 40 files, each once

``DICOMSCRUB_BENCH_DASK_BATCH``: the batch size of the cluster runs (default: the tree's files
/ 8 for the throughput runs, / 4 for the overhead, between 8 and 256, so that every worker gets
several batches). The pipelined runs also print how busy the workers were (the share of the
wall time they spent in batches): what the Dask overhead costs when batches queue up.

The client, the scheduler and the workers share this machine's cores: figures on a 2-core
machine say little about a cluster (the client is the bottleneck there), and a loaded machine
moves the overhead (a no-op Dask task's round trip is printed for scale).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from dicomscrub import Anonymizer, Profile  # noqa: E402
from dicomscrub.cluster import ClusterTreeRun  # noqa: E402
from dicomscrub.tree import TreeOptions  # noqa: E402

KEY = b"dicomscrub bench key"
TARGET = 0.10  # overhead per batch, fraction of the batch's work on its worker
ENGINES = ("local", "dask-1", "dask-2")
FIGURES: dict[str, float] = {}


def _disabled(config: pytest.Config) -> bool:
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:
        return True


def _batch(n_files: int, per: int) -> int:
    return int(os.environ.get("DICOMSCRUB_BENCH_DASK_BATCH") or min(256, max(8, n_files // per)))


@pytest.fixture(scope="module")
def batch_size(bench_tree: Any) -> int:
    return _batch(bench_tree.n_files, 8)


@pytest.fixture(scope="module")
def anon() -> Anonymizer:
    return Anonymizer(Profile.basic(), key=KEY)


@pytest.fixture(scope="module")
def clients() -> Any:
    """LocalClusters of N worker processes (1 thread each), started on first use."""
    made: dict[int, tuple[Any, Any]] = {}

    def get(n: int) -> Any:
        if n not in made:
            cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            made[n] = (cluster, distributed.Client(cluster))
        return made[n][1]

    yield get
    for cluster, client in made.values():
        client.close()
        cluster.close()


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if ".dicomscrub" in dirnames:
            dirnames.remove(".dicomscrub")
        for f in filenames:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _run(anon: Anonymizer, engine: str, src: Path, dst: Path, batch: int, get: Any) -> Any:
    if engine == "local":
        return anon.anonymize_tree(src, dst, progress=False, jobs=2)
    n = int(engine.split("-")[1])
    opts = TreeOptions(progress=False, batch_size=batch)
    return ClusterTreeRun(anon, str(src), str(dst), opts, cluster=get(n)).run()


@pytest.fixture(scope="module")
def reference(anon: Anonymizer, bench_tree: Any, bench_work: Path) -> dict[str, str]:
    """The local engine's outputs (digests): every cluster run must match them."""
    out = bench_work / "dask-reference"
    shutil.rmtree(out, ignore_errors=True)
    rep = anon.anonymize_tree(bench_tree.files_dir, out, progress=False, jobs=2)
    assert rep.failed == 0, rep.failures[:3]
    digests = _digest(out)
    shutil.rmtree(out, ignore_errors=True)
    return digests


@pytest.mark.parametrize("engine", ENGINES)
def test_dask_tree(
    benchmark: Any,
    engine: str,
    anon: Anonymizer,
    bench_tree: Any,
    bench_work: Path,
    bench_rounds: int,
    batch_size: int,
    clients: Any,
    reference: dict[str, str],
) -> None:
    benchmark.group = f"dask: tree of {bench_tree.n_files} files"
    src, out = bench_tree.files_dir, bench_work / f"dask-{engine}"
    shutil.rmtree(out, ignore_errors=True)
    first = _run(anon, engine, src, out, batch_size, clients)  # correctness first
    assert first.failed == 0 and first.ok == bench_tree.n_files
    assert _digest(out) == reference, f"{engine}: outputs differ from the local engine's"
    reports: list[Any] = []

    def setup() -> None:
        shutil.rmtree(out, ignore_errors=True)

    def target() -> None:
        reports.append(_run(anon, engine, src, out, batch_size, clients))

    benchmark.pedantic(target, setup=setup, rounds=bench_rounds, iterations=1)
    shutil.rmtree(out, ignore_errors=True)
    best = min(r.duration for r in reports)
    files_s = bench_tree.n_files / best
    FIGURES[engine] = files_s
    benchmark.extra_info.update(files=bench_tree.n_files, files_per_s=files_s, batch=batch_size)
    extra = ""
    if engine != "local" and "local" in FIGURES:
        extra = f" ({files_s / FIGURES['local']:.2f}x the local engine)"
    if reports[-1].cluster:
        extra += f", workers busy {100 * reports[-1].cluster['busy']:.0f}%"
    print(f"\n{engine}: {files_s:,.0f} files/s over {bench_tree.n_files} files{extra}")


def _noop(x: Any) -> Any:
    return x


def test_dask_overhead_per_batch(
    anon: Anonymizer, bench_tree: Any, bench_work: Path, clients: Any
) -> None:
    """One worker, one batch at a time: client wall time minus worker time, per batch."""
    batch_size = _batch(bench_tree.n_files, 4)
    client = clients(1)
    trips = []
    for i in range(20):
        t = time.perf_counter()
        client.submit(_noop, i, pure=False).result()
        trips.append(time.perf_counter() - t)
    out = bench_work / "dask-overhead"
    shutil.rmtree(out, ignore_errors=True)
    opts = TreeOptions(progress=False, batch_size=batch_size)
    run = ClusterTreeRun(
        anon, str(bench_tree.files_dir), str(out), opts, cluster=client, max_inflight=1
    )
    rep = run.run()
    shutil.rmtree(out, ignore_errors=True)
    assert rep.failed == 0 and run.stats.timings
    timings = run.stats.timings[1:] or run.stats.timings  # the first pays the worker's imports
    overhead = [wall - work for wall, work in timings]
    work = sum(w for _, w in timings)
    share = sum(overhead) / work if work else float("inf")
    verdict = "PASS" if share < TARGET else "FAIL"
    print(
        f"\ndask overhead per batch ({len(timings)} batches of <= {batch_size} files): "
        f"{1e3 * statistics.mean(overhead):.1f} ms (median "
        f"{1e3 * statistics.median(overhead):.1f} ms) over "
        f"{1e3 * work / len(timings):.1f} ms of work on the worker = {100 * share:.1f}% "
        f"(target < {100 * TARGET:.0f}%): {verdict}\n  (a no-op Dask task's round trip: median "
        f"{1e3 * statistics.median(trips):.1f} ms; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores)"
    )
