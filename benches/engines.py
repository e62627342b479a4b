"""The engines of the benchmark, their runners, the output check and the measurement.

Every engine does the same job: a basic de-identification of a whole tree, disk to disk, from
``SRC`` to ``DST`` with the same relative paths, the output made durable at the end (``syncfs``
of DST's file system; dicomscrub also syncs once per batch of 256 files, its product
behaviour). An engine runs in a child process of its own (``python benches/engines.py run
ENGINE SRC DST``, or a command for ``cp`` and for engines given as commands), so its wall time
covers start-up and imports; a small launcher process starts it and reads its peak RSS as
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the launcher's own few MiB are a floor: ``cp`` shows
them). The parent syncs every file system before each run, so no other dirty data is flushed on
an engine's time.

Before an engine's time counts, its output is checked file by file against the tree's manifest:
pydicom reads every output (without ``force`` when pydicom read the input without it),
PatientName and PatientID differ from the input's (absent or empty counts as changed), and the
bytes of every pixel data element are identical. Files that fail are counted per reason; an
engine is never dropped for failing.

Engines (``ENGINES``; ``peer`` engines are what users would pick instead of dicomscrub):

==================  ======  =============================================================
cp                  floor   ``cp -r SRC DST && sync -f DST``
pydicom             floor   read, blank PatientName and PatientID, write (pure-Python floor)
reference           ours    ``dicomscrub.reference`` with ``Profile.basic()``
deid                peer    ``deid.dicom.replace_identifiers`` with its default recipe
dicognito           peer    ``dicognito.anonymizer.Anonymizer().anonymize(ds)``
dicom-anonymizer    peer    ``dicomanonymizer`` basic actions (what ``anonymize()`` runs per file)
dcmanon             peer    ``dcmanon.Anonymizer()`` default config (Rust)
fw-file-rs          peer    ``fw_file_rs.dcm.Context`` header de-id, basic-like profile (Rust)
dicomscrub-1thread  ours    ``Anonymizer.anonymize_tree(jobs=1)``, basic profile (else the core
                            in batches of 256: ``_core.anonymize_batch``)
dicomscrub          ours    the same on all cores
==================  ======  =============================================================

The Python peers are driven the way their documentation shows, one file after the other in one
process (none of them offers a parallel API); the per-file exception is caught so one bad file
does not stop the run.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_KEY = b"dicomscrub benchmark key: not a secret"
BATCH = 256
HERE = Path(__file__).resolve()


# =================================================================== runners (child process)


def _pairs(src: str, dst: str) -> list[tuple[str, str]]:
    """Every file of ``src`` with its destination, sorted (listing the tree is part of the job)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        for name in sorted(filenames):
            out.append((os.path.join(dirpath, name), os.path.join(target, name)))
    return out


def _makedirs(pairs: Sequence[tuple[str, str]]) -> None:
    for d in sorted({os.path.dirname(d) for _, d in pairs}):
        os.makedirs(d, exist_ok=True)


class _Errors:
    """The files an engine reported as failed: count, per kind, a few examples."""

    def __init__(self) -> None:
        self.ready_at: float | None = None  # imports and set-up done, first file next
        self.count = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []

    def add(self, src: str, kind: str, message: str) -> None:
        self.count += 1
        self.kinds[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{os.path.basename(src)}: {kind}: {message}"[:300])


FileRunner = Callable[[Sequence[tuple[str, str]], "_Errors", int | None], None]
TreeRunner = Callable[[str, str, "_Errors", int | None], dict[str, Any]]


def _per_file(
    pairs: Sequence[tuple[str, str]], fn: Callable[[str, str], None], errors: _Errors
) -> None:
    errors.ready_at = errors.ready_at or time.perf_counter()
    _makedirs(pairs)
    for s, d in pairs:
        try:
            fn(s, d)
        except Exception as e:
            errors.add(s, type(e).__name__, str(e))


def run_pydicom(pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None) -> None:
    import pydicom

    def one(s: str, d: str) -> None:
        ds = pydicom.dcmread(s, force=True)
        ds.PatientName = ""
        ds.PatientID = ""
        ds.save_as(d, enforce_file_format=False)

    _per_file(pairs, one, errors)


def run_reference(pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None) -> None:
    from dicomscrub import reference
    from dicomscrub.profiles import Profile

    plan = Profile.basic().to_plan()
    _per_file(pairs, lambda s, d: reference.anonymize_file(s, d, plan, BENCH_KEY), errors)


def run_deid(pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None) -> None:
    os.environ.setdefault("MESSAGELEVEL", "0")  # deid's logger: errors only
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    recipe = DeidRecipe()  # the default recipe (deid/data/deid.dicom), loaded once

    def one(s: str, d: str) -> None:
        (ds,) = replace_identifiers([s], deid=recipe, save=False)
        ds.save_as(d, enforce_file_format=False)

    _per_file(pairs, one, errors)


def run_dicognito(pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None) -> None:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()

    def one(s: str, d: str) -> None:
        ds = pydicom.dcmread(s)
        anonymizer.anonymize(ds)
        ds.save_as(d)

    _per_file(pairs, one, errors)


def run_dicom_anonymizer(
    pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None
) -> None:
    # ``dicomanonymizer.anonymize(folder, folder, {}, True)`` runs exactly this per file (with a
    # progress bar, one flat folder at a time, and stopping at the first exception).
    from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file

    _per_file(pairs, lambda s, d: anonymize_dicom_file(s, d, {}, True), errors)


def run_dcmanon(pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None) -> None:
    from dcmanon import Anonymizer

    anonymizer = Anonymizer()

    def one(s: str, d: str) -> None:
        data = anonymizer.anonymize(s)
        with open(d, "wb") as f:
            f.write(data)

    _per_file(pairs, one, errors)


#: A profile for fw-file-rs close to the basic profile's core (it ships no default profile).
FW_FILE_PROFILE = """\
version: 1
name: bench-basic
dicom:
  date-increment: -17
  remove-private-tags: true
  recurse-sequence: true
  fields:
    - {name: PatientName, replace-with: ANONYMOUS}
    - {name: PatientID, hash: true}
    - {name: PatientBirthDate, remove: true}
    - {name: PatientAddress, remove: true}
    - {name: OtherPatientIDs, remove: true}
    - {name: OtherPatientNames, remove: true}
    - {name: ReferringPhysicianName, replace-with: ""}
    - {name: PerformingPhysicianName, remove: true}
    - {name: OperatorsName, remove: true}
    - {name: InstitutionName, remove: true}
    - {name: InstitutionAddress, remove: true}
    - {name: StationName, remove: true}
    - {name: AccessionNumber, hash: true}
    - {name: StudyID, hash: true}
    - {name: StudyDate, increment-date: true}
    - {name: SeriesDate, increment-date: true}
    - {name: AcquisitionDate, increment-date: true}
    - {name: ContentDate, increment-date: true}
    - {name: StudyInstanceUID, hashuid: true}
    - {name: SeriesInstanceUID, hashuid: true}
    - {name: SOPInstanceUID, hashuid: true}
    - {name: FrameOfReferenceUID, hashuid: true}
    - {name: MediaStorageSOPInstanceUID, hashuid: true}
"""


def _fw_context() -> Any:
    from fw_file_rs.dcm import Context

    return Context().deid_profile(FW_FILE_PROFILE)


def run_fw_file_rs(pairs: Sequence[tuple[str, str]], errors: _Errors, jobs: int | None) -> None:
    ctx = _fw_context()

    def one(s: str, d: str) -> None:
        # the library's own path: read the header (up to the pixels), de-identify it, then
        # write it followed by the rest of the file, which it never parses
        header = ctx.read_until_pixels(s)
        out = ctx.deid_header(header)
        with open(s, "rb") as f, open(d, "wb") as g:
            f.seek(len(header))
            g.write(out)
            shutil.copyfileobj(f, g, 1 << 20)

    _per_file(pairs, one, errors)


def _dicomscrub(jobs: int | None) -> TreeRunner:
    """dicomscrub with the basic profile: ``Anonymizer.anonymize_tree`` (what ``dicomscrub run``
    does: walk, batches of 256 through the core, one sync per batch, journal and report), or,
    without that API or with ``DICOMSCRUB_BENCH_API=core``, ``_core.anonymize_batch`` in
    batches of 256 over the listed tree."""

    def run(src: str, dst: str, errors: _Errors, jobs_arg: int | None) -> dict[str, Any]:
        j = jobs if jobs is not None else jobs_arg
        tree_api = os.environ.get("DICOMSCRUB_BENCH_API", "tree") != "core"
        if tree_api:
            try:
                from dicomscrub.anonymizer import Anonymizer
            except ImportError:
                tree_api = False
            else:
                tree_api = hasattr(Anonymizer, "anonymize_tree")
        if tree_api:
            anonymizer = Anonymizer(key=BENCH_KEY)
            errors.ready_at = time.perf_counter()
            report = anonymizer.anonymize_tree(src, dst, jobs=j, progress=False)
            for r in report.failures:
                errors.add(r.src, r.error_kind or str(r.status), r.message or "")
            errors.count = report.failed + report.skipped
            errors.kinds.update({k: v for k, v in report.errors.items() if k not in errors.kinds})
            return {"files": report.files, "api": "Anonymizer.anonymize_tree"}
        from dicomscrub import _core
        from dicomscrub.profiles import Profile

        plan = _core.Plan(Profile.basic().to_json(), BENCH_KEY)
        errors.ready_at = time.perf_counter()
        pairs = _pairs(src, dst)
        for k in range(0, len(pairs), BATCH):
            for rec in _core.anonymize_batch(pairs[k : k + BATCH], plan, jobs=j, sync=True):
                if rec["status"] != "ok":
                    errors.add(rec["src"], rec["error_kind"] or rec["status"], rec["message"] or "")
        return {"files": len(pairs), "api": "_core.anonymize_batch"}

    return run


def _per_file_tree(fn: FileRunner) -> TreeRunner:
    def run(src: str, dst: str, errors: _Errors, jobs: int | None) -> dict[str, Any]:
        pairs = _pairs(src, dst)
        fn(pairs, errors, jobs)
        return {"files": len(pairs)}

    return run


# ----------------------------------------------------------------- in memory, one file at a time


MICRO = ("dicomscrub", "dcmanon", "fw-file-rs", "pydicom", "dicognito", "reference")


def micro_fn(name: str, path: str) -> Callable[[], Any]:
    """A function that de-identifies the file ``path``, held in memory, once (bytes to bytes),
    in this process and thread, as engine ``name`` would."""
    import io

    data = Path(path).read_bytes()
    fn: Callable[[], Any]
    if name in ("dicomscrub", "dicomscrub-1thread"):
        from dicomscrub import _core
        from dicomscrub.profiles import Profile

        plan = _core.Plan(Profile.basic().to_json(), BENCH_KEY)

        def fn() -> Any:
            return _core.anonymize_bytes(data, plan)
    elif name == "dcmanon":
        from dcmanon import Anonymizer

        anonymizer = Anonymizer()

        def fn() -> Any:
            return anonymizer.anonymize(io.BytesIO(data))
    elif name == "fw-file-rs":
        ctx = _fw_context()
        n = len(ctx.read_until_pixels(path))

        def fn() -> Any:
            return ctx.deid_header(data[:n]) + data[n:]
    elif name == "pydicom":
        import pydicom

        def fn() -> Any:
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            ds.PatientName = ""
            ds.PatientID = ""
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=False)
            return out.getvalue()
    elif name == "dicognito":
        import pydicom
        from dicognito.anonymizer import Anonymizer as Dicognito

        anonymizer = Dicognito()

        def fn() -> Any:
            ds = pydicom.dcmread(io.BytesIO(data))
            anonymizer.anonymize(ds)
            out = io.BytesIO()
            ds.save_as(out)
            return out.getvalue()
    elif name == "reference":
        import pydicom

        from dicomscrub import reference
        from dicomscrub.profiles import Profile

        plan = Profile.basic().to_plan()

        def fn() -> Any:
            ds = reference.apply_plan(
                pydicom.dcmread(io.BytesIO(data), force=True), plan, BENCH_KEY
            )
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=False)
            return out.getvalue()
    else:
        raise ValueError(f"no in-memory runner for {name}")
    return fn


def micro(name: str, path: str, budget_s: float, max_iterations: int) -> dict[str, Any]:
    """Per-file time of one engine on one file held in memory (input bytes to output bytes)."""
    fn = micro_fn(name, path)
    fn()  # warm up (first-call imports and caches)
    n_it = 0
    t0 = time.perf_counter()
    while True:
        fn()
        n_it += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= budget_s or n_it >= max_iterations:
            break
    return {"engine": name, "file": path, "iterations": n_it, "per_file_s": elapsed / n_it}


def syncfs(path: str) -> None:
    """Flush the file system that holds ``path`` (``syncfs``, what ``sync -f`` and dicomscrub
    do), or every file system where that call is missing."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def _child_main(argv: Sequence[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="engines.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one engine over a tree")
    r.add_argument("engine")
    r.add_argument("src")
    r.add_argument("dst")
    r.add_argument("--jobs", type=int)
    m = sub.add_parser("micro", help="in-memory per-file time of one engine")
    m.add_argument("engine")
    m.add_argument("file")
    m.add_argument("--budget", type=float, default=1.0)
    m.add_argument("--max-iterations", type=int, default=2000)
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if a.cmd == "micro":
        print(json.dumps(micro(a.engine, a.file, a.budget, a.max_iterations)))
        return 0
    runner = RUNNERS.get(a.engine)
    if runner is None:
        raise SystemExit(f"no runner for engine {a.engine!r}")
    t0 = time.perf_counter()
    errors = _Errors()
    info = runner(a.src, a.dst, errors, a.jobs)
    syncfs(a.dst)  # every engine's output is durable when it ends
    elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": a.engine,
                **info,
                "errors": errors.count,
                "error_kinds": dict(errors.kinds),
                "examples": errors.examples,
                "elapsed_s": elapsed,
                "setup_s": (errors.ready_at - t0) if errors.ready_at else None,
            }
        )
    )
    return 0


RUNNERS: dict[str, TreeRunner] = {
    "pydicom": _per_file_tree(run_pydicom),
    "reference": _per_file_tree(run_reference),
    "deid": _per_file_tree(run_deid),
    "dicognito": _per_file_tree(run_dicognito),
    "dicom-anonymizer": _per_file_tree(run_dicom_anonymizer),
    "dcmanon": _per_file_tree(run_dcmanon),
    "fw-file-rs": _per_file_tree(run_fw_file_rs),
    "dicomscrub-1thread": _dicomscrub(1),
    "dicomscrub": _dicomscrub(None),
}


# ========================================================================= engines (parent)


@dataclasses.dataclass(frozen=True)
class Engine:
    """One engine: ``runner`` names a function of RUNNERS, or ``command`` is an argv with
    ``{src}``/``{dst}`` (and ``{jobs}``) placeholders run as it is."""

    name: str
    kind: str  # "floor", "ours", "peer"
    description: str
    modules: tuple[str, ...] = ()  # what must be importable (the pip package in `package`)
    package: str | None = None
    runner: str | None = None
    command: tuple[str, ...] | None = None
    deidentifies: bool = True
    rust: bool = False

    def unavailable(self) -> str | None:
        """Why the engine cannot run here, or None."""
        import importlib.util

        for mod in self.modules:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                pkg = self.package or mod
                return f"module {mod} not installed (pip install {pkg})"
        if self.command is not None and shutil.which(self.command[0]) is None:
            return f"command {self.command[0]} not found"
        return None


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine(
            "cp",
            "floor",
            "cp -r + sync (the floor)",
            command=("sh", "-c", 'cp -r "$0" "$1" && sync -f "$1"', "{src}", "{dst}"),
            deidentifies=False,
        ),
        Engine(
            "pydicom",
            "floor",
            "pydicom read, blank PatientName/ID, write",
            ("pydicom",),
            runner="pydicom",
        ),
        Engine(
            "reference",
            "ours",
            "dicomscrub.reference (pure Python), basic profile",
            ("pydicom", "dicomscrub.reference"),
            runner="reference",
        ),
        Engine("deid", "peer", "deid, default recipe", ("deid",), runner="deid"),
        Engine("dicognito", "peer", "dicognito Anonymizer()", ("dicognito",), runner="dicognito"),
        Engine(
            "dicom-anonymizer",
            "peer",
            "dicom-anonymizer basic actions",
            ("dicomanonymizer",),
            package="dicom-anonymizer",
            runner="dicom-anonymizer",
        ),
        Engine(
            "dcmanon",
            "peer",
            "dcmanon Anonymizer() default config",
            ("dcmanon",),
            runner="dcmanon",
            rust=True,
        ),
        Engine(
            "fw-file-rs",
            "peer",
            "fw-file-rs header de-id, basic-like profile",
            ("fw_file_rs",),
            package="fw-file-rs",
            runner="fw-file-rs",
            rust=True,
        ),
        Engine(
            "dicomscrub-1thread",
            "ours",
            "dicomscrub, basic profile, 1 thread",
            ("dicomscrub._core",),
            runner="dicomscrub-1thread",
        ),
        Engine(
            "dicomscrub",
            "ours",
            "dicomscrub, basic profile, all cores",
            ("dicomscrub._core",),
            runner="dicomscrub",
        ),
    )
}
PEERS = ("reference", "pydicom", "deid", "dicognito", "dicom-anonymizer", "dcmanon", "fw-file-rs")
ALWAYS = ("cp", "dicomscrub-1thread", "dicomscrub")


def command_engine(name: str, command: str) -> Engine:
    """An engine given as a shell-like command with ``{src}`` and ``{dst}`` placeholders."""
    argv = tuple(shlex.split(command))
    if not argv or not any("{src}" in a for a in argv) or not any("{dst}" in a for a in argv):
        raise ValueError("an engine command needs {src} and {dst}")
    return Engine(name, "peer", f"command: {command}", command=argv)


def _env() -> dict[str, str]:
    """The child's environment: the dicomscrub package this process would import comes first."""
    import importlib.util

    env = dict(os.environ)
    spec = importlib.util.find_spec("dicomscrub")
    if spec is not None and spec.submodule_search_locations:
        root = str(Path(next(iter(spec.submodule_search_locations))).parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONWARNINGS"] = "ignore"
    return env


@dataclasses.dataclass
class Run:
    wall_s: float
    maxrss_kib: int
    returncode: int
    report: dict[str, Any] | None
    stderr_tail: str


#: The process that starts an engine and reports its wall time and peak RSS. It is a small
#: Python of its own (``-S -I``, no imports but ``resource``) because Linux counts the memory of
#: the process that execs into a child's ``ru_maxrss``: spawned straight from this (large)
#: process, every engine would show at least this process's RSS.
LAUNCHER = """\
import os, sys, time, resource
report, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status = os.waitpid(pid, 0)
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(report, "w") as f:
    f.write("%r %d %d" % (wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)))
"""


def run_child(argv: Sequence[str], *, scratch: Path) -> Run:
    """Run ``argv`` to completion; its wall time, peak RSS, exit code and JSON report."""
    scratch.mkdir(parents=True, exist_ok=True)
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    measured = scratch / "measured"
    measured.unlink(missing_ok=True)
    launcher = [sys.executable, "-S", "-I", "-c", LAUNCHER, str(measured)]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*launcher, *argv],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=_env(),
            check=False,
        )
        outer = time.perf_counter() - t0
    report = None
    for line in reversed(out_path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except ValueError:
                pass
            break
    tail = err_path.read_text(errors="replace")[-2000:]
    try:
        wall_text, rss_text, code_text = measured.read_text().split()
        wall, rss, code = float(wall_text), int(rss_text), int(code_text)
    except (OSError, ValueError):  # the launcher itself failed (cannot start argv[0]...)
        wall, rss, code = outer, 0, proc.returncode or 127
    return Run(wall, rss, code, report, tail)


def engine_argv(engine: Engine, src: Path, dst: Path, jobs: int | None) -> list[str]:
    if engine.command is not None:
        subst = {"src": str(src), "dst": str(dst), "jobs": str(jobs or os.cpu_count() or 1)}
        return [a.format(**subst) for a in engine.command]
    argv = [sys.executable, str(HERE), "run", engine.runner or engine.name, str(src), str(dst)]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    return argv


# =========================================================================== the check

CORPUS_MODULE = "dicomscrub_bench_corpus"


def corpus_module() -> Any:
    """benches/corpus.py, imported by path under a name of its own (``corpus`` alone would
    collide with tests/corpus.py)."""
    import importlib.util

    mod = sys.modules.get(CORPUS_MODULE)
    if mod is None:
        spec = importlib.util.spec_from_file_location(CORPUS_MODULE, HERE.parent / "corpus.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[CORPUS_MODULE] = mod
        spec.loader.exec_module(mod)
    return mod


def _check_one(path: Path, expected: dict[str, Any], deidentifies: bool) -> str | None:
    """Why the output file fails the check, or None."""
    import pydicom

    _pixel_digests = corpus_module()._pixel_digests
    if not path.is_file():
        return "missing output"
    try:
        ds = pydicom.dcmread(path, force=not expected.get("part10", True))
        for _ in ds.iterall():
            pass
    except Exception as e:
        return f"pydicom cannot read it ({type(e).__name__})"
    if deidentifies:  # (an input without the value has nothing to change)
        name, pid = expected["patient_name"], expected["patient_id"]
        if name and str(ds.get("PatientName", "") or "") == name:
            return "PatientName unchanged"
        if pid and str(ds.get("PatientID", "") or "") == pid:
            return "PatientID unchanged"
    try:
        found = _pixel_digests(ds)
    except Exception as e:
        return f"pixel data unreadable ({type(e).__name__})"
    if found != expected["pixels"]:
        if found.get("7FE00010") is None and expected["pixels"].get("7FE00010") is not None:
            return "pixel data missing"
        return "pixel data changed"
    return None


@dataclasses.dataclass
class Check:
    files: int
    failures: int
    reasons: dict[str, int]
    examples: list[str]


def check_output(tree: Any, out_dir: Path, *, deidentifies: bool = True) -> Check:
    """Check every output of ``tree`` under ``out_dir`` (see the module docstring)."""
    reasons: collections.Counter[str] = collections.Counter()
    examples: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f in tree.files:
            why = _check_one(Path(out_dir) / f["rel"], f, deidentifies)
            if why is not None:
                reasons[why] += 1
                if len(examples) < 5:
                    examples.append(f"{f['rel']} ({Path(f['source']).name}): {why}")
    return Check(len(tree.files), sum(reasons.values()), dict(reasons), examples)


# ===================================================================== the measurement


@dataclasses.dataclass
class Result:
    engine: str
    kind: str
    description: str
    status: str  # "ok", "unavailable", "crashed"
    reason: str | None = None
    rust: bool = False
    files: int = 0
    bytes: int = 0
    failures: int | None = None
    failure_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    failure_examples: list[str] = dataclasses.field(default_factory=list)
    engine_errors: dict[str, int] = dataclasses.field(default_factory=dict)  # as it reported
    engine_error_examples: list[str] = dataclasses.field(default_factory=list)
    api: str | None = None  # the API the engine ran through, when it says
    setup_s: float | None = None  # imports and set-up before the first file (median)
    walls_s: list[float] = dataclasses.field(default_factory=list)
    wall_s: float | None = None  # median of the rounds
    engine_s: float | None = None  # the runner's own time (median), without start-up
    peak_rss_kib: int | None = None
    files_per_s: float | None = None
    mb_per_s: float | None = None
    ratio_dicomscrub: float | None = None  # wall / dicomscrub's wall (2.0: twice as long)
    ratio_cp: float | None = None  # wall / cp's wall

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def new_result(engine: Engine, tree: Any) -> Result:
    """The engine's result before any run: ``unavailable`` (with the reason) or ``ok``."""
    res = Result(
        engine.name,
        engine.kind,
        engine.description,
        "ok",
        rust=engine.rust,
        files=tree.n_files,
        bytes=tree.total_bytes,
    )
    why = engine.unavailable()
    if why is not None:
        res.status, res.reason = "unavailable", why
    return res


def apply_check(res: Result, run: Run, check: Check) -> None:
    """Record the checked run in ``res``: failures per reason, the engine's own errors, and
    ``crashed`` when it exited non-zero."""
    res.failures = check.failures
    res.failure_reasons = check.reasons
    res.failure_examples = check.examples
    if run.report:
        res.engine_errors = run.report.get("error_kinds", {})
        res.engine_error_examples = run.report.get("examples", [])
        res.api = run.report.get("api")
    if run.returncode != 0:
        res.status = "crashed"
        lines = run.stderr_tail.strip().splitlines() or [""]
        res.reason = f"exit code {run.returncode}: {lines[-1][:300]}"


def summarize(res: Result, runs: Sequence[Run], tree: Any) -> None:
    """Fill the times, rates and peak RSS of ``res`` from its timed runs."""
    res.walls_s = [r.wall_s for r in runs]
    res.wall_s = statistics.median(res.walls_s)
    times = [r.report["elapsed_s"] for r in runs if r.report and "elapsed_s" in r.report]
    res.engine_s = statistics.median(times) if times else None
    setups = [r.report["setup_s"] for r in runs if r.report and r.report.get("setup_s")]
    res.setup_s = statistics.median(setups) if setups else None
    res.peak_rss_kib = max(r.maxrss_kib for r in runs)
    res.files_per_s = tree.n_files / res.wall_s
    res.mb_per_s = tree.total_bytes / 1e6 / res.wall_s


def measure(
    engine: Engine,
    tree: Any,
    work: Path,
    *,
    rounds: int = 3,
    budget_s: float = 60.0,
    jobs: int | None = None,
    keep: bool = False,
    log: Callable[[str], None] | None = None,
) -> Result:
    """Run ``engine`` over ``tree`` (output under ``work/<engine>``): the first run is checked,
    then up to ``rounds`` runs in all are timed while their total stays under ``budget_s``."""
    res = new_result(engine, tree)
    if res.status != "ok":
        return res
    out = Path(work) / engine.name
    scratch = Path(work) / f".{engine.name}.log"
    argv = engine_argv(engine, tree.files_dir, out, jobs)
    runs: list[Run] = []
    for i in range(max(1, rounds)):
        shutil.rmtree(out, ignore_errors=True)
        os.sync()  # nobody else's dirty pages are flushed on this engine's time
        run = run_child(argv, scratch=scratch)
        runs.append(run)
        if i == 0:
            if log:
                log(f"{engine.name}: {run.wall_s:.2f} s, checking the output")
            apply_check(res, run, check_output(tree, out, deidentifies=engine.deidentifies))
        if res.status != "ok" or sum(r.wall_s for r in runs) >= budget_s:
            break
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    summarize(res, runs, tree)
    return res


def add_ratios(results: Sequence[Result], *, ours: str = "dicomscrub", floor: str = "cp") -> None:
    """Fill ``ratio_dicomscrub`` and ``ratio_cp`` of every measured result (in place)."""
    by = {r.engine: r for r in results if r.wall_s}
    for r in results:
        if r.wall_s is None:
            continue
        if ours in by:
            r.ratio_dicomscrub = r.wall_s / by[ours].wall_s
        if floor in by:
            r.ratio_cp = r.wall_s / by[floor].wall_s


#: Results of the pytest session: scenario -> engine -> (Result, the benchmark's extra_info).
BOARD: dict[str, dict[str, tuple[Result, dict[str, Any]]]] = {}


def record(scenario: str, result: Result, extra_info: dict[str, Any]) -> None:
    """Keep ``result`` on the board and refresh the ratios of every engine of the scenario
    (their ``extra_info`` dicts are the ones pytest-benchmark saves at the end)."""
    table = BOARD.setdefault(scenario, {})
    table[result.engine] = (result, extra_info)
    add_ratios([r for r, _ in table.values()])
    for r, info in table.values():
        info.update(ratio_dicomscrub=r.ratio_dicomscrub, ratio_cp=r.ratio_cp)


def measure_micro(
    name: str, path: Path, *, budget_s: float = 1.0, max_iterations: int = 2000
) -> dict[str, Any]:
    """In-memory per-file time of engine ``name`` on ``path`` (in a child process)."""
    argv = [
        sys.executable,
        str(HERE),
        "micro",
        name,
        str(path),
        "--budget",
        str(budget_s),
        "--max-iterations",
        str(max_iterations),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=_env(), check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {
        "engine": name,
        "file": str(path),
        "error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300],
    }


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
