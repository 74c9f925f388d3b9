"""A database for the race tests on each backend, where transactions really commit.

Real connections, not the rolled-back `db` fixture: a race needs
transactions that really commit. `race_url` is parametrized over both
backends. On the run's own backend it is the run's database, through the
harness's `transactional_db` (emptied after each test); on the other one, a
scratch database for the module (a temporary SQLite file, or a PostgreSQL
database created and dropped through `tests.harness.scratch_postgres`,
skipped with the reason when no server answers). Each test seeds rows of
its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from core.database import Base, make_engine
from tests import harness

RACE_BACKENDS = {"sqlite-file": "sqlite", "postgresql": "postgresql"}


@pytest.fixture(params=list(RACE_BACKENDS))
def race_url(request: pytest.FixtureRequest, engine: Engine) -> URL:
    """A database with the schema on the backend the test's id names."""
    if RACE_BACKENDS[request.param] == engine.dialect.name:
        database: harness.CommittingDatabase = request.getfixturevalue("transactional_db")
        return database.url
    url: URL = request.getfixturevalue(f"_scratch_{RACE_BACKENDS[request.param]}")
    return url


@pytest.fixture(scope="module")
def _scratch_sqlite(tmp_path_factory: pytest.TempPathFactory) -> URL:
    return _with_schema(make_url(f"sqlite:///{tmp_path_factory.mktemp('race') / 'race.db'}"))


@pytest.fixture(scope="module")
def _scratch_postgresql() -> Iterator[URL]:
    with ExitStack() as stack:
        yield _with_schema(stack.enter_context(harness.scratch_postgres("race")))


def _with_schema(url: URL) -> URL:
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    return url
