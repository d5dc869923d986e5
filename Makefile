# The two commands of the README:  make demo  (set up + run the main job locally)
#                                  make test  (set up + pass the tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export WHYLOGS_NO_ANALYTICS := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1

.PHONY: setup demo test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

demo: setup
	$(BIN)/mlops validate examples/tabular-fraud
	$(BIN)/mlops compile --check examples/tabular-fraud
	$(BIN)/mlops explain fraud-detector --path examples/tabular-fraud --env local

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check compiler tests benchmarks infra examples
	$(BIN)/ruff format --check compiler tests benchmarks infra examples

bench: setup
	$(BIN)/python benchmarks/compile_bench.py
