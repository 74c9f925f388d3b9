"""A database of their own for the race tests, on each backend.

Real connections, not the rolled-back `db` fixture: a race needs
transactions that really commit. Each test module gets a fresh database per
backend, a temporary SQLite file or a scratch PostgreSQL or MariaDB database
created and dropped here, and each test seeds rows of its own in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy.engine import URL, make_url

from core.database import (
    async_url,
)
from tests import harness


@pytest.fixture(scope="module", params=["sqlite-file", "postgresql", "mariadb"])
def race_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    """A fresh database with the schema, shared by one module's tests."""
    with race_database(request.param, tmp_path_factory) as url:
        yield url


# Async races: each backend with each of its asyncio drivers.
ASYNC_RACES = [("sqlite-file", "aiosqlite"), ("postgresql", "psycopg"), ("postgresql", "asyncpg")]


@pytest.fixture(scope="module", params=ASYNC_RACES, ids=lambda race: race[1])
def async_race_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    """`race_url` spelled with an asyncio driver, for races of AsyncSessions."""
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
