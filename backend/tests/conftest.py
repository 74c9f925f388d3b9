"""The one shared test harness: schema once, every test isolated.

Fixtures:
- `engine`: the test database (`TEST_DATABASE_URL`, default in-memory
  SQLite), schema built once per run; never the development database. On
  PostgreSQL it is a database the run creates beside the configured one (one
  per xdist worker) and drops at the end; `engine.url` names it.
- `db`: a Session inside a transaction that is rolled back after the test,
  whatever the test did (commit, rollback, IntegrityError, delete). The
  factories write to it unless given another session.
- `async_engine`, `async_db`: the same for async tests (`async def test_...`,
  no marker: pytest-asyncio runs in auto mode, on one loop for the run). An
  AsyncEngine on the run's own database, once per asyncio driver (aiosqlite;
  on PostgreSQL psycopg and asyncpg), and an AsyncSession rolled back after
  the test; `await async_create(XFactory, ...)` writes to it.
- `count_queries`: assert how many statements a block runs (on `db`, or on
  `async_db` in a test that takes it).

`--check-isolation` fails any test after which a table still holds rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from core.database import (
    DatabaseURLError,
    checked_url,
)
from tests import databases, harness
from tests.factories.base import bind_async_session, bind_session

# `tests.profiles`: the hypothesis profiles, registered once for every folder;
# `HYPOTHESIS_PROFILE` (dev, default, ci) picks one.
pytest_plugins = ["pytester", "tests.profiles"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--check-isolation",
        action="store_true",
        default=False,
        help="fail any test after which a table of the test database still holds rows",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    # Once, before any test runs and before xdist starts its workers (which
    # have `workerinput`): a database the suite must not use (the
    # development one) or cannot use (malformed, an unsupported backend, no
    # server) stops the run with one clear message, not after the tests
    # that need no database have passed, nor with an error per test.
    if hasattr(session.config, "workerinput"):
        return
    url = harness.test_database_url()
    try:
        checked_url(url, harness.TEST_DATABASE_URL_ENV)
        harness.refuse_development_database(url)
        databases.check_server_answers(url, setting=harness.TEST_DATABASE_URL_ENV)
    except (
        DatabaseURLError,
        harness.DevelopmentDatabaseError,
        databases.DatabaseServerError,
    ) as err:
        pytest.exit(str(err), returncode=4)


@pytest.fixture(scope="session")
def engine(pytestconfig: pytest.Config) -> Iterator[Engine]:
    # The database was vetted at session start; `engine_for_run` refuses the
    # development database once more, for callers outside this conftest.
    with harness.engine_for_run(harness.run_tag(pytestconfig)) as engine:
        yield engine


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with (
        engine.connect() as connection,
        harness.isolated_session(connection) as session,
        bind_session(session),
    ):
        yield session


@pytest.fixture
def count_queries(
    request: pytest.FixtureRequest,
) -> Callable[..., AbstractContextManager[harness.QueryLog]]:
    """`with count_queries(2): ...` asserts the block ran exactly two statements
    on the test's session: `async_db` in a test that takes it, else `db`."""
    session = request.getfixturevalue("async_db" if "async_db" in request.fixturenames else "db")

    def counter(expected: int | None = None) -> AbstractContextManager[harness.QueryLog]:
        return harness.count_queries(session, expected)

    return counter


# --------------------------------------------------------------------------
# Async
# --------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that uses the async engine runs once per asyncio driver of
    # the run's backend; read when the run collects, so a run inside a test
    # (pytester) with another TEST_DATABASE_URL gets its own backend's.
    if "async_engine" in metafunc.fixturenames:
        drivers = harness.async_drivers(harness.test_database_url())
        metafunc.parametrize("async_engine", drivers, indirect=True, scope="session")


@pytest.fixture(scope="session")
async def async_engine(
    request: pytest.FixtureRequest, engine: Engine
) -> AsyncIterator[AsyncEngine]:
    # Derived from `engine`: the same database (in memory, the same
    # connection), its schema built once, so the sentinel below, which reads
    # through `engine`, checks async tests too.
    async with harness.async_engine_for(engine, request.param) as async_engine:
        yield async_engine


@pytest.fixture
async def async_db(
    request: pytest.FixtureRequest, async_engine: AsyncEngine
) -> AsyncIterator[AsyncSession]:
    if "db" in request.fixturenames:
        # Two outer transactions that cannot see each other's rows; in
        # memory, two on one connection, which SQLite refuses.
        pytest.fail(
            f"{request.node.nodeid} takes both `db` and `async_db`: take one. An async "
            "test runs sync code with `await async_db.run_sync(fn)`.",
            pytrace=False,
        )
    async with (
        async_engine.connect() as connection,
        harness.async_isolated_session(connection) as session,
    ):
        with bind_async_session(session):
            yield session


@pytest.fixture(autouse=True)
def _isolation_sentinel(request: pytest.FixtureRequest) -> Iterator[None]:
    # Autouse, so it is set up before `db` and torn down after it: it sees
    # the database exactly as the next test will.
    yield
    if not request.config.getoption("--check-isolation"):
        return
    if "engine" not in request.fixturenames:
        return
    leftovers = harness.leftover_rows(request.getfixturevalue("engine"))
    if leftovers:
        pytest.fail(
            f"isolation broken: {request.node.nodeid} left rows behind: {leftovers}",
            pytrace=False,
        )
