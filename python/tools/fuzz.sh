#!/usr/bin/env bash
# Fuzz the Rust core with cargo-fuzz (rust/fuzz: targets `parse` and `rewrite`).
#
#   python/tools/fuzz.sh ci      build, seed, then each target for a fixed number of runs
#                                (-runs=$FUZZ_RUNS, default 20000, -seed=1): bounded, for .ci/run
#   python/tools/fuzz.sh long    each target for $FUZZ_SECONDS seconds (default 120)
#   python/tools/fuzz.sh build   only build the targets
#   python/tools/fuzz.sh seed    only (re)seed rust/fuzz/corpus/<target>/ from the real corpus
#
# A crash stops the run with a non-zero exit; the input is in rust/fuzz/artifacts/<target>/.
# Make it a regression: copy it to tests/data/fuzz/<target>-<what>.dcm (tests/test_fuzz_replay.py
# and rust/dicomscrub-core/tests/hostile.rs replay every file there), then fix the core.
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
TARGETS=(parse rewrite)
export RUSTC_BOOTSTRAP=1
# The build flags must be the same for `build` and `run` (else `run` rebuilds).
FLAGS=(--fuzz-dir rust/fuzz -O --debug-assertions --sanitizer none)
LIBFUZZER=(-max_len=65536 -rss_limit_mb=2048 -timeout=20 -print_final_stats=1)

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "installing cargo-fuzz" >&2
        cargo install cargo-fuzz --locked
    fi
}

build() {
    ensure_cargo_fuzz
    cargo fuzz build "${FLAGS[@]}"
}

seed() {
    "$PY" rust/fuzz/seed.py
}

run_target() {  # target, libFuzzer options...
    local t="$1"
    shift
    mkdir -p "rust/fuzz/corpus/$t"
    local start=$SECONDS
    cargo fuzz run "${FLAGS[@]}" "$t" "rust/fuzz/corpus/$t" -- "${LIBFUZZER[@]}" "$@" \
        2>"rust/fuzz/target/$t.log" || {
        grep -v '^"' "rust/fuzz/target/$t.log" | tail -40 >&2
        echo "fuzz: target $t FAILED (crash input in rust/fuzz/artifacts/$t/)" >&2
        return 1
    }
    local runs
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "rust/fuzz/target/$t.log" \
        | grep -Eo '[0-9]+$' || echo "?")
    echo "fuzz: target $t ok: $runs executions in $((SECONDS - start)) s"
}

case "${1:-ci}" in
    build) build ;;
    seed) seed ;;
    ci)
        build
        seed
        for t in "${TARGETS[@]}"; do
            run_target "$t" -runs="${FUZZ_RUNS:-20000}" -seed=1
        done
        ;;
    long)
        build
        seed
        for t in "${TARGETS[@]}"; do
            run_target "$t" -max_total_time="${FUZZ_SECONDS:-120}"
        done
        ;;
    *)
        echo "usage: $0 ci|long|build|seed" >&2
        exit 2
        ;;
esac
