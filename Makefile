# One entry point for every task. Each target creates the local .venv from
# the project's own files (pyproject.toml) when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

PYTEST_COV := --cov --cov-branch --cov-report=term-missing:skip-covered --cov-report=json:coverage.json

.PHONY: help install run test lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with all extras

run: $(STAMP) ## create or update the embedded database and print its tables
	$(BIN)/python -m core stats --create

test: $(STAMP) ## the whole suite, with coverage gates (models.py >= 97%, total >= 90%)
	$(BIN)/python -m pytest $(PYTEST_COV) $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --fail-under=90 > /dev/null || { echo "total coverage under 90%"; exit 1; }
	$(BIN)/python -m coverage report --include='*/core/models.py' --fail-under=97

lint: $(STAMP) ## ruff and mypy --strict over backend/
	$(BIN)/ruff check backend
	$(BIN)/ruff format --check backend
	$(BIN)/mypy backend

clean: ## remove the virtualenv, caches and the embedded database
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.json var
