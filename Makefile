# The two commands of the README:  make demo  (set up + run the main job locally)
#                                  make test  (set up + pass the tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
export WHYLOGS_NO_ANALYTICS := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1

.PHONY: setup data demo test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build of torch, chosen explicitly: from PyPI a Linux machine gets the CUDA build (GBs of GPU wheels).
	# With a GPU, drop this line (or set TORCH_INDEX=https://download.pytorch.org/whl/cu128).
	$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX) torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

# the examples keep their data in DVC with a remote folder inside each example: this is offline
data: setup
	cd examples/tabular-fraud && $(BIN)/dvc pull --quiet
	cd examples/llm-support && $(BIN)/dvc pull --quiet

# the main job (train v1, evaluate, deploy), then the loop: serve, traffic, drift, retrain, v2 serves.
# On a fresh copy of the example each time; DEMO_FLAGS=--keep-serving leaves the server running.
demo: data
	$(BIN)/mlops validate examples/tabular-fraud
	$(BIN)/mlops compile --check examples/tabular-fraud
	$(BIN)/mlops demo examples/tabular-fraud --env local $(DEMO_FLAGS)

test: data
	$(BIN)/python -m pytest -q -n 2

lint: setup
	$(BIN)/ruff check compiler tests benchmarks infra examples
	$(BIN)/ruff format --check compiler tests benchmarks infra examples

bench: setup
	$(BIN)/python benchmarks/compile_bench.py
	$(BIN)/python benchmarks/loop_bench.py --monitor
