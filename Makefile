# One entry point for every task. Each target creates the local .venv from
# the project's own files (pyproject.toml) when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Which interpreter built .venv (version and real path), recorded beside it:
# asking for another one (`make PYTHON=python3.12 ...`, or a python3 that has
# changed) rebuilds .venv instead of quietly keeping the old one.
PYTHON_ID    := $(shell $(PYTHON) -c 'import os, platform, sys; print(platform.python_version(), os.path.realpath(sys.executable))' 2>/dev/null)
PYTHON_STAMP := $(VENV)/.python
ifneq ($(PYTHON_ID),$(shell cat $(PYTHON_STAMP) 2>/dev/null))
$(STAMP): FORCE
endif

# Bytecode is kept under .venv/pycache, never beside the sources, and is
# written even where PYTHONDONTWRITEBYTECODE is set (Docker images often set
# it): without it every run compiles the project again and pytest rewrites
# every test module's asserts again, about 5 s of CPU per `make test`.
export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache
export PYTHONDONTWRITEBYTECODE :=

PYTEST_COV := --cov --cov-branch --cov-report=term-missing --cov-report=json:coverage.json

# The PostgreSQL server `make test-postgres` uses. The run never writes to
# this database: it creates <name>_<run id>_<worker> beside it and drops it.
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# The MariaDB server `make test-mariadb` uses, in the same way: the run
# creates <name>_<run id>_<worker> beside this database and drops it.
TEST_MARIADB_URL ?= mysql+pymysql://root@127.0.0.1:3306/test

.PHONY: help install run test test-postgres test-mariadb test-isolation lint bench mutation clean revision schema-doc FORCE

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_ID)" || { echo "$(PYTHON) does not run: install Python 3.11+, or make PYTHON=/path/to/python3"; exit 2; }
	@if [ "$$(cat $(PYTHON_STAMP) 2>/dev/null)" != "$(PYTHON_ID)" ]; then echo "$(VENV) was not made by $(PYTHON) ($(PYTHON_ID)): rebuilding it"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,mysql,dev]'
	echo '$(PYTHON_ID)' > $(PYTHON_STAMP)
	touch $(STAMP)

FORCE:

install: $(STAMP) ## create .venv and install the project with all extras

run: $(STAMP) ## migrate the embedded database to head, play the governance demo, print its tables
	$(BIN)/python -m core demo

# The everyday loop runs without coverage: measuring it costs about a third
# more CPU. `make test COVERAGE=1` (what CI runs) measures branch coverage of
# `core` and fails under the gates: models.py >= 97%, the total >= 90%.
test: $(STAMP) ## the whole suite on SQLite (COVERAGE=1: with coverage and its gates, as CI runs it)
	$(BIN)/python -m pytest $(if $(COVERAGE),$(PYTEST_COV)) $(PYTEST_ARGS)
ifneq ($(COVERAGE),)
	$(BIN)/python -m coverage report --fail-under=90 > /dev/null || { echo "total coverage under 90%"; exit 1; }
	$(BIN)/python -m coverage report --include='*/core/models.py' --fail-under=97
endif

# Coverage is gated by `make test COVERAGE=1`; here the sentinel runs instead
# (about 10% more CPU), so CI checks isolation on PostgreSQL, in random order.
test-postgres: $(STAMP) ## the same suite on PostgreSQL (TEST_POSTGRES_URL), in a database of its own
	TEST_DATABASE_URL='$(TEST_POSTGRES_URL)' $(BIN)/python -m pytest --check-isolation $(PYTEST_ARGS)

# Like test-postgres: the whole suite, with the isolation sentinel, no coverage.
test-mariadb: $(STAMP) ## the same suite on MariaDB (TEST_MARIADB_URL), in a database of its own
	TEST_DATABASE_URL='$(TEST_MARIADB_URL)' $(BIN)/python -m pytest --check-isolation $(PYTEST_ARGS)

test-isolation: $(STAMP) ## the isolation sentinel over the whole suite in random order, SQLite, PostgreSQL, MariaDB
	$(BIN)/python -m pytest --check-isolation $(PYTEST_ARGS)
	TEST_DATABASE_URL='$(TEST_POSTGRES_URL)' $(BIN)/python -m pytest --check-isolation $(PYTEST_ARGS)
	TEST_DATABASE_URL='$(TEST_MARIADB_URL)' $(BIN)/python -m pytest --check-isolation $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy --strict over backend/, bench/ and mutation/
	$(BIN)/ruff check backend bench mutation
	$(BIN)/ruff format --check backend bench mutation
	$(BIN)/mypy backend bench mutation

bench: $(STAMP) ## benchmarks: isolation strategies, write throughput, suite times (BENCH_QUICK=1: a smoke run)
	PYTHONPATH=backend $(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `make test` or CI: it runs the suite once per mutant (see
# mutation/run.py). mutmut is installed on first use (the `mutation` extra).
MUTATION_STAMP := $(VENV)/.mutation
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	touch $(MUTATION_STAMP)

# After SQLite, what survived runs again on each of these servers that answers
# (MUTATION_SERVERS= : SQLite only).
MUTATION_SERVERS ?= $(TEST_POSTGRES_URL) $(TEST_MARIADB_URL)

mutation: $(MUTATION_STAMP) ## mutation testing of backend/core: a score per file, survivors in mutants/report.md (MUTANTS='core.governance.*': some)
	MUTATION_SERVERS='$(MUTATION_SERVERS)' $(BIN)/python mutation/run.py run $(if $(MUTANTS),'$(MUTANTS)')

# Autogenerated against a scratch database at head, so the new revision holds
# exactly what the models changed, whatever state the dev database is in.
REVISION_DB := $(CURDIR)/var/revision.db
revision: $(STAMP) ## autogenerate a migration from model changes: make revision m="add agent tags"
	@test -n "$(m)" || { echo 'usage: make revision m="what changed"'; exit 2; }
	@rm -f $(REVISION_DB)*
	DATABASE_URL=sqlite:///$(REVISION_DB) $(BIN)/alembic upgrade head
	DATABASE_URL=sqlite:///$(REVISION_DB) $(BIN)/alembic revision --autogenerate -m "$(m)"
	@rm -f $(REVISION_DB)*

schema-doc: $(STAMP) ## regenerate docs/schema.md (Mermaid ER diagram) from the models
	$(BIN)/python -m core.tools.schema_doc

clean: ## remove the virtualenv, caches and the embedded database
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage coverage.json var mutants
