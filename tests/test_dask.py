"""anonymize_tree on Dask (dicomscrub.cluster): a LocalCluster of 2 worker processes, 1 thread
each, on a tree of real corpus files. Outputs byte-identical to a local run, reports complete,
a worker killed in the middle of a batch, a run interrupted then resumed, a batch lost for good,
and a normal run that never imports dask."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from treekit import files_under, make_tree, subset_files, temp_files

from corpus import readable_files

distributed = pytest.importorskip("distributed")

from dicomscrub import Anonymizer, Profile  # noqa: E402
from dicomscrub.cli import main  # noqa: E402
from dicomscrub.cluster import (  # noqa: E402
    WORKER_LOST,
    ClusterTreeRun,
    PlanSpec,
    SharedFilesystemError,
    _sweep_temp_files,
    connect,
    run_batch,
)
from dicomscrub.tree import TreeOptions  # noqa: E402

KEY = b"test key of test_dask"
PYTHONPATH = str(Path(__file__).parents[1] / "python")
EXTRA_FILES = 100  # corpus files beside treekit's subset (small ones: CI time)
BATCH = 8


@pytest.fixture(scope="module")
def client() -> Any:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def anon() -> Anonymizer:
    return Anonymizer(Profile.basic(), key=KEY)


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """treekit's tree (subset, a damaged file, a non-DICOM file), a duplicate of one file (the
    same SOP Instance UID twice: layout suffixes), and 100 more small corpus files."""
    root = make_tree(tmp_path_factory.mktemp("dask") / "src")
    (root / "dup").mkdir()
    shutil.copyfile(subset_files(("CT_small.dcm",))[0], root / "dup" / "CT_small.dcm")
    small = [p for p in readable_files() if p.stat().st_size < 300_000][:EXTRA_FILES]
    for i, p in enumerate(small):
        d = root / "more" / f"f{i % 5}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, d / f"{i:03d}_{p.name}")
    return root


@pytest.fixture(scope="module")
def local_runs(
    anon: Anonymizer, src: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The single-machine runs to compare with: layout -> (report, files)."""
    out = {}
    for layout in ("mirror", "patient/study/series"):
        dst = tmp_path_factory.mktemp("local") / "out"
        rep = anon.anonymize_tree(src, dst, progress=False, layout=layout, batch_size=BATCH)
        out[layout] = (rep, files_under(dst))
    return out


def jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]


def journal_status(dst: Path) -> dict[str, int]:
    db = sqlite3.connect(dst / ".dicomscrub" / "journal.sqlite")
    try:
        return dict(db.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
    finally:
        db.close()


def cluster_run(
    anon: Anonymizer, src: Path, dst: Path, client: Any, fn: Any = None, **kw: Any
) -> ClusterTreeRun:
    retries = kw.pop("retries", 2)
    opts = TreeOptions(**{"progress": False, "batch_size": BATCH, **kw})
    run = ClusterTreeRun(anon, str(src), str(dst), opts, cluster=client, retries=retries)
    if fn is not None:
        run.batch_function = fn
    return run


def assert_complete(dst: Path, rep: Any, local: Any) -> None:
    """Same counts as the local run; the report has every file once; the journal is settled."""
    assert (rep.ok, rep.failed, rep.skipped) == (local.ok, local.failed, local.skipped)
    lines = jsonl(dst / ".dicomscrub" / "report.jsonl")
    assert [x["type"] for x in lines] == ["file"] * rep.files + ["summary"]
    srcs = [x["src"] for x in lines[:-1]]
    assert len(srcs) == len(set(srcs)) == local.files  # each file once
    assert lines[-1]["cluster"]["workers"] == 2
    status = journal_status(dst)
    assert "pending" not in status
    assert status == {"ok": local.ok, "failed": local.failed, "skipped": local.skipped}
    assert temp_files(dst) == []
    assert not list((dst / ".dicomscrub").glob("cluster-*"))  # the run's claims are gone


# -- identical to a local run ------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["mirror", "patient/study/series"])
def test_cluster_output_is_byte_identical_to_a_local_run(
    anon: Anonymizer, src: Path, tmp_path: Path, client: Any, local_runs: Any, layout: str
) -> None:
    local, expected = local_runs[layout]
    dst = tmp_path / "out"
    run = cluster_run(anon, src, dst, client, layout=layout)
    rep = run.run()
    assert files_under(dst) == expected  # same names, same bytes (and nothing else)
    assert_complete(dst, rep, local)
    assert rep.cluster is not None and rep.cluster["batches"] >= local.files // BATCH
    assert rep.cluster["retried"] == 0 and rep.cluster["lost"] == 0
    assert len(run.stats.timings) == rep.cluster["batches"]
    q_local = local.quarantine_path and Path(local.quarantine_path).read_text()
    assert q_local and Path(rep.quarantine_path).read_text() == q_local
    if layout != "mirror":
        assert any(name.endswith("_2.dcm") for name in expected)  # the duplicate


# -- a worker dies in the middle of a batch ----------------------------------------------------


def _killer(marker: str) -> Any:
    """A batch function whose first call anywhere writes half its outputs, leaves a torn
    temporary file, then kills its worker process (os._exit); later calls run normally."""

    def batch(spec: Any, pairs: list[tuple[str, str]], **kw: Any) -> Any:
        import os

        from dicomscrub import cluster

        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return cluster.run_batch(spec, pairs, **kw)
        os.close(fd)
        half = max(1, len(pairs) // 2)
        cluster.run_batch(spec, pairs[:half], **kw)  # outputs written whole, claim taken
        folder, name = os.path.split(pairs[-1][1])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f".{name}.4242-7.dicomscrub-tmp"), "wb") as f:
            f.write(b"torn")
        os._exit(1)

    return batch


def test_killed_worker_batch_is_redone_elsewhere(
    anon: Anonymizer, src: Path, tmp_path: Path, client: Any, local_runs: Any
) -> None:
    local, expected = local_runs["mirror"]
    dst = tmp_path / "out"
    marker = tmp_path / "killed"
    run = cluster_run(anon, src, dst, client, fn=_killer(str(marker)))
    rep = run.run()
    assert marker.exists()  # a worker did die
    assert rep.cluster["retried"] == 1 and rep.cluster["lost"] == 0
    # the retry wrote over the first attempt's outputs, swept its temporary file
    assert files_under(dst) == expected
    assert_complete(dst, rep, local)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it


# -- interrupted, then resumed -----------------------------------------------------------------


class _InterruptOnce:
    """A progress stream whose first write interrupts the run (as a Ctrl-C would)."""

    def __init__(self) -> None:
        self.fired = False

    def write(self, text: str) -> int:
        if not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return len(text)

    def flush(self) -> None:
        pass


def test_interrupted_cluster_run_resumes(
    anon: Anonymizer, src: Path, tmp_path: Path, client: Any, local_runs: Any
) -> None:
    local, expected = local_runs["mirror"]
    dst = tmp_path / "out"
    first = cluster_run(anon, src, dst, client, progress=True, stream=_InterruptOnce())
    with pytest.raises(KeyboardInterrupt):
        first.run()
    status = journal_status(dst)
    assert status.get("pending", 0) > 0  # batches that were in flight
    done = status.get("ok", 0) + status.get("skipped", 0) + status.get("failed", 0)
    assert 0 < done < local.files
    again = cluster_run(anon, src, dst, client).run()
    assert again.resumed > 0 and again.resumed == done - status.get("failed", 0)
    assert files_under(dst) == expected
    assert_complete(dst, again, local)
    # a third run resumes what a local re-run resumes; only the damaged file goes out again
    third = cluster_run(anon, src, dst, client)
    rep = third.run()
    local_again = anon.anonymize_tree(src, local.dst, progress=False, batch_size=BATCH)
    assert rep.resumed == local_again.resumed > 0 and third.stats.batches == 1
    assert files_under(dst) == expected


# -- a batch that fails on every attempt -------------------------------------------------------


def _fails_on(name: str) -> Any:
    def batch(spec: Any, pairs: list[tuple[str, str]], **kw: Any) -> Any:
        from dicomscrub import cluster

        if any(os.path.basename(s) == name for s, _ in pairs):
            cluster.run_batch(spec, pairs, **kw)  # outputs written, then the batch "crashes"
            raise RuntimeError("simulated crash")
        return cluster.run_batch(spec, pairs, **kw)

    return batch


def test_lost_batch_is_recorded_failed_then_redone(
    anon: Anonymizer, src: Path, tmp_path: Path, client: Any, local_runs: Any
) -> None:
    local, expected = local_runs["mirror"]
    dst = tmp_path / "out"
    rep = cluster_run(anon, src, dst, client, fn=_fails_on("rtplan.dcm"), retries=1).run()
    assert rep.cluster["lost"] == 1
    lost = [r for r in rep.failures if r.error_kind == WORKER_LOST]
    assert 0 < len(lost) <= BATCH and "simulated crash" in (lost[0].message or "")
    assert not any(p.endswith("/rtplan.dcm") for p in files_under(dst))  # outputs removed
    assert temp_files(dst) == []
    again = cluster_run(anon, src, dst, client).run()  # failed files are tried again
    assert files_under(dst) == expected
    assert_complete(dst, again, local)


# -- the command line ---------------------------------------------------------------------------


def test_cli_run_with_dask_address(
    src: Path, tmp_path: Path, client: Any, local_runs: Any, capsys: Any
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    dst = tmp_path / "out"
    address = client.scheduler.address
    argv = ["run", str(src), str(dst), "--key-file", str(key_file), "--no-progress"]
    code = main([*argv, "--dask", address, "--batch-size", str(BATCH)])
    assert code == 1  # the damaged file
    assert files_under(dst) == local_runs["mirror"][1]
    out = capsys.readouterr().out
    assert "cluster" in out and "2 Dask workers" in out
    bad = ["run", str(src), str(tmp_path / "x"), "--key-file", str(key_file), "--dask"]
    assert main([*bad, "local:zero"]) == 2


def test_run_without_dask_never_imports_it(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    code = f"""
import sys
from dicomscrub.cli import main
code = main(["run", {str(src)!r}, {str(tmp_path / "out")!r}, "--key-file",
             {str(tmp_path / "key")!r}, "--no-progress"])
assert code == 1, code
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in ("dask", "distributed") or m == "dicomscrub.cluster")
print(loaded)
"""
    (tmp_path / "key").write_bytes(KEY)
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


# -- the pieces --------------------------------------------------------------------------------


def test_plan_spec_never_shows_the_key(anon: Anonymizer) -> None:
    spec = PlanSpec.of(anon)
    for text in (repr(spec), str(spec), str((spec, [("a", "b")]))):
        assert KEY.decode() not in text and KEY.hex() not in text
        assert anon.key.fingerprint in text
    back = pickle.loads(pickle.dumps(spec))  # it travels to the workers
    assert back.secret == KEY and back.plan_id == anon.plan_id


def test_worker_that_does_not_see_the_destination_writes_nothing(
    anon: Anonymizer, tmp_path: Path
) -> None:
    src = subset_files(("CT_small.dcm",))[0]
    out = tmp_path / "out" / "a.dcm"
    with pytest.raises(SharedFilesystemError, match="does not see the destination"):
        run_batch(
            PlanSpec.of(anon),
            [(str(src), str(out))],
            claim=str(tmp_path / "claim"),
            probe=str(tmp_path / "missing"),
        )
    assert not out.exists() and not (tmp_path / "claim").exists()


def test_retry_writes_over_its_own_outputs_and_sweeps_temp_files(
    anon: Anonymizer, tmp_path: Path
) -> None:
    src = subset_files(("CT_small.dcm",))[0]
    out = tmp_path / "out" / "a.dcm"
    probe, claim = tmp_path / "probe", str(tmp_path / "claim")
    probe.write_text("")
    spec = PlanSpec.of(anon)
    first = run_batch(spec, [(str(src), str(out))], claim=claim, probe=str(probe))
    assert not first["retry"] and first["records"][0]["status"] == "ok"
    torn = out.parent / ".a.dcm.4242-7.dicomscrub-tmp"
    other = out.parent / ".b.dcm.4242-8.dicomscrub-tmp"  # not this batch's
    torn.write_bytes(b"x")
    other.write_bytes(b"x")
    second = run_batch(spec, [(str(src), str(out))], claim=claim, probe=str(probe))
    assert second["retry"] and second["records"][0]["status"] == "ok"  # not "output exists"
    assert not torn.exists() and other.exists()
    assert _sweep_temp_files([str(out.parent / "b.dcm")]) == 1


@pytest.mark.parametrize("bad", ["local:0", "local:x", "", 42])
def test_connect_refuses_bad_cluster_values(bad: Any) -> None:
    with pytest.raises(ValueError), connect(bad):
        pass
