"""Session fixtures of the benchmarks: the tree (built once per session, cached on disk), a work
folder for the engines' outputs, and the results table printed at the end.

Environment: ``DICOMSCRUB_BENCH_FILES`` (tree size; default 2000, or 40 with
``--benchmark-disable``, the CI smoke run), ``DICOMSCRUB_BENCH_ROUNDS`` (timed rounds, default 3),
``DICOMSCRUB_BENCH_LARGE=1`` (also the large multi-frame files), ``DICOMSCRUB_BENCH_CORPUS``
(``real``, the default: the real-file corpus of the test extra, every transfer syntax; or
``samples``), ``DICOMSCRUB_BENCH_CACHE`` (where trees are kept; default benches/.corpus).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dicomscrub.bench import format_results, load_benches

corpus, engines = load_benches(Path(__file__).resolve().parent)

SMOKE_FILES = 40


def _disabled(config: pytest.Config) -> bool:
    try:
        return bool(config.getoption("benchmark_disable"))
    except ValueError:  # pytest-benchmark not installed
        return True


def _cache() -> Path:
    return Path(os.environ.get("DICOMSCRUB_BENCH_CACHE") or corpus.DEFAULT_CACHE)


@pytest.fixture(scope="session")
def bench_tree(request: pytest.FixtureRequest) -> Any:
    default = SMOKE_FILES if _disabled(request.config) else 2000
    n = int(os.environ.get("DICOMSCRUB_BENCH_FILES") or default)
    prefer = os.environ.get("DICOMSCRUB_BENCH_CORPUS") or "real"
    return corpus.build_tree(n, prefer=prefer, cache=_cache())


@pytest.fixture(scope="session")
def large_tree() -> Any:
    if os.environ.get("DICOMSCRUB_BENCH_LARGE") != "1":
        pytest.skip("large files: set DICOMSCRUB_BENCH_LARGE=1")
    return corpus.build_large(cache=_cache())


@pytest.fixture(scope="session")
def bench_rounds(request: pytest.FixtureRequest) -> int:
    return 1 if _disabled(request.config) else int(os.environ.get("DICOMSCRUB_BENCH_ROUNDS", "3"))


@pytest.fixture(scope="session")
def bench_work(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # next to the tree (same filesystem: cp -r and the engines write where the tree is)
    work = _cache() / f"work-pytest-{os.getpid()}"
    yield work
    shutil.rmtree(work, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for scenario, table in engines.BOARD.items():
        terminalreporter.section(f"dicomscrub bench: {scenario}")
        terminalreporter.write_line(format_results([r.to_dict() for r, _ in table.values()]))
