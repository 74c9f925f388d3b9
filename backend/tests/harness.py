"""The test harness's machinery; `conftest.py` only wires it into fixtures.

Nothing here, nor in conftest.py, names the project under test: the
project's wiring (its metadata, settings, engine maker, session seams,
factories' session binder) is one `Project`, in `tests/project.py`, which
conftest.py loads from the `harness_project` ini option. Another project
reuses these modules unchanged and writes its own `Project` (see "Drop-in
harness" below, and tests/unit/harness/test_drop_in.py, which does it).

The strategy, in SQLAlchemy's documented recipe "joining a Session into an
external transaction": the schema is built once per test session; each test
runs on one connection inside an outer transaction that is rolled back at the
end, and its Session joins that transaction with
`join_transaction_mode="create_savepoint"`, so the test's own `commit()`,
`rollback()` and failed flushes only touch a SAVEPOINT.

On a database server (PostgreSQL) the run never uses the configured database
itself: it creates one of its own beside it, one per xdist worker, and drops
it at the end (`run_tag` here; `sibling_database_url` and `created_database`
in `tests.databases`, which creates and drops every database of the run).
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
    suppress,
)
from dataclasses import dataclass, field
from inspect import signature
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite
import pytest
from hypothesis import HealthCheck, is_hypothesis_test, settings
from sqlalchemy import Connection, Engine, MetaData, event, func, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from tests.databases import (
    SERVER_BACKENDS,
    created_database,
    is_memory_sqlite,
    same_database,
    sibling_database_url,
)
from tests.guard import DEFAULT_HINT

TEST_DATABASE_URL_ENV = "TEST_DATABASE_URL"
DEFAULT_TEST_DATABASE_URL = "sqlite://"  # in memory: one shared connection

DecoratedTest = TypeVar("DecoratedTest", bound=Callable[..., Any])


# --------------------------------------------------------------------------
# Drop-in harness: the project under test, in one place
# --------------------------------------------------------------------------


def _no_binding(_session: Session | AsyncSession) -> AbstractContextManager[object]:
    return nullcontext()


SessionFactorySeam = Callable[[sessionmaker[Session]], AbstractContextManager[object]]


@dataclass(frozen=True)
class Project:
    """Everything the harness needs to know about the project it tests.

    `metadata`: the schema built once per run, counted by the isolation
    sentinel, emptied after `transactional_db`. `make_engine(url)`: the
    project's engine maker (on SQLite it must emit BEGIN itself, see
    "The sqlite3 BEGIN workaround" in the README). `app_database_url()`:
    the application's own database, which the suite refuses to run on, named
    by the setting `app_url_setting`; the suite's is `test_url_setting`
    (default `default_test_url`, in-memory SQLite), vetted by `check_url(url,
    setting)` (raise ValueError). Optional: `bind_session(session)`, a context
    manager that makes `db` the factories' session (`bind_async_session`: the
    same for `async_db`); `use_session_factory
    (sessionmaker)`, the context manager that points the application's own
    units of work elsewhere (`transactional_db` points them at the run's
    database); `capture_on_commit(execute=...)`, what the fixture of that name
    returns.
    """

    metadata: MetaData
    make_engine: Callable[[URL], Engine]
    app_database_url: Callable[[], str]
    app_url_setting: str = "DATABASE_URL"
    test_url_setting: str = TEST_DATABASE_URL_ENV
    default_test_url: str = DEFAULT_TEST_DATABASE_URL
    check_url: Callable[[str, str], object] = lambda url, _setting: make_url(url)
    bind_session: Callable[[Session], AbstractContextManager[object]] = _no_binding
    bind_async_session: Callable[[AsyncSession], AbstractContextManager[object]] = _no_binding
    use_session_factory: (
        Callable[[sessionmaker[Session]], AbstractContextManager[object]] | None
    ) = None
    capture_on_commit: Callable[..., AbstractContextManager[list[Callable[[], object]]]] | None = (
        None
    )

    def guard_hint(self) -> str:
        """What the database-access guard tells a test to do instead."""
        hint = DEFAULT_HINT
        seam = self.use_session_factory
        if seam is not None:
            hint += (
                " Code that opens its own unit of work is pointed at the run's database by "
                f"{seam.__module__}.{seam.__qualname__}(sessionmaker)."
            )
        return hint


# The project in force, innermost last: a pytester run inside a test
# configures its own for as long as it runs.
_projects: list[Project] = []


def configure(project: Project) -> None:
    """Make `project` the one the harness tests (conftest.py's pytest_configure)."""
    _projects.append(project)


def unconfigure(project: Project) -> None:
    _projects.remove(project)


def project() -> Project:
    if not _projects:
        raise RuntimeError(
            "the test harness has no project: conftest.py configures the one the "
            "`harness_project` ini option names (module:attribute of a tests.harness.Project)"
        )
    return _projects[-1]


# The plugins a pytest run inside a test loads: pytest-asyncio (the harness's
# async fixtures) and hypothesis's (the property tests' profiles and
# reports); by name, like the suite's own run (pyproject.toml's addopts).
# Autoloading would load every installed plugin, and warn that the modules
# of theirs the outer run imported without rewriting its asserts stay so.
INNER_PLUGINS = (
    "--disable-plugin-autoload",
    "-p",
    "pytest_asyncio.plugin",
    "-p",
    "hypothesispytest",
)
# What a pytest run inside a test (pytester) needs to run on this harness:
# those plugins, its conftest as a plugin, and the suite's asyncio loop scope
# (the inner run reads no pyproject.toml).
INNER_RUN = (
    *INNER_PLUGINS,
    "-p",
    "tests.conftest",
    "-o",
    "asyncio_default_fixture_loop_scope=session",
)


class DevelopmentDatabaseError(RuntimeError):
    """Raised when the tests are pointed at the application's own database."""


def test_database_url() -> str:
    settings = project()
    return os.environ.get(settings.test_url_setting) or settings.default_test_url


def refuse_development_database(test_url: str, app_url: str | None = None) -> None:
    """Never run the suite against the application's own database."""
    settings = project()
    app_url = app_url or settings.app_database_url()
    if same_database(test_url, app_url):
        test_setting = settings.test_url_setting
        raise DevelopmentDatabaseError(
            f"{test_setting} ({test_url}) is the application database "
            f"({settings.app_url_setting}={app_url}); the tests roll back and drop what they "
            f"write and must never run there. Unset {test_setting} to use an "
            "in-memory SQLite database, or point it at a database of its own."
        )


@contextmanager
def isolated_session(connection: Connection) -> Iterator[Session]:
    """A Session whose every write is undone when the block ends."""
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        # Close the session first, so its savepoints are released before the
        # outer transaction is rolled back.
        session.close()
        if outer.is_active:
            outer.rollback()


@contextmanager
def _example_savepoint(session: Session) -> Iterator[Session]:
    """One hypothesis example in a SAVEPOINT of its own, undone when it ends.

    What the test wrote before its examples is kept: the session's work so
    far is committed into the test's own transaction (still rolled back when
    the test ends), and every example starts from it. Inside the block the
    session behaves as usual: `commit()`, `rollback()` and failed flushes stay
    within the example.
    """
    connection = session.bind
    if not isinstance(connection, Connection):
        raise TypeError("db_examples needs a Session bound to a Connection, like `db`")
    # End the session's own savepoint first: it is the session's outermost
    # transaction, and releasing it later would release the example's too.
    session.commit()
    known = set(session.identity_map.keys())
    example = connection.begin_nested()
    try:
        yield session
    finally:
        session.rollback()
        if example.is_active:
            example.rollback()
        # Objects the example made or loaded would otherwise answer
        # `session.get()` from the identity map after their rows are gone.
        for obj in list(session):
            if inspect(obj).identity_key not in known:
                session.expunge(obj)
        session.expire_all()


def db_examples(**overrides: Any) -> Callable[[DecoratedTest], DecoratedTest]:
    """`@db_examples()` directly above `@given(...)`, for a property test that
    takes the `db` fixture: every example runs in a SAVEPOINT of its own, so
    examples never see each other's rows (or identity-map entries).

    Hypothesis runs all the examples of a test inside one call of a
    function-scoped fixture, so rows one example writes would be seen by the
    next. Hypothesis says so with its `function_scoped_fixture` health check,
    which fails a plain `@given` test that takes `db`; this decorator wraps
    each example (hypothesis's documented `inner_test` hook) and only then
    suppresses that check, for this test alone. `overrides` are further
    settings (`max_examples=examples_per_case()`); the rest come from the
    loaded profile (`tests/profiles.py`).
    """

    def decorate(test: DecoratedTest) -> DecoratedTest:
        name = getattr(test, "__qualname__", repr(test))
        if not is_hypothesis_test(test):
            raise TypeError(
                f"@db_examples goes directly above @given(...): {name} is not a @given test"
            )
        inner = test.hypothesis.inner_test  # type: ignore[attr-defined]
        if "db" not in signature(inner).parameters:
            raise TypeError(f"{name} takes no `db` fixture: @given alone will do")

        @functools.wraps(inner)
        def one_example(*args: Any, **kwargs: Any) -> Any:
            with _example_savepoint(kwargs["db"]):
                return inner(*args, **kwargs)

        test.hypothesis.inner_test = one_example  # type: ignore[attr-defined]
        # Built when the test is decorated, so it inherits the loaded profile.
        checks = [HealthCheck.function_scoped_fixture]
        return settings(suppress_health_check=checks, **overrides)(test)

    return decorate


def tables_with_rows(connection: Connection) -> dict[str, int]:
    """Row counts of every non-empty table of the schema."""
    counts = {}
    for table in project().metadata.sorted_tables:
        count = connection.scalar(select(func.count()).select_from(table))
        if count:
            counts[table.name] = int(count)
    return counts


def leftover_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return tables_with_rows(connection)


# --------------------------------------------------------------------------
# Counting queries, like Django's assertNumQueries
# --------------------------------------------------------------------------

_TRANSACTION_CONTROL = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT)\b", re.I)


@dataclass
class QueryLog:
    """The SQL statements a block ran (transaction control excluded)."""

    statements: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.statements)

    def describe(self) -> str:
        return "\n".join(f"  {n}. {sql}" for n, sql in enumerate(self.statements, 1)) or "  (none)"


@contextmanager
def count_queries(
    bind: Connection | Engine | Session | AsyncConnection | AsyncEngine | AsyncSession,
    expected: int | None = None,
    *,
    max: int | None = None,  # shadows the builtin: the name pytest-django users know
) -> Iterator[QueryLog]:
    """Record the statements run inside the block; assert their number if given.

    `expected` is the exact count (Django's `assertNumQueries`, Rails'
    `assert_queries_count`), `max` a budget the block may stay under
    (pytest-django's `django_assert_max_num_queries`). A failure lists the
    statements the block ran.

    with count_queries(db, 2) as log:
        ...
    with count_queries(db, max=3):
        ...

    An async test counts the same way, awaiting inside a plain `with`:
    `with count_queries(async_db, 2): await async_db.execute(...)`.
    """
    if expected is not None and max is not None:
        raise TypeError("count_queries takes an exact count or a max, not both")
    target = _statements_of(bind)
    log = QueryLog()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not _TRANSACTION_CONTROL.match(statement):
            log.statements.append(" ".join(statement.split()))

    event.listen(target, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(target, "before_cursor_execute", record)
    if expected is not None and len(log) != expected:
        raise AssertionError(f"expected {_queries(expected)}, ran {len(log)}:\n{log.describe()}")
    if max is not None and len(log) > max:
        raise AssertionError(f"expected at most {_queries(max)}, ran {len(log)}:\n{log.describe()}")


def _queries(count: int) -> str:
    return f"{count} quer{'y' if count == 1 else 'ies'}"


def _statements_of(
    bind: Connection | Engine | Session | AsyncConnection | AsyncEngine | AsyncSession,
) -> Connection | Engine:
    """Where `bind`'s statements can be heard: a session's connection, an
    async object's sync counterpart (the one SQLAlchemy's events fire on)."""
    if isinstance(bind, AsyncSession):
        # Asking an AsyncSession for its connection takes an `await`; one
        # bound to a connection, like `async_db`, has it as its bind.
        connection = bind.sync_session.bind
        if not isinstance(connection, Connection):
            raise TypeError(
                "count_queries needs an AsyncSession bound to a connection, like "
                "`async_db`; for another, pass `await session.connection()`."
            )
        return connection
    if isinstance(bind, AsyncConnection):
        if bind.sync_connection is None:
            raise TypeError("count_queries needs a started AsyncConnection (`await` it first)")
        return bind.sync_connection
    if isinstance(bind, AsyncEngine):
        return bind.sync_engine
    return bind.connection() if isinstance(bind, Session) else bind


QueryCounter = Callable[..., AbstractContextManager[QueryLog]]


def sqlite_savepoint_works(connection: Connection) -> bool:
    """A probe: is a savepoint released inside a rolled-back transaction undone?

    That is what the `db` fixture relies on. Without the BEGIN workaround the
    driver opens no outer transaction, so the savepoint is the outermost one
    and releasing it commits. `connection` must have no transaction open.
    """
    connection.exec_driver_sql("CREATE TEMP TABLE _savepoint_probe (x INTEGER)")
    connection.commit()
    try:
        outer = connection.begin()
        with connection.begin_nested():
            connection.exec_driver_sql("INSERT INTO _savepoint_probe VALUES (1)")
        outer.rollback()
        survived = connection.exec_driver_sql("SELECT count(*) FROM _savepoint_probe").scalar()
    finally:
        connection.rollback()
        connection.exec_driver_sql("DROP TABLE _savepoint_probe")
        connection.commit()
    return bool(survived == 0)


# --------------------------------------------------------------------------
# The run's own database: created for the run, dropped after it
# --------------------------------------------------------------------------


def run_tag(config: pytest.Config) -> str:
    """What names this test session's database: `<run id>` or `<run id>_<xdist worker>`.

    The run id is shared by the workers of one xdist run and new for every
    run. It comes from the session's own config, not from the environment: a
    pytester run inside a test (inside a worker, even) is a session of its
    own and must get a database of its own.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return uuid.uuid4().hex[:8]
    return f"{str(workerinput['testrunuid'])[:8]}_{workerinput['workerid']}"


def run_backend() -> str:
    """The backend the suite runs on: "sqlite", "postgresql" or "mysql"
    (MariaDB), as SQLAlchemy names it."""
    return make_url(test_database_url()).get_backend_name()


def run_server(backend: str) -> URL:
    """The run's own `backend` server ("postgresql" or "mysql"), for a test
    that needs that server itself. Such a test runs in that backend's suite
    only: it is marked `@pytest.mark.server(backend)`, or parametrized from
    `run_backend()`; asked for another backend's server, this fails the test."""
    configured = make_url(test_database_url())
    if configured.get_backend_name() != backend:
        pytest.fail(
            f"a test needs the {SERVER_BACKENDS[backend].title} server but the suite runs on "
            f"{configured.get_backend_name()}: mark it @pytest.mark.server({backend!r}), so "
            "that it runs in that backend's suite only",
            pytrace=False,
        )
    return configured


@contextmanager
def scratch_database(backend: str, label: str) -> Iterator[URL]:
    """A database of the caller's own, `<server database>_<label>_<random>`, on
    the run's own `backend` server (`run_server`); created here, dropped afterwards."""
    server = run_server(backend)
    scratch = sibling_database_url(server, f"{label}_{uuid.uuid4().hex[:12]}")
    with created_database(scratch) as url:
        yield url


def scratch_postgres(label: str) -> AbstractContextManager[URL]:
    """`scratch_database("postgresql", label)`."""
    return scratch_database("postgresql", label)


def scratch_mariadb(label: str) -> AbstractContextManager[URL]:
    """`scratch_database("mysql", label)`: a scratch MariaDB database."""
    return scratch_database("mysql", label)


def create_schema(url: str | URL) -> None:
    """Build the project's schema (`create_all`) in the database at `url`, on an
    engine of its own: for tests that need a database with real commits."""
    with _engine_with_schema(make_url(url)):
        pass


@contextmanager
def engine_for_run(tag: str, configured: str | None = None) -> Iterator[Engine]:
    """An engine on this run's own test database, with the schema built once.

    Its `url` names the database actually used (`configured` suffixed with
    `tag`; in-memory SQLite as it is).
    """
    configured = configured or test_database_url()
    refuse_development_database(configured)
    with (
        created_database(sibling_database_url(configured, tag)) as url,
        _engine_with_schema(url) as engine,
    ):
        yield engine


@contextmanager
def _engine_with_schema(url: URL) -> Iterator[Engine]:
    engine = project().make_engine(url)
    try:
        project().metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# The garbage collector, for a test run
# --------------------------------------------------------------------------

# Allocations between two collections of the youngest generation during the
# run (CPython's default: 700).
GC_YOUNG_THRESHOLD = 10_000
_gc_restore: list[Callable[[], None]] = []


def tune_garbage_collector() -> Callable[[], None] | None:
    """Make CPython's cyclic garbage collector cheaper for the rest of a test
    run, once per process; return what puts it back (None: already tuned, as
    in a run inside a test).

    Called when collection is done: what is alive then (modules, classes, the
    collected tests, the schema) lives until the run ends, and `gc.freeze()`
    takes it out of every later collection, which would walk it again and
    again. The youngest generation is collected every `GC_YOUNG_THRESHOLD`
    allocations instead of 700. Reference counting, which frees nearly every
    object, is untouched; garbage in cycles is still collected, less often.
    On `make test` the collector's own time fell by about half.
    """
    if _gc_restore:
        return None
    young, middle, old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)

    def restore() -> None:
        gc.set_threshold(young, middle, old)
        gc.unfreeze()
        _gc_restore.clear()

    _gc_restore.append(restore)
    return restore


# --------------------------------------------------------------------------
# Async: the same isolation for an AsyncSession
# --------------------------------------------------------------------------


def _async_app() -> Any:
    """This project's async engines (`core.database`). The async half of the
    harness reaches them directly, when an async fixture first runs; the sync
    half goes through `Project`, so a project that reuses this module for
    sync tests needs nothing of this one's `core`."""
    return importlib.import_module("core.database")


def _import_async_drivers() -> None:
    """Import every asyncio driver once, in the run that imports the harness.

    pytester's in-process runs forget the modules first imported inside
    them; a driver first used by such a run would be imported a second
    time afterwards, and asyncpg's compiled protocol, loaded twice, crashes
    the interpreter (a segmentation fault at its next connection).
    """
    try:
        known = _async_app().ASYNC_DRIVERS
    except ModuleNotFoundError:  # another project's run: no async engines of ours
        return
    for backend, drivers in known.items():
        for driver in drivers:
            with suppress(ImportError):  # a driver not installed is never used
                URL.create(f"{backend}+{driver}").get_dialect(_is_async=True).import_dbapi()


_import_async_drivers()


def async_drivers(url: str | URL) -> tuple[str, ...]:
    """The asyncio drivers the async fixtures run on for a suite on `url`:
    each of the backend's `ASYNC_DRIVERS` (on PostgreSQL psycopg's async
    mode and asyncpg), each a parameter of the `async_engine` fixture."""
    drivers: tuple[str, ...] = _async_app().ASYNC_DRIVERS.get(make_url(url).get_backend_name(), ())
    return drivers


@asynccontextmanager
async def async_engine_for(engine: Engine, driver: str) -> AsyncIterator[AsyncEngine]:
    """An `AsyncEngine` on the database `engine` uses (the run's own, its
    schema already built), through `driver`; disposed of afterwards.

    - In memory the database lives in the sync engine's one connection, so
      the async engine drives that very connection, through aiosqlite's
      worker thread: the sync engine, and with it `--check-isolation`, sees
      exactly what async tests leave. A test takes `db` or `async_db`, never
      both (two transactions on one connection, see `async_db`).
    - asyncpg keeps no prepared statements (`prepared_statement_cache_size=0`):
      a statement a test prepared would go stale when a later test, or the
      sync engine, changes the schema it reads (`InvalidCachedStatementError`
      in an unrelated test, in one order only); see README "Async".
    """
    url = _async_app().async_url(engine.url, driver=driver)
    refuse_development_database(url.render_as_string(hide_password=False))
    options: dict[str, Any] = {}
    if is_memory_sqlite(url):
        options["async_creator"] = _lend_memory_connection(engine)
    elif driver == "asyncpg":
        options["connect_args"] = {"prepared_statement_cache_size": 0}
    async_engine: AsyncEngine = _async_app().make_async_engine(url, **options)
    try:
        yield async_engine
    finally:
        await async_engine.dispose()


class _LentConnection:
    """A sqlite3 connection lent to aiosqlite: every attribute is the
    connection's own, except `close()`, which is left to its owner."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        object.__setattr__(self, "_connection", connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # aiosqlite's adapter sets `isolation_level` on it (the BEGIN fix).
        setattr(self._connection, name, value)

    def close(self) -> None:
        """Kept open: it is the sync engine's, and closing it would drop the
        in-memory database under the sync engine."""


def _lend_memory_connection(engine: Engine) -> Callable[[], aiosqlite.Connection]:
    """`async_creator` for an in-memory database: aiosqlite around the one
    sqlite3 connection of `engine` (a StaticPool, made thread-agnostic by
    `make_engine`'s `check_same_thread=False`)."""
    with engine.connect() as connection:
        driver_connection = connection.connection.driver_connection
    if not isinstance(driver_connection, sqlite3.Connection):
        raise TypeError(f"expected the sqlite3 connection of {engine.url}")
    lent = cast(sqlite3.Connection, _LentConnection(driver_connection))

    def connect() -> aiosqlite.Connection:
        wrapper = aiosqlite.Connection(lambda: lent, iter_chunk_size=64)
        # As SQLAlchemy's own aiosqlite connect does: a worker thread left
        # running must not keep the interpreter alive.
        wrapper._thread.daemon = True
        return wrapper

    return connect


@asynccontextmanager
async def async_isolated_session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """`isolated_session` for async code: an `AsyncSession` with the
    application's settings (`make_async_session_factory`) whose every write
    is undone when the block ends. Its `commit()` and `rollback()` only
    release or roll back a SAVEPOINT of the outer transaction."""
    outer = await connection.begin()
    sessions = _async_app().make_async_session_factory(
        connection, join_transaction_mode="create_savepoint"
    )
    try:
        # Closed first (by `async with`), so its savepoints end before the
        # outer transaction is rolled back.
        async with sessions() as session:
            yield session
    finally:
        if outer.is_active:
            await outer.rollback()


# --------------------------------------------------------------------------
# Tests that really commit: the run's database, emptied afterwards
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CommittingDatabase:
    """A database a test's code really commits into (own sessions, connections,
    threads), emptied after the test: `transactional_db`."""

    url: URL
    engine: Engine
    sessions: sessionmaker[Session]


@contextmanager
def committing_engine(run_engine: Engine, folder: Path) -> Iterator[Engine]:
    """The engine tests that really commit use, for the whole run.

    On a server, or a SQLite file, the run's own database: `run_engine`. An
    in-memory SQLite database lives in one connection, which threads and
    other connections cannot share, so there it is a SQLite file of the
    run's own in `folder` (created with the schema, deleted at the end).
    """
    if not is_memory_sqlite(run_engine.url):
        yield run_engine
        return
    with (
        created_database(f"sqlite:///{folder / 'transactional.db'}") as url,
        _engine_with_schema(url) as engine,
    ):
        yield engine


def empty_tables(engine: Engine) -> None:
    """Delete every row, children before parents, in one transaction.

    DELETE rather than TRUNCATE: after a test's few committed rows, DELETE of
    every table took 5.6 ms (median of 30) on PostgreSQL, one TRUNCATE of all
    of them 66 ms (TRUNCATE recreates each table's files whether or not it
    holds rows); SQLite has only DELETE (1.3 ms).
    """
    with engine.begin() as connection:
        for table in reversed(project().metadata.sorted_tables):
            connection.execute(table.delete())


@contextmanager
def committing_database(engine: Engine) -> Iterator[CommittingDatabase]:
    """`engine`'s database for one test: the application's own units of work
    use it inside the block (the project's `use_session_factory`), and every
    table is emptied afterwards, whatever the test did."""
    sessions = sessionmaker(bind=engine)
    seam = project().use_session_factory
    try:
        with nullcontext() if seam is None else seam(sessions):
            yield CommittingDatabase(engine.url, engine, sessions)
    finally:
        empty_tables(engine)
