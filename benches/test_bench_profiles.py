"""Profile benchmarks (issue "Profiles"): the Basic Profile and the Basic Profile with options
over the real corpus, in memory, against the keep-all *rewrite*: a plan with one rule that
matches no element, so that every file is parsed and written again (fresh File Meta) and nothing
else happens. The difference is the cost of the profile itself (rule lookups, keyed UIDs and
pseudonyms, date shifts, cleaning, markers); the target is under 30% of the rewrite, printed as
PASS / FAIL, not asserted (timings on a shared machine are not a test).

Run timed: ``make bench`` (release build). CI runs them once with ``--benchmark-disable``: the
correctness checks still run, the figures are then meaningless and not printed.
"""

from __future__ import annotations

import io
import json
import sys
import time
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pydicom
import pytest

from dicomscrub import Profile, _core
from dicomscrub.profiles.options import EXCLUSIVE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus import readable_files

KEY = b"bench"
TARGET = 0.30  # the profile may cost up to 30% of the rewrite
ROUNDS = 3

#: a public tag of an unused group: no file of the corpus has it (checked below)
NOWHERE = "00F00010"
REWRITE = {"version": 1, "tags": {NOWHERE: {"action": "remove"}}}

_ALL = [name for name, _meaning, _code in Profile.options()]
_DROP = {pair[0] for pair in EXCLUSIVE}  # one option of each exclusive pair
PROFILES: dict[str, list[str]] = {
    "basic": [],
    "basic+all-retain": [o for o in _ALL if o.startswith("retain-") and o not in _DROP],
    "basic+all-options": [o for o in _ALL if o not in _DROP],
}


def _corpus() -> list[bytes]:
    datas = []
    for path in readable_files():
        data = path.read_bytes()
        try:
            _core.dump(data)
        except Exception:
            continue
        datas.append(data)
    return datas


CORPUS = _corpus()
TOTAL_BYTES = sum(map(len, CORPUS))


def _read(data: bytes) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True)


def _loop(plan: _core.Plan) -> Callable[[], None]:
    def run() -> None:
        for data in CORPUS:
            _core.anonymize_bytes(data, plan)

    return run


def _best_of(run: Callable[[], None], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


@cache
def _rewrite_seconds(rounds: int) -> float:
    """Best wall time of the rewrite over the corpus (one measurement per session)."""
    return _best_of(_loop(_core.Plan(json.dumps(REWRITE), KEY)), rounds)


def _timed(benchmark: Any) -> float | None:
    """The benchmark's best round, or None when the benchmark is disabled (smoke run)."""
    stats = getattr(benchmark, "stats", None)
    if getattr(benchmark, "disabled", False) or stats is None or not getattr(stats, "stats", None):
        return None
    return float(stats.stats.min)


def _rate(seconds: float) -> str:
    files_s = len(CORPUS) / seconds
    mb_s = TOTAL_BYTES / seconds / 1e6
    return f"{files_s:,.0f} files/s, {mb_s:,.0f} MB/s ({len(CORPUS)} files, {seconds:.3f} s)"


def test_bench_rewrite(benchmark: Any) -> None:
    plan = _core.Plan(json.dumps(REWRITE), KEY)
    # correctness: every file is rewritten (fresh File Meta) and its data set is unchanged
    for data in CORPUS[:40]:
        out = _core.anonymize_bytes(data, plan)
        assert out is not data and out[128:132] == b"DICM"
        source, found = _read(data), _read(out)
        assert int(NOWHERE, 16) not in source
        assert [e.tag for e in found] == [e.tag for e in source]
    benchmark.group = "profiles in memory"
    benchmark.pedantic(_loop(plan), rounds=ROUNDS, iterations=1)
    seconds = _timed(benchmark)
    if seconds is not None:
        benchmark.extra_info.update(
            {"files_per_s": len(CORPUS) / seconds, "MB_per_s": TOTAL_BYTES / seconds / 1e6}
        )
        print(f"\nrewrite (one rule, matches nothing): {_rate(seconds)}")


@pytest.mark.parametrize("name", list(PROFILES))
def test_bench_profile(benchmark: Any, name: str) -> None:
    profile = Profile.basic(PROFILES[name])
    plan = _core.Plan(profile.to_json(), KEY)
    # correctness before timing: the profile ran (markers), pydicom reads the outputs
    for data in CORPUS[:40]:
        out = _read(_core.anonymize_bytes(data, plan))
        if "SOPInstanceUID" in out:
            assert out.PatientIdentityRemoved == "YES"
    benchmark.group = "profiles in memory"
    benchmark.pedantic(_loop(plan), rounds=ROUNDS, iterations=1)
    seconds = _timed(benchmark)
    if seconds is None:
        return
    rewrite = _rewrite_seconds(ROUNDS)
    cost = seconds / rewrite - 1
    verdict = "PASS" if cost < TARGET else "FAIL"
    benchmark.extra_info.update(
        {
            "files_per_s": len(CORPUS) / seconds,
            "MB_per_s": TOTAL_BYTES / seconds / 1e6,
            "rewrite_s": rewrite,
            "profile_cost": cost,
        }
    )
    print(
        f"\n{name} ({', '.join(PROFILES[name]) or 'no option'}): {_rate(seconds)}\n"
        f"  rewrite: {_rate(rewrite)}\n"
        f"  ratio {seconds / rewrite:.2f}: the profile costs {cost:+.0%} of the rewrite "
        f"(target < {TARGET:.0%}): {verdict}"
    )
