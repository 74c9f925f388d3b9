"""Databases of their own for the race tests, on each backend.

Real connections, not the rolled-back `db` fixture: a race needs
transactions that really commit. `race_url` is parametrized over the three
backends. On the run's own backend it is the run's database, through the
harness's `transactional_db` (emptied after each test); on the others, a
scratch database for the module (a temporary SQLite file, or a PostgreSQL or
MariaDB database created and dropped through `tests.harness`, skipped with
the reason when no server answers). Each test seeds rows of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from core.database import async_url
from tests import harness

# Each kind of race database, and the dialect that names its backend.
RACE_BACKENDS = {"sqlite-file": "sqlite", "postgresql": "postgresql", "mariadb": "mysql"}


@pytest.fixture(params=list(RACE_BACKENDS))
def race_url(request: pytest.FixtureRequest, engine: Engine) -> URL:
    """A database with the schema on the backend the test's id names."""
    if RACE_BACKENDS[request.param] == engine.dialect.name:
        database: harness.CommittingDatabase = request.getfixturevalue("transactional_db")
        return database.url
    url: URL = request.getfixturevalue(f"_scratch_{request.param.replace('-', '_')}")
    return url


@pytest.fixture(scope="module")
def _scratch_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    with race_database("sqlite-file", tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def _scratch_postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    with race_database("postgresql", tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def _scratch_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    with race_database("mariadb", tmp_path_factory) as url:
        yield url


# Async races: each backend with each of its asyncio drivers.
ASYNC_RACES = [("sqlite-file", "aiosqlite"), ("postgresql", "psycopg"), ("postgresql", "asyncpg")]


@pytest.fixture(scope="module", params=ASYNC_RACES, ids=lambda race: race[1])
def async_race_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    """A scratch race database spelled with an asyncio driver, for races of
    AsyncSessions."""
    kind, driver = request.param
    with race_database(kind, tmp_path_factory) as url:
        yield async_url(url, driver=driver)


@contextmanager
def race_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A fresh database with the schema: "sqlite-file", "postgresql" or "mariadb"."""
    with ExitStack() as stack:
        if kind == "sqlite-file":
            url = make_url(f"sqlite:///{tmp_path_factory.mktemp('race') / 'race.db'}")
        elif kind == "postgresql":
            url = stack.enter_context(harness.scratch_postgres("race"))
        else:
            url = stack.enter_context(harness.scratch_mariadb("race"))
        harness.create_schema(url)
        yield url
