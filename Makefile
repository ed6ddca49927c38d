# The two set-up commands (README): `make demo` and `make test`. Each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
MVSD := $(VENV)/bin/mvsd

.PHONY: setup demo quality test test-all lint bench

setup:
	@bash scripts/setup.sh

## The whole pipeline on the built-in dataset (dvc repro): data -> round 0 -> pseudo-pairs ->
## round 1 -> evaluation + report; prints the results table and where the report is.
demo: setup
	@bash scripts/demo.sh

## The quality recipe: the same pipeline with 4x the training steps, as a DVC experiment
## (`dvc exp show` compares it with the demo; BENCHMARKS.md, "The quality recipe").
quality: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc exp run -n quality -S train.steps=800

## The default test suite (CPU-only, a few minutes).
test: setup
	$(PY) -m pytest -q

## Everything, slow tests included.
test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check mvsd tests benchmarks flows

bench: setup
	$(PY) benchmarks/bench_synth.py
	$(PY) benchmarks/bench_loader.py --dataset datasets/simrooms
	$(PY) benchmarks/bench_shards.py
