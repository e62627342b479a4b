"""The tree engine on a Dask cluster: ``anonymize_tree(..., cluster=)`` and ``dicomscrub run
--dask ADDRESS``. Imported only then (the ``dask`` extra: ``pip install 'dicomscrub[dask]'``).

The client (the process that runs ``anonymize_tree``) does what it does in a local run, except
the core's work:

1. it walks the source, cuts the files into batches (``batch_size`` files, at most
   ``batch_bytes`` bytes), decides each file (resume, refuse) and marks the work ``pending``
   in the journal, as :class:`dicomscrub.tree.TreeRun` does;
2. it submits each batch to the cluster: :func:`run_batch` runs ``_core.anonymize_batch`` on a
   worker, which reads the source and writes the outputs through the **shared file system**
   (same paths on every machine) and syncs them; a bounded number of batches is in flight;
3. results stream back as they complete (``as_completed``) and the client records them: the
   journal and the report of the run are written by the client only (in walk order for the
   ``patient/study/series`` layout, whose duplicate names depend on it).

Every pseudonym, UID and date shift derives from the key alone, so the outputs are byte-identical
to a local run's. A batch whose worker dies is run again elsewhere (Dask reschedules it; an
exception is retried ``retries`` times). A retried batch may find outputs of its first attempt:
every output of a batch is recorded pending for that batch before it is submitted (the client
made sure the path was free, or deleted its own older output), so the attempt that finds the
batch's claim file taken (see :func:`run_batch`) writes over them and sweeps the temporary files
of its outputs. A batch still failing then (it keeps killing workers) is recorded ``failed``
(``WorkerLost``) with its outputs removed, and the run goes on; the next run tries it again.

The key reaches the workers inside :class:`PlanSpec`, whose ``repr`` (what Dask logs of task
arguments) shows its fingerprint only; a worker compiles the plan once per process. Use TLS on a
real cluster (``tls://`` addresses): task arguments travel over Dask's connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distributed import Client, as_completed, wait

from dicomscrub import _core
from dicomscrub.errors import OutputError
from dicomscrub.tree import TreeOptions, TreeRun, _Batch, _unlink
from dicomscrub.walk import TEMP_NAME, Entry

if TYPE_CHECKING:
    from dicomscrub.anonymizer import Anonymizer

BATCH_BYTES = 256 << 20  # a batch holds at most this many bytes (a big file goes alone)
RETRIES = 2  # a batch that raises is tried again this many times (a dead worker: Dask's
# distributed.scheduler.allowed-failures, 3 by default, decides)
WORKER_LOST = "WorkerLost"
TEMP_SUFFIX = ".dicomscrub-tmp"
DRAIN_S = 60.0  # on an interruption, how long to let the batches in flight finish

__all__ = ["BATCH_BYTES", "ClusterTreeRun", "PlanSpec", "connect", "run_batch"]

log = logging.getLogger(__name__)


# -- what runs on the workers ------------------------------------------------------------------


class PlanSpec:
    """What a worker needs to build the plan: the plan JSON and the key. Its ``repr`` and
    ``str`` (what Dask logs of a task's arguments) show the key's fingerprint, never the key."""

    __slots__ = ("_secret", "fingerprint", "plan_id", "plan_json")

    def __init__(self, plan_json: str, secret: bytes, plan_id: str, fingerprint: str) -> None:
        self.plan_json = plan_json
        self._secret = bytes(secret)
        self.plan_id = plan_id
        self.fingerprint = fingerprint

    @classmethod
    def of(cls, anon: Anonymizer) -> PlanSpec:
        return cls(anon._plan_json, anon.key.secret, anon.plan_id, anon.key.fingerprint)

    @property
    def secret(self) -> bytes:
        return self._secret

    def __repr__(self) -> str:
        return f"PlanSpec(plan_id={self.plan_id!r}, key_fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __getstate__(self) -> tuple[str, bytes, str, str]:
        return (self.plan_json, self._secret, self.plan_id, self.fingerprint)

    def __setstate__(self, state: tuple[str, bytes, str, str]) -> None:
        self.plan_json, self._secret, self.plan_id, self.fingerprint = state


_PLANS: dict[str, _core.Plan] = {}  # per worker process: plan_id -> compiled plan
_PLANS_LOCK = threading.Lock()


def _plan(spec: PlanSpec) -> _core.Plan:
    """The compiled plan of ``spec``, built once per process (plan_id covers plan and key)."""
    plan = _PLANS.get(spec.plan_id)
    if plan is None:
        with _PLANS_LOCK:
            plan = _PLANS.get(spec.plan_id)
            if plan is None:
                plan = _core.Plan(spec.plan_json, spec.secret)
                _PLANS[spec.plan_id] = plan
    return plan


class SharedFilesystemError(RuntimeError):
    """A worker does not see the run's folders (they must be shared, at the same paths)."""


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:  # not in a worker
        return f"{socket.gethostname()}:{os.getpid()}"


def _claim(path: str) -> bool:
    """Take the claim file of a batch: True for its first attempt, False when an earlier attempt
    took it (that attempt died or raised)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, f"{_worker_name()} pid {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    return True


def _sweep_temp_files(dsts: Iterable[str]) -> int:
    """Delete the temporary files of ``dsts`` (``.NAME.PID-N.dicomscrub-tmp`` beside each)
    that an earlier, killed attempt left."""
    by_dir: dict[str, set[str]] = {}
    for d in dsts:
        folder, name = os.path.split(d)
        by_dir.setdefault(folder, set()).add("." + name)
    n = 0
    for folder, stems in by_dir.items():
        try:
            with os.scandir(folder) as it:
                names = [e.name for e in it if TEMP_NAME.match(e.name)]
        except OSError:
            continue
        for name in names:  # .NAME.PID-N.dicomscrub-tmp -> .NAME
            if name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[0] in stems:
                _unlink(os.path.join(folder, name))
                n += 1
    return n


def run_batch(
    spec: PlanSpec,
    pairs: list[tuple[str, str]],
    *,
    claim: str,
    probe: str,
    jobs: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """One batch on a worker: ``_core.anonymize_batch`` (GIL released), outputs synced.

    ``probe``: a file the client wrote in the destination (a worker that does not see it writes
    nothing). ``claim``: the batch's claim file; when an earlier attempt took it, this is a
    retry: every output of the batch is this batch's own (the journal holds them pending for
    it), so this attempt may write over what the earlier one left, and sweeps its temporary
    files. Returns the records and the time the batch took here.
    """
    t0 = time.perf_counter()
    if not os.path.exists(probe):
        raise SharedFilesystemError(
            f"worker {_worker_name()} does not see the destination ({probe} is missing): the "
            "source and the destination must be on a file system every worker mounts at the "
            "same path"
        )
    retry = not _claim(claim)
    if retry:
        _sweep_temp_files(d for _, d in pairs)
        overwrite = True
    records = _core.anonymize_batch(pairs, _plan(spec), jobs=jobs, overwrite=overwrite, sync=True)
    return {
        "records": records,
        "seconds": time.perf_counter() - t0,
        "worker": _worker_name(),
        "retry": retry,
    }


def _sees(src: str, probe: str) -> bool:
    return os.path.isdir(src) and os.path.isfile(probe)


# -- connecting ---------------------------------------------------------------------------------


@contextlib.contextmanager
def connect(cluster: Any) -> Iterator[Client]:
    """A :class:`distributed.Client` for ``cluster``, closed on exit when made here:

    - a ``Client``: used as it is;
    - a cluster object (``LocalCluster``, dask-jobqueue's ``SLURMCluster``, dask-kubernetes'
      ``KubeCluster``...): a client of it;
    - ``"local"`` or ``"local:N"``: a ``LocalCluster`` of N worker processes (default: the
      cores), one thread each, started here and closed at the end;
    - the path of a scheduler file (``dask scheduler --scheduler-file``);
    - a scheduler address (``tcp://host:8786``, ``tls://...``).
    """
    if isinstance(cluster, Client):
        yield cluster
        return
    if hasattr(cluster, "scheduler_address"):
        with Client(cluster) as client:
            yield client
        return
    if not isinstance(cluster, str) or not cluster:
        raise ValueError(f"cluster: a dask Client, a cluster or an address, not {cluster!r}")
    if cluster == "local" or cluster.startswith("local:"):
        n_text = cluster.partition(":")[2]
        try:
            n = int(n_text) if n_text else (os.cpu_count() or 1)
        except ValueError:
            raise ValueError(f"local:N needs a number of workers, not {n_text!r}") from None
        if n < 1:
            raise ValueError("local:N needs at least one worker")
        from distributed import LocalCluster

        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            ) as local,
            Client(local) as client,
        ):
            yield client
        return
    if os.path.isfile(cluster):
        with Client(scheduler_file=cluster) as client:
            yield client
        return
    with Client(cluster) as client:
        yield client


# -- the client side ---------------------------------------------------------------------------


def _chunks(entries: Iterable[Entry], max_files: int, max_bytes: int) -> Iterator[list[Entry]]:
    """Batches of at most ``max_files`` files and ``max_bytes`` bytes (a bigger file alone)."""
    chunk: list[Entry] = []
    nbytes = 0
    for e in entries:
        if chunk and nbytes + e.size > max_bytes:
            yield chunk
            chunk, nbytes = [], 0
        chunk.append(e)
        nbytes += e.size
        if len(chunk) >= max_files:
            yield chunk
            chunk, nbytes = [], 0
    if chunk:
        yield chunk


def _resolved(records: list[dict[str, Any]]) -> Future[list[dict[str, Any]]]:
    f: Future[list[dict[str, Any]]] = Future()
    f.set_result(records)
    return f


@dataclass
class _Flight:
    seq: int
    batch: _Batch
    future: Any  # distributed.Future
    submitted: float


@dataclass
class ClusterStats:
    """What the cluster did (``Report.cluster``); ``timings``: per batch, (seconds from submit
    to result on the client, seconds of the batch on its worker)."""

    scheduler: str = ""
    workers: int = 0
    threads: int = 0
    batches: int = 0
    retried: int = 0
    lost: int = 0
    worker_seconds: float = 0.0
    wall: float = 0.0
    timings: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self, batch_files: int, batch_bytes: int) -> dict[str, Any]:
        busy = self.worker_seconds / (self.wall * self.threads) if self.wall and self.threads else 0
        return {
            "scheduler": self.scheduler,
            "workers": self.workers,
            "threads": self.threads,
            "batches": self.batches,
            "retried": self.retried,
            "lost": self.lost,
            "batch_files": batch_files,
            "batch_bytes": batch_bytes,
            "worker_seconds": round(self.worker_seconds, 6),
            "busy": round(min(busy, 1.0), 4),
        }


class ClusterTreeRun(TreeRun):
    """``anonymize_tree`` with the core's batches on a Dask cluster (see the module's doc).

    ``jobs``: the threads of each batch on its worker (default 1: Dask's worker threads are the
    parallelism). ``max_inflight``: batches submitted and not yet recorded (default twice the
    cluster's threads, at least 2; followed as workers come and go).
    """

    #: the function a worker runs for a batch (tests replace it to kill workers)
    batch_function: Any = staticmethod(run_batch)

    def __init__(
        self,
        anonymizer: Anonymizer,
        src: str,
        dst: str,
        options: TreeOptions,
        *,
        cluster: Any,
        batch_bytes: int | None = None,
        max_inflight: int | None = None,
        retries: int = RETRIES,
    ) -> None:
        super().__init__(anonymizer, src, dst, options)
        self.cluster = cluster
        self.batch_bytes = batch_bytes or BATCH_BYTES
        self.max_inflight = max_inflight
        self.retries = retries
        self.stats = ClusterStats()
        if self.batch_bytes < 1:
            raise ValueError("batch_bytes must be at least 1")
        if max_inflight is not None and max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")

    def run(self) -> Any:
        if self.opts.dry_run:  # a sample in memory: here
            return super().run()
        self._validate()
        with connect(self.cluster) as client:
            self.client = client
            self.stats.scheduler = str(client.scheduler.address)
            os.makedirs(self.state, exist_ok=True)
            # this run's folder: the probe workers must see, the claims of its batches
            self.token = secrets.token_hex(8)  # task keys: unique across runs and destinations
            self.work_dir = os.path.join(self.state, f"cluster-{self.token}")
            self.claims = os.path.join(self.work_dir, "claims")
            self.probe = os.path.join(self.work_dir, "probe")
            os.makedirs(self.claims)
            with open(self.probe, "w") as f:
                f.write("dicomscrub: workers check that they see this file\n")
            try:
                self._check_workers()
                return super().run()
            finally:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def _check_workers(self) -> None:
        """Every worker present sees SRC and DST at the same paths (workers that join later are
        checked by each batch)."""
        seen = self.client.run(_sees, self.src, self.probe)
        blind = sorted(w for w, ok in seen.items() if not ok)
        if blind:
            raise OutputError(
                f"{len(blind)} Dask workers ({', '.join(blind[:3])}) do not see {self.src} and "
                f"{self.dst}: the source and the destination must be on a file system every "
                "worker mounts at the same path",
                path=self.dst,
            )

    def _window(self) -> int:
        """Batches to keep in flight (the cluster's size is looked up at most once a second)."""
        now = time.monotonic()
        if now - getattr(self, "_sized_at", -1e9) >= 1.0:
            self._sized_at = now
            nthreads = self.client.nthreads()
            workers, threads = len(nthreads), sum(nthreads.values())
            self.stats.workers = max(self.stats.workers, workers)
            self.stats.threads = max(self.stats.threads, threads)
            self.progress.suffix = f"  [dask: {workers} workers, {threads} threads]"
            self._width = self.max_inflight or max(2, 2 * threads)
        return self._width

    def _batches(self) -> None:
        # stale claim folders of killed cluster runs (we hold the lock: none is running)
        for name in os.listdir(self.state):
            path = os.path.join(self.state, name)
            if name.startswith("cluster-") and path != self.work_dir:
                shutil.rmtree(path, ignore_errors=True)
        spec = PlanSpec.of(self.anon)
        ordered = not self.mirror  # layout names of duplicates follow the walk order
        flights: dict[str, _Flight] = {}
        futures = as_completed()
        done: dict[int, _Batch] = {}  # ordered: completed, waiting for their turn
        turn = 0
        t0 = time.perf_counter()

        def finish(seq: int, batch: _Batch) -> None:
            nonlocal turn
            if not ordered:
                self._complete(batch)
                return
            done[seq] = batch
            while turn in done:
                self._complete(done.pop(turn))
                turn += 1

        try:
            for seq, chunk in enumerate(
                _chunks(self._walk(), self.opts.batch_size, self.batch_bytes)
            ):
                batch = self._prepare(chunk)
                if not batch.work:
                    finish(seq, batch)  # resumed or refused: nothing to run
                    continue
                fut = self.client.submit(
                    self.batch_function,
                    spec,
                    [(i.entry.path, i.dst) for i in batch.work],
                    claim=os.path.join(self.claims, str(batch.batch_id)),
                    probe=self.probe,
                    jobs=self.opts.jobs or 1,
                    overwrite=self.opts.overwrite,
                    key=f"dicomscrub-batch-{self.token}-{batch.batch_id}",
                    pure=False,
                    retries=self.retries,
                )
                flights[fut.key] = _Flight(seq, batch, fut, time.perf_counter())
                futures.add(fut)
                self.stats.batches += 1
                while len(flights) >= self._window():
                    self._collect(next(futures), flights, finish)
            while flights:
                self._collect(next(futures), flights, finish)
        finally:
            self.stats.wall = time.perf_counter() - t0
            if flights:  # interrupted: let the batches in flight end (their outputs are
                # whole, their rows stay pending: the next run redoes them), then forget them
                left = [f.future for f in flights.values()]
                with contextlib.suppress(BaseException):
                    futures.clear()
                    wait(left, timeout=DRAIN_S)
                with contextlib.suppress(BaseException):
                    self.client.cancel(left)
            self.report.cluster = self.stats.to_dict(self.opts.batch_size, self.batch_bytes)

    def _collect(self, fut: Any, flights: dict[str, _Flight], finish: Any) -> None:
        """Record one finished batch (or a lost one)."""
        flight = flights.pop(fut.key)
        batch = flight.batch
        try:
            out = fut.result()
        except Exception as exc:
            if self.client.status not in ("running", "connecting"):
                raise  # the client lost the scheduler: stop (rows stay pending)
            records = self._lost(batch, exc)
        else:
            records = out["records"]
            seconds = float(out["seconds"])
            self.stats.worker_seconds += seconds
            self.stats.timings.append((time.perf_counter() - flight.submitted, seconds))
            self.stats.retried += bool(out["retry"])
        batch.future = _resolved(records)
        finish(flight.seq, batch)

    def _lost(self, batch: _Batch, exc: BaseException) -> list[dict[str, Any]]:
        """A batch that failed on every attempt: its outputs (pending: ours) are removed and
        its files recorded failed; the next run tries them again."""
        self.stats.lost += 1
        why = f"{type(exc).__name__}: {exc}".strip()
        if len(why) > 500:
            why = why[:497] + "..."
        log.warning("dicomscrub: a batch of %d files was lost: %s", len(batch.work), why)
        dsts = [i.dst for i in batch.work if i.dst]
        for d in dsts:
            _unlink(d)
        _sweep_temp_files(dsts)
        return [
            {
                "src": i.entry.path,
                "dst": None,
                "status": "failed",
                "error_kind": WORKER_LOST,
                "message": f"the batch of this file failed on every attempt on the cluster: {why}",
                "bytes_in": i.entry.size,
            }
            for i in batch.work
        ]
