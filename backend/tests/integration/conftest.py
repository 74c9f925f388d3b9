"""Databases of their own for the race and start-up tests, on the run's backend.

Real connections, not the rolled-back `db` fixture: a race needs
transactions that really commit. Each test here runs on the backend the
suite runs on, and on that one only: `make test` on a SQLite file, `make
test-postgres` on PostgreSQL, `make test-mariadb` on MariaDB (CI runs all
three). The fixtures below are parametrized from the run's backend when the
run collects, so a test's id names where it ran (`[sqlite-file-...]`,
`[postgresql-...]`, `[mariadb-...]`; the async races by driver).

`race_url` is the run's own database, through the harness's
`transactional_db` (on in-memory SQLite, a file of the run's own; emptied
after each test). `async_race_url` is a scratch database for the module (a
temporary SQLite file, or a PostgreSQL or MariaDB database created and
dropped through `tests.harness` beside the run's own), spelled with each of
the backend's asyncio drivers. Each test seeds rows of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy.engine import URL, make_url

from core.database import async_url
from tests import harness

# The kind of race database on each backend (by its dialect's name).
RACE_BACKENDS = {"sqlite": "sqlite-file", "postgresql": "postgresql", "mysql": "mariadb"}
# The fixtures of this folder that stand for a database on the run's backend.
ON_THE_RUNS_BACKEND = ("race_url", "fresh_database")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Read when the run collects (as `async_engine`'s drivers are): a run
    # inside a test with another TEST_DATABASE_URL gets its own backend's.
    backend = harness.run_backend()
    for name in ON_THE_RUNS_BACKEND:
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [RACE_BACKENDS[backend]], indirect=True)
    if "async_race_url" in metafunc.fixturenames:
        drivers = harness.async_drivers(harness.test_database_url())
        metafunc.parametrize("async_race_url", drivers, indirect=True, scope="module")


@pytest.fixture
def race_url(transactional_db: harness.CommittingDatabase) -> URL:
    """The run's database, with the schema, emptied after the test."""
    return transactional_db.url


@pytest.fixture(scope="module")
def async_race_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    """A scratch race database on the run's backend, spelled with the asyncio
    driver the test's id names, for races of AsyncSessions."""
    with race_database(RACE_BACKENDS[harness.run_backend()], tmp_path_factory) as url:
        yield async_url(url, driver=request.param)


@contextmanager
def race_database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A fresh database with the schema: "sqlite-file", or on the run's own
    server "postgresql" or "mariadb"."""
    with ExitStack() as stack:
        if kind == "sqlite-file":
            url = make_url(f"sqlite:///{tmp_path_factory.mktemp('race') / 'race.db'}")
        elif kind == "postgresql":
            url = stack.enter_context(harness.scratch_postgres("race"))
        else:
            url = stack.enter_context(harness.scratch_mariadb("race"))
        harness.create_schema(url)
        yield url
