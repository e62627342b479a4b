"""Seed the fuzz corpora rust/fuzz/corpus/<target>/ (git-ignored) from the real-file corpus.

A few dozen small files, spread over the transfer syntaxes the corpus holds, plus the malformed
corpus (tests/data/malformed/) and the committed crash files (tests/data/fuzz/). Run with the
project's venv (it needs pydicom-data and deid-data, as the tests do).
"""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "python"))

from corpus import corpus_files  # noqa: E402

MAX_SIZE = 16 * 1024
PER_SYNTAX = 4
TARGETS = ("parse", "rewrite")


def transfer_syntax(data: bytes) -> str:
    from dicomscrub import _core

    try:
        return _core.dump(data)["transfer_syntax"]
    except Exception:
        return "unreadable"


def pick() -> list[bytes]:
    by_ts: dict[str, list[bytes]] = defaultdict(list)
    for p in sorted(corpus_files(), key=lambda p: (p.stat().st_size, str(p))):
        if p.stat().st_size > MAX_SIZE:
            continue
        data = p.read_bytes()
        bucket = by_ts[transfer_syntax(data)]
        if len(bucket) < PER_SYNTAX:
            bucket.append(data)
    seeds = [d for ts in sorted(by_ts) for d in by_ts[ts]]
    for folder in ("malformed", "fuzz"):
        for p in sorted((ROOT / "tests" / "data" / folder).glob("*")):
            if p.is_file() and p.suffix != ".json" and p.stat().st_size <= MAX_SIZE:
                seeds.append(p.read_bytes())
    return seeds


def main() -> int:
    seeds = pick()
    for target in TARGETS:
        d = ROOT / "rust" / "fuzz" / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for data in seeds:
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{len(seeds)} seeds in rust/fuzz/corpus/{{{','.join(TARGETS)}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
