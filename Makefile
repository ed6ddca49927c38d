# The two set-up commands (README): `make demo` and `make test`. Each installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
MVSD := $(VENV)/bin/mvsd

.PHONY: setup demo quality data-efficiency test test-all lint bench

setup:
	@bash scripts/setup.sh

## The whole pipeline on the built-in dataset (dvc repro): data -> round 0 -> pseudo-pairs ->
## round 1 -> evaluation + report; prints the results table and where the report is.
demo: setup
	@bash scripts/demo.sh

## The quality recipe: the same pipeline with 8x the training steps, as a DVC experiment
## (`dvc exp show` compares it with the demo; BENCHMARKS.md, "The quality recipe").
quality: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dvc exp run -n quality -S train.steps=1600

## Issue 14's experiment: mutual learning against paired-only training at 10, 25 and 66 % paired
## data, two rounds each (about 100 min on 2 cores; resumable). Writes build/data-efficiency/
## results.md, report.html, curve.png and rounds.png (BENCHMARKS.md, "The data-efficiency curve").
data-efficiency: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benchmarks/data_efficiency.py --fractions 0.1,0.25,0.66 --seeds 0 --rounds 2

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
