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
  on PostgreSQL psycopg and asyncpg; on MariaDB aiomysql), and an
  AsyncSession rolled back after the test; `await async_create(XFactory,
  ...)` writes to it.
- `count_queries`: assert how many statements a block runs (exactly, or
  `max=`), on `db`, or on `async_db` in a test that takes it.
- `transactional_db`: for code that opens its own sessions, connections or
  threads: real commits into the run's database, emptied after the test.
- `capture_on_commit`: the `on_commit` callbacks a block registers.
- Always on: the database-access guard (`tests.guard`): a connection to any
  database but the run's own fails the test at once.
- Once collection is done, the garbage collector is tuned for the run
  (`harness.tune_garbage_collector`: what is alive then is frozen, the
  youngest generation collected less often), and put back at the end.

A test that needs a database server itself (PostgreSQL's or MariaDB's own
behaviour) is marked `@pytest.mark.server("postgresql")` (or "mysql") and
runs in that backend's suite only (`make test-postgres`, `make
test-mariadb`), on the run's own server; the other suites deselect it.

`--check-isolation` fails any test after which a table still holds rows;
`--strict-loading` (or `@pytest.mark.strict_loading`) any test with an N+1
lazy load (`tests.strict_loading`).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tests import databases, guard, harness
from tests.strict_loading import NPlusOneError, strict_loading

# `tests.profiles`: the hypothesis profiles, registered once for every folder;
# `HYPOTHESIS_PROFILE` (dev, default, ci) picks one.
pytest_plugins = ["pytester", "tests.profiles"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "harness_project",
        "the project the harness tests: module:attribute of a tests.harness.Project",
        default="tests.project:PROJECT",
    )
    parser.addoption(
        "--check-isolation",
        action="store_true",
        default=False,
        help="fail any test after which a table of the test database still holds rows",
    )
    parser.addoption(
        "--strict-loading",
        action="store_true",
        default=False,
        help="fail any test that lazy-loads a relationship for two or more objects of one "
        "class (N+1), as @pytest.mark.strict_loading does for one test",
    )


def pytest_configure(config: pytest.Config) -> None:
    module, _, attribute = str(config.getini("harness_project")).partition(":")
    project = getattr(importlib.import_module(module), attribute)
    if not isinstance(project, harness.Project):
        raise pytest.UsageError(f"harness_project names {project!r}, not a tests.harness.Project")
    harness.configure(project)
    config.stash[_PROJECT] = project
    config.addinivalue_line(
        "markers",
        "server(backend): the test needs the postgresql or mysql (MariaDB) server itself: "
        "it runs in the suite on that backend only (TEST_DATABASE_URL), deselected elsewhere",
    )
    config.addinivalue_line(
        "markers",
        "strict_loading(on=True, reason=...): fail the test if a relationship is lazy-loaded "
        "for two or more objects of one class (N+1; tests.strict_loading); "
        "strict_loading(False, reason=...) exempts a test from --strict-loading",
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    restore_gc = config.stash.get(_RESTORE_GC, None)
    if restore_gc is not None:
        restore_gc()
    project = config.stash.get(_PROJECT, None)
    if project is not None:
        harness.unconfigure(project)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # Everything collected is alive until the run ends (tests.harness).
    restore = harness.tune_garbage_collector()
    if restore is not None:
        session.config.stash[_RESTORE_GC] = restore


_RESTORE_GC = pytest.StashKey[Callable[[], None]]()


_PROJECT = pytest.StashKey[harness.Project]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # Around the test's body only: fixtures set up what the test needs.
    if not _strict_loading(item):
        return (yield)
    try:
        with strict_loading():
            return (yield)
    except NPlusOneError as error:
        # The finding, not the harness's own frames.
        pytest.fail(str(error), pytrace=False)


def _strict_loading(item: pytest.Item) -> bool:
    """`@pytest.mark.strict_loading` turns N+1 detection on for a test;
    `@pytest.mark.strict_loading(False, reason=...)` off, even under
    --strict-loading, for a test whose subject is one object's lazy load."""
    marker = item.get_closest_marker("strict_loading")
    if marker is None:
        return bool(item.config.getoption("--strict-loading"))
    on = bool(marker.args[0]) if marker.args else True
    if not on and not marker.kwargs.get("reason"):
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.strict_loading(False) needs a reason= saying why "
            "the test lazy-loads one relationship object by object",
            pytrace=False,
        )
    return on


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Each server's own tests run in the suite on that server, where its
    # database is the run's own: `make test` runs none of them, CI's
    # `make test-postgres` and `make test-mariadb` run each once.
    backend = harness.run_backend()
    kept: list[pytest.Item] = []
    elsewhere: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("server")
        (elsewhere if marker is not None and backend not in marker.args else kept).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept


def pytest_sessionstart(session: pytest.Session) -> None:
    # Once, before any test runs and before xdist starts its workers (which
    # have `workerinput`): a database the suite must not use (the
    # development one) or cannot use (malformed, an unsupported backend, no
    # server) stops the run with one clear message, not after the tests
    # that need no database have passed, nor with an error per test.
    if hasattr(session.config, "workerinput"):
        return
    url = harness.test_database_url()
    project = harness.project()
    try:
        project.check_url(url, project.test_url_setting)
        harness.refuse_development_database(url)
        databases.check_server_answers(url, setting=project.test_url_setting)
    except (
        ValueError,  # the project's check_url
        harness.DevelopmentDatabaseError,
        databases.DatabaseServerError,
    ) as err:
        pytest.exit(str(err), returncode=4)


@pytest.fixture(scope="session", autouse=True)
def _database_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Connections to any database but the run's own fail at once (`tests.guard`);
    SQLite files in pytest's temporary folder are the tests' own."""
    with (
        databases.allowed_database(tmp_path_factory.getbasetemp()),
        guard.database_guard(harness.project().guard_hint()),
    ):
        yield


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
        harness.project().bind_session(session),
    ):
        yield session


@pytest.fixture(scope="session")
def _committing_engine(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with harness.committing_engine(engine, tmp_path_factory.mktemp("transactional")) as committing:
        yield committing


@pytest.fixture
def transactional_db(
    request: pytest.FixtureRequest, _committing_engine: Engine
) -> Iterator[harness.CommittingDatabase]:
    """For code that opens its own sessions, connections or threads: they
    really commit, into the run's database (on in-memory SQLite, a file of
    the run's own), which is emptied after the test. `session_scope()`
    without a factory uses it. Not with `db`: a test gets one or the other."""
    if "db" in request.fixturenames:
        pytest.fail(
            f"{request.node.nodeid} asks for both `db` and `transactional_db`: the rolled-back "
            "session would hold locks the committing code waits for. Use one of them.",
            pytrace=False,
        )
    with harness.committing_database(_committing_engine) as database:
        yield database


@pytest.fixture
def capture_on_commit() -> Callable[..., AbstractContextManager[list[Callable[[], object]]]]:
    """Django's `captureOnCommitCallbacks`: inside `db` nothing ever really
    commits, so no `on_commit` callback runs by itself.
    `with capture_on_commit() as callbacks:` collects those the block
    registers (a rolled-back savepoint's are left out); `execute=True` also
    runs them when the block ends."""
    capture = harness.project().capture_on_commit
    if capture is None:
        pytest.fail("the harness's project has no capture_on_commit", pytrace=False)
    return capture


@pytest.fixture
def count_queries(
    request: pytest.FixtureRequest,
) -> Callable[..., AbstractContextManager[harness.QueryLog]]:
    """`with count_queries(2): ...` asserts the block ran exactly two statements,
    `with count_queries(max=2): ...` at most two, on the test's session:
    `async_db` in a test that takes it, else `db`."""
    session = request.getfixturevalue("async_db" if "async_db" in request.fixturenames else "db")

    def counter(
        expected: int | None = None, *, max: int | None = None
    ) -> AbstractContextManager[harness.QueryLog]:
        return harness.count_queries(session, expected, max=max)

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
        with harness.project().bind_async_session(session):
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


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's own `pytester`, minus the bytecode of the modules it writes:
    each is new, compiled once and thrown away, so caching it under
    `.venv/pycache` (the Makefile's PYTHONPYCACHEPREFIX) would only fill it."""
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    return pytester
