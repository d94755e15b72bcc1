# Every target sets up its own environment on first use: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := requirements/constraints.txt

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# The temporary local Prefect server can take longer than Prefect's 20 s to start on a busy 2-core machine.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run study test test-slow test-all lint params lock lock-dvc repro mlflow-ui clean venv

venv: $(STAMP)

# torch + torchvision first (pip takes the machine's local wheels when it can), then the rest, all pinned.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) torch torchvision
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

## The main job: the whole embedded pipeline (Prefect flow, MLflow tracking) on the shapes world.
run: $(STAMP)
	$(PY) -m flows.pipeline $(ARGS)

## The embedded study: baseline, sea, sea_oracle over 5 seeds + the label-precision sweep -> docs/embedded_study.md
study: $(STAMP)
	$(PY) -m flows.study $(ARGS)

## The default test tier (offline, CPU, a few minutes).
test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(ARGS)

## Slow tier only (DVC in a temp repo, full-size configs).
test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -m 'slow and not world and not long' $(ARGS)

test-all: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -m 'not gpu and not network' $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check sea flows tests benchmarks
	$(PY) -m ruff format --check sea flows tests benchmarks

## Regenerate params.yaml from the default composition of conf/ (a test checks they agree).
params: $(STAMP)
	$(PY) -m sea.config params.yaml

## Re-pin every package after a change in pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^sea-pipeline' > $(CONSTRAINTS).new
	(head -n 3 $(CONSTRAINTS); cat $(CONSTRAINTS).new) > $(CONSTRAINTS).tmp && mv $(CONSTRAINTS).tmp $(CONSTRAINTS) && rm $(CONSTRAINTS).new

## Record dvc.lock again after a code or config change: params.yaml from conf/, then `dvc repro` reruns the
## stages whose code, params or inputs changed, and those after them (every stage: 44 min measured on the
## shared, busy two cores). Commit dvc.lock.
lock-dvc: params
	dvc repro

## Reproduce the DVC pipeline (or one stage: make repro ARGS=prepare).
repro: $(STAMP)
	dvc repro $(ARGS)

mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///out/mlflow/mlflow.db --port 5000

clean:
	rm -rf out .prefect
