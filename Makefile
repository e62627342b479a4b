# dicomscrub: the one command set. .ci/run and developers call these targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export DICOMSCRUB_TESTDATA ?= $(shell $(PY) -c 'import pydicom.data, os; print(os.path.dirname(pydicom.data.__file__))' 2>/dev/null)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

.PHONY: install
install: $(PY) ## venv + release build of the extension + test, dask, gateway and bench extras
	$(PIP) install -q maturin
	$(PIP) install -q -e '.[test,dask,gateway,bench]'

.PHONY: build-dev
build-dev: ## debug build of the extension into the venv (fast to compile)
	$(VENV)/bin/maturin develop

.PHONY: build-prod
build-prod: ## release build of the extension into the venv (for benchmarks)
	$(VENV)/bin/maturin develop --release

.PHONY: gen
gen: ## regenerate the dictionary and the PS3.15 profile tables
	$(PY) python/tools/gen_dictionary.py
	$(PY) python/tools/gen_profiles.py

.PHONY: format
format: ## ruff fix + format, cargo fmt
	$(VENV)/bin/ruff check --fix python tests benches
	$(VENV)/bin/ruff format python tests benches
	cargo fmt --all

.PHONY: lint
lint: ## rustfmt, clippy -D warnings, ruff
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches

.PHONY: test-rust
test-rust: ## cargo tests (unit + real-file integration)
	@test -n "$(DICOMSCRUB_TESTDATA)" || (echo "DICOMSCRUB_TESTDATA unset: run make install first"; exit 1)
	cargo test --workspace --exclude dicomscrub-py

.PHONY: test-python
test-python: ## pytest, every test (a run that collects no test fails)
	$(PY) -m pytest -q -p no:cacheprovider tests

.PHONY: test
test: test-rust test-python ## all tests

.PHONY: bench-smoke
bench-smoke: ## benchmarks once, as smoke tests (correctness checked, no timing)
	$(PY) -m pytest -q -p no:cacheprovider benches --benchmark-disable

.PHONY: bench
bench: build-prod ## timed benchmarks (release build), figures printed
	$(PY) -m pytest -q -p no:cacheprovider benches --benchmark-enable -s

.PHONY: fuzz-ci
fuzz-ci: ## short fixed-seed fuzz runs of every cargo-fuzz target
	bash python/tools/fuzz.sh ci

.PHONY: fuzz
fuzz: ## longer fuzz runs
	bash python/tools/fuzz.sh long
