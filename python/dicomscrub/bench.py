"""``dicomscrub bench``: dicomscrub against the tools users would pick instead, on the same tree.

It builds (or reuses) a benchmark tree of N files from real DICOM files (``benches/corpus.py``),
runs every engine over it disk to disk in a process of its own, checks each engine's output
before its time counts (``benches/engines.py``), and prints one line per engine: files/s, MB/s,
wall time relative to dicomscrub and to ``cp -r``, peak RSS and the files that failed the check.
Engines that are not installed are listed as unavailable with the reason, never dropped. The
issue's targets are printed as PASS/FAIL from the ratios measured in the same run.

The machinery lives in the clone's ``benches/`` folder (found next to the package of an editable
install, in the current folder, or at ``$DICOMSCRUB_BENCHES``); the peers come with the ``bench``
extra (``pip install deid dicognito dicom-anonymizer dcmanon fw-file-rs``).

Library use: :func:`run_bench` returns the report (the ``--json`` document);
:func:`format_report` renders it.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import click

__all__ = [
    "bench",
    "evaluate_targets",
    "find_benches",
    "format_report",
    "load_benches",
    "register",
    "run_bench",
]

SCHEMA = 1
MODULE_NAMES = {"corpus": "dicomscrub_bench_corpus", "engines": "dicomscrub_bench_engines"}
MICRO_ENGINES = ("dicomscrub", "dcmanon", "fw-file-rs", "pydicom", "dicognito", "reference")
MICRO_FILE = "CT_small.dcm"


# ------------------------------------------------------------------------------ the machinery


def find_benches() -> Path:
    """The ``benches/`` folder: ``$DICOMSCRUB_BENCHES``, the clone this package runs from
    (editable install), or ``./benches``."""
    candidates = []
    if os.environ.get("DICOMSCRUB_BENCHES"):
        candidates.append(Path(os.environ["DICOMSCRUB_BENCHES"]))
    candidates.append(Path(__file__).resolve().parent.parent.parent / "benches")
    candidates.append(Path.cwd() / "benches")
    for c in candidates:
        if (c / "engines.py").is_file() and (c / "corpus.py").is_file():
            return c.resolve()
    raise click.ClickException(
        "the benchmark machinery (benches/engines.py, benches/corpus.py) was not found: run "
        "`dicomscrub bench` from the root of a clone of dicomscrub, or set DICOMSCRUB_BENCHES "
        "to its benches/ folder"
    )


def _load(name: str, path: Path) -> ModuleType:
    mod = sys.modules.get(name)
    if mod is not None and Path(getattr(mod, "__file__", "")).resolve() == path.resolve():
        return mod
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise click.ClickException(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_benches(path: Path | None = None) -> tuple[ModuleType, ModuleType]:
    """``(corpus, engines)``: benches/corpus.py and benches/engines.py, imported by path."""
    root = path or find_benches()
    corpus = _load(MODULE_NAMES["corpus"], root / "corpus.py")
    engines = _load(MODULE_NAMES["engines"], root / "engines.py")
    return corpus, engines


# ----------------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the figures were measured on (the README's machine line)."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from dicomscrub import _core

        core = _core.__version__
    except ImportError as e:
        core = f"unavailable ({e})"
    try:
        import pydicom

        pyd = pydicom.__version__
    except ImportError:  # pragma: no cover
        pyd = None
    return {
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "pydicom": pyd,
        "dicomscrub_core": core,
    }


def machine_line(m: dict[str, Any], date: str) -> str:
    mem = f", {m['memory_gib']} GiB RAM" if m.get("memory_gib") else ""
    return (
        f"{m['system']}, {m['cpu']}, {m['cores']} cores{mem}, Python {m['python']}, "
        f"pydicom {m['pydicom']}, dicomscrub core {m['dicomscrub_core']}; {date}"
    )


# ------------------------------------------------------------------------------------ targets


def _target(name: str, status: str, value: str, note: str = "") -> dict[str, str]:
    return {"target": name, "status": status, "value": value, "note": note}


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, str]]:
    """The issue's targets from the figures of this run: PASS, FAIL or N/A (with the reason)."""
    res = {r["engine"]: r for r in report["results"]}
    out = []

    def wall(name: str) -> float | None:
        r = res.get(name)
        return r["wall_s"] if r and r["status"] == "ok" and r["wall_s"] else None

    def why_missing(*names: str) -> str:
        for n in names:
            r = res.get(n)
            if r is None:
                return f"{n} not measured"
            if r["status"] != "ok":
                return f"{n} {r['status']}: {r['reason']}"
        return ""

    c = report["corpus"]
    # the targets are defined on a tree of ≥ 1000 files built from the whole real corpus
    why = [f"tree of {c['n']} < 1000 files"] if c["n"] < 1000 else []
    if c.get("kind") == "as-is" or c.get("origin") != c.get("real_origin"):
        why.append("not built from the whole real corpus (--corpus real)")
    small = f"indicative only: {', '.join(why)}" if why else ""
    ours, one, cp = wall("dicomscrub"), wall("dicomscrub-1thread"), wall("cp")

    name = "all cores: wall ≤ 1.5× cp -r, 0 failures"
    if ours and cp:
        fails = res["dicomscrub"]["failures"]
        ok = ours / cp <= 1.5 and fails == 0
        out.append(
            _target(
                name, "PASS" if ok else "FAIL", f"{ours / cp:.2f}× cp -r, {fails} failures", small
            )
        )
    else:
        out.append(_target(name, "N/A", "", why_missing("dicomscrub", "cp")))

    name = "all cores: ≥ 25× faster than dicognito"
    dg = wall("dicognito")
    if ours and dg:
        out.append(_target(name, "PASS" if dg / ours >= 25 else "FAIL", f"{dg / ours:.1f}×", small))
    else:
        out.append(_target(name, "N/A", "", why_missing("dicomscrub", "dicognito")))

    name = "all cores: ≥ 1.5× faster than the fastest Rust-based peer"
    rust = [(wall(r["engine"]), r["engine"]) for r in report["results"] if r.get("rust")]
    rust_ok = [(w, e) for w, e in rust if w]
    if ours and rust_ok:
        w, e = min(rust_ok)
        note = "; ".join(
            x
            for x in (small, f"fastest: {e}", *(f"{r} not measured" for ww, r in rust if not ww))
            if x
        )
        out.append(_target(name, "PASS" if w / ours >= 1.5 else "FAIL", f"{w / ours:.2f}×", note))
    else:
        out.append(
            _target(
                name,
                "N/A",
                "",
                "no Rust-based peer measured" if ours else why_missing("dicomscrub"),
            )
        )

    name = "in memory, 1 thread, CT_small: ≥ 10× faster per file than dcmanon"
    micro = {m["engine"]: m for m in report.get("micro", []) if "per_file_s" in m}
    if "dicomscrub" in micro and "dcmanon" in micro:
        ratio = micro["dcmanon"]["per_file_s"] / micro["dicomscrub"]["per_file_s"]
        out.append(_target(name, "PASS" if ratio >= 10 else "FAIL", f"{ratio:.1f}×"))
    else:
        out.append(_target(name, "N/A", "", "dcmanon or dicomscrub not measured in memory"))

    name = "all cores vs 1 thread: ≥ 1.6×"
    if ours and one:
        out.append(
            _target(
                name,
                "PASS" if one / ours >= 1.6 else "FAIL",
                f"{one / ours:.2f}×",
                "; ".join(x for x in (small, f"{os.cpu_count()} cores") if x),
            )
        )
    else:
        out.append(_target(name, "N/A", "", why_missing("dicomscrub", "dicomscrub-1thread")))

    for part in report.get("large", []):
        lres = {r["engine"]: r for r in part["results"]}
        label = part["label"]
        lo, lcp = lres.get("dicomscrub"), lres.get("cp")
        if label.startswith("500MB") and lo and lcp and lo["wall_s"] and lcp["wall_s"]:
            r = lo["wall_s"] / lcp["wall_s"]
            out.append(
                _target(f"{label}: wall ≤ 1.1× cp", "PASS" if r <= 1.1 else "FAIL", f"{r:.2f}× cp")
            )
        if lo and lo["peak_rss_kib"]:
            mib = lo["peak_rss_kib"] / 1024
            out.append(
                _target(
                    f"{label}: peak RSS ≤ 32 MiB",
                    "PASS" if mib <= 32 else "FAIL",
                    f"{mib:.1f} MiB",
                    "the bench's dicomscrub process (Python + "
                    "profile + core), not `dicomscrub run`",
                )
            )
    return out


# ------------------------------------------------------------------------------------- report


def _fmt_ratio(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def _fmt_failures(r: dict[str, Any]) -> str:
    if r["failures"] is None:
        return ""
    if not r["failures"]:
        return "0"
    top = max(r["failure_reasons"].items(), key=lambda kv: kv[1])
    more = "…" if len(r["failure_reasons"]) > 1 else ""
    return f"{r['failures']}/{r['files']} ({top[0]}: {top[1]}{more})"


def format_results(results: Sequence[dict[str, Any]]) -> str:
    head = ("engine", "files/s", "MB/s", "×dicomscrub", "×cp -r", "peak RSS", "failures")
    rows = []
    notes = []
    for r in results:
        if r["status"] == "unavailable":
            rows.append((r["engine"], f"unavailable: {r['reason']}"))
            continue
        name = r["engine"] if r["status"] == "ok" else f"{r['engine']} ({r['status']})"
        if r["status"] == "crashed":
            notes.append(f"{r['engine']} crashed: {r['reason']}")
        rss = f"{r['peak_rss_kib'] / 1024:.0f} MiB" if r["peak_rss_kib"] else ""
        rows.append(
            (
                name,
                f"{r['files_per_s']:.1f}",
                f"{r['mb_per_s']:.1f}",
                _fmt_ratio(r["ratio_dicomscrub"]),
                _fmt_ratio(r["ratio_cp"]),
                rss,
                _fmt_failures(r),
            )
        )
    widths = [max(len(head[i]), *(len(row[i]) for row in rows if len(row) > 2)) for i in range(6)]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=False))
        )
        + "  "
        + head[6]
    ]
    for row in rows:
        if len(row) == 2:
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append(
                "  ".join(
                    c.rjust(w) if i else c.ljust(w)
                    for i, (c, w) in enumerate(zip(row[:6], widths, strict=False))
                )
                + "  "
                + row[6]
            )
    return "\n".join(lines + notes)


def format_report(report: dict[str, Any]) -> str:
    c = report["corpus"]
    s = report["settings"]
    out = [
        f"dicomscrub bench: {c['n']} files, {c['total_bytes'] / 1e6:.1f} MB, "
        f"{len(c['transfer_syntaxes'])} transfer syntaxes, from {c['origin']}; "
        f"jobs={s['jobs'] or 'all'}, rounds≤{s['rounds']}",
        f"machine: {machine_line(report['machine'], report['date'])}",
        "times: median wall of the rounds, start-up included, disk to disk with a final sync; "
        "×dicomscrub / ×cp -r: wall time relative to dicomscrub (all cores) / to cp -r",
        "",
        format_results(report["results"]),
    ]
    if report.get("micro"):
        out += ["", f"in memory, one file ({MICRO_FILE}), one thread:"]
        base = next(
            (
                m["per_file_s"]
                for m in report["micro"]
                if m["engine"] == "dicomscrub" and "per_file_s" in m
            ),
            None,
        )
        for m in report["micro"]:
            if "per_file_s" in m:
                ratio = f"  {m['per_file_s'] / base:.1f}× dicomscrub" if base else ""
                out.append(f"  {m['engine']:<20} {m['per_file_s'] * 1e6:10.1f} µs/file{ratio}")
            else:
                out.append(f"  {m['engine']:<20} {m.get('error', 'unavailable')}")
    for part in report.get("large", []):
        out += [
            "",
            f"large file {part['label']} ({part['size'] / 1e6:.0f} MB, {part['transfer_syntax']}):",
            format_results(part["results"]),
        ]
    if report.get("targets"):
        out += ["", "targets (measured in this run):"]
        for t in report["targets"]:
            value = f"  {t['value']}" if t["value"] else ""
            note = f"  ({t['note']})" if t["note"] else ""
            out.append(f"  {t['status']:<4}  {t['target']}{value}{note}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------- run


def run_bench(
    src: Path | None = None,
    *,
    against: Sequence[str] | None = None,
    n_files: int = 2000,
    jobs: int | None = None,
    rounds: int = 3,
    budget_s: float = 60.0,
    corpus_name: str = "samples",
    as_is: bool = False,
    large: bool = False,
    micro: bool = True,
    extra_engines: Sequence[tuple[str, str]] = (),
    cache: Path | None = None,
    work: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the tree, measure cp, dicomscrub (1 thread and all cores), the engines named in
    ``against`` (default: every peer) and ``extra_engines`` (name, command); the report."""
    corpus, engines = load_benches()
    cache = Path(cache or os.environ.get("DICOMSCRUB_BENCH_CACHE") or corpus.DEFAULT_CACHE)
    chosen = list(engines.PEERS if against is None else against)
    unknown = [a for a in chosen if a not in engines.ENGINES]
    if unknown:
        raise ValueError(
            f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(engines.PEERS)}"
        )
    names = [n for n in engines.ENGINES if n in engines.ALWAYS or n in chosen]
    selected = [engines.ENGINES[n] for n in names]
    for name, command in extra_engines:
        if name in engines.ENGINES:
            raise ValueError(f"engine name {name!r} is taken")
        selected.append(engines.command_engine(name, command))

    if as_is:
        if src is None:
            raise ValueError("--as-is needs SRC")
        if log:
            log(f"corpus: reading {src} as it is")
        tree = corpus.tree_as_is(Path(src))
    else:
        if log:
            log(f"corpus: {n_files} files under {cache}")
        tree = corpus.build_tree(
            n_files, src=Path(src) if src else None, prefer=corpus_name, cache=cache, log=log
        )
    work_root = Path(work) if work else cache / f"work-{os.getpid()}"
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": {
            "jobs": jobs,
            "rounds": rounds,
            "budget_s": budget_s,
            "engines": [e.name for e in selected],
        },
        "corpus": {
            k: tree.manifest.get(k)
            for k in ("kind", "origin", "n", "total_bytes", "transfer_syntaxes", "sources_used")
        }
        | {"root": str(tree.root), "real_origin": corpus.REAL},
        "results": [],
    }
    try:
        results = []
        for e in selected:
            if log:
                log(f"{e.name}: running over {tree.n_files} files")
            results.append(
                engines.measure(
                    e, tree, work_root, rounds=rounds, budget_s=budget_s, jobs=jobs, log=log
                )
            )
        engines.add_ratios(results)
        report["results"] = [r.to_dict() for r in results]

        if micro:
            report["micro"] = _micro(engines, [e.name for e in selected], log)

        if large:
            ltree = corpus.build_large(
                src=Path(src) if src and not as_is else None, cache=cache, log=log
            )
            report["large"] = []
            for f in ltree.files:
                part = corpus.subtree(ltree, f["label"])
                lres = []
                for e in selected:
                    if log:
                        log(f"{e.name}: running over {f['label']}")
                    lres.append(
                        engines.measure(
                            e, part, work_root, rounds=rounds, budget_s=budget_s, jobs=jobs, log=log
                        )
                    )
                engines.add_ratios(lres)
                report["large"].append(
                    {
                        "label": f["label"],
                        "size": f["size"],
                        "transfer_syntax": f["transfer_syntax"],
                        "results": [r.to_dict() for r in lres],
                    }
                )
    finally:
        if not work:
            shutil.rmtree(work_root, ignore_errors=True)
    report["targets"] = evaluate_targets(report)
    return report


def _micro(
    engines: ModuleType, names: Sequence[str], log: Callable[[str], None] | None
) -> list[dict[str, Any]]:
    import pydicom.data

    path = Path(pydicom.data.get_testdata_file(MICRO_FILE))
    out = []
    for name in MICRO_ENGINES:
        if name not in names:
            continue
        why = engines.ENGINES[name].unavailable()
        if why:
            out.append({"engine": name, "file": str(path), "error": f"unavailable: {why}"})
            continue
        if log:
            log(f"{name}: in memory, {MICRO_FILE}")
        out.append(engines.measure_micro(name, path))
    return out


# ---------------------------------------------------------------------------------------- CLI


def _split_against(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> list[str] | None:
    if value is None or value == "all":
        return None
    if value in ("", "none"):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def _extra(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, command = v.partition("=")
        if not sep or not name or not command:
            raise click.BadParameter("expected NAME=COMMAND (with {src} and {dst})")
        out.append((name.strip(), command))
    return out


@click.command("bench")
@click.argument(
    "src", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--against",
    callback=_split_against,
    metavar="ENGINES",
    help="Comma-separated engines to compare with: reference, pydicom, deid, "
    "dicognito, dicom-anonymizer, dcmanon, fw-file-rs (default: all; 'none' for "
    "none). cp -r and dicomscrub (1 thread, all cores) always run.",
)
@click.option(
    "--files",
    "n_files",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Files in the benchmark tree (built round-robin from SRC's files).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Threads of the all-cores dicomscrub run (default: all cores).",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Timed runs per engine (the median counts), while under --budget.",
)
@click.option(
    "--budget",
    "budget_s",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds per engine after which no further round starts.",
)
@click.option(
    "--corpus",
    "corpus_name",
    type=click.Choice(["samples", "real"]),
    default="samples",
    show_default=True,
    help="Without SRC: build the tree from the bundled samples, or from the real-file corpus "
    "of the test extra (pydicom, pydicom-data, deid-data: every transfer syntax; what the "
    "targets are defined on).",
)
@click.option(
    "--as-is",
    is_flag=True,
    help="Benchmark SRC's files as they are instead of building a tree from them.",
)
@click.option(
    "--large",
    is_flag=True,
    help="Also run the large multi-frame files (100 MB, 2 × 500 MB; built once).",
)
@click.option("--no-micro", is_flag=True, help="Skip the in-memory one-file figures.")
@click.option(
    "--engine",
    "extra",
    multiple=True,
    callback=_extra,
    metavar="NAME=COMMAND",
    help="An extra engine: a command with {src} and {dst} (and {jobs}) that "
    "de-identifies the tree {src} into {dst}. Repeatable.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where trees are built and kept (default: benches/.corpus).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--check-targets", is_flag=True, help="Exit with status 1 when a target FAILs.")
def bench(
    src: Path | None,
    against: list[str] | None,
    n_files: int,
    jobs: int | None,
    rounds: int,
    budget_s: float,
    corpus_name: str,
    as_is: bool,
    large: bool,
    no_micro: bool,
    extra: list[tuple[str, str]],
    cache_dir: Path | None,
    as_json: bool,
    check_targets: bool,
) -> None:
    """Benchmark dicomscrub against other de-identifiers on the same tree of DICOM files.

    Without SRC the tree is built from the bundled samples (or the real-file corpus of the
    test extra when there are none). Every engine's output is checked (pydicom reads it,
    PatientName and PatientID changed, pixel data identical) and its failures are counted.
    """

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    try:
        report = run_bench(
            src,
            against=against,
            n_files=n_files,
            jobs=jobs,
            rounds=rounds,
            budget_s=budget_s,
            corpus_name=corpus_name,
            as_is=as_is,
            large=large,
            micro=not no_micro,
            extra_engines=extra,
            cache=cache_dir,
            log=log,
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(report, indent=1) if as_json else format_report(report))
    if check_targets and any(t["status"] == "FAIL" for t in report["targets"]):
        sys.exit(1)


def register(cli: click.Group) -> None:
    """Add ``bench`` to the ``dicomscrub`` command group (cli.EXTENSIONS)."""
    cli.add_command(bench)


if __name__ == "__main__":  # pragma: no cover
    bench()
