"""The async harness isolates every test, proved from outside the tests.

`async_db` is `db` for an `AsyncSession`: an outer transaction on an
`AsyncConnection`, the session joined with `join_transaction_mode=
"create_savepoint"`, everything rolled back after the test. pytester runs
small generated suites in-process with this project's harness (its own
run, its own database), so "the next test starts empty" is checked by a
test that really runs next, and `--check-isolation` by a test that really
leaks.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import StaticPool

from core.database import (
    async_url,
    make_async_engine,
    make_engine,
)
from core.models import User
from core.schema import Base
from tests import harness
from tests.unit.asynchronous.scenarios import integrity_error, users

# pytest-asyncio alone (no pytest-randomly: "the last test" is the last one
# written), configured as the project's pyproject.toml does, which an inner
# run does not read.
INNER_ARGS = (
    *harness.INNER_PLUGINS,
    "-pno:hypothesispytest",
    "-p",
    "tests.conftest",
    "-o",
    "asyncio_mode=auto",
    "-o",
    "asyncio_default_fixture_loop_scope=session",
    "-o",
    "asyncio_default_test_loop_scope=session",
)
# An async test runs once per asyncio driver of the backend.
DRIVERS = len(harness.async_drivers(harness.test_database_url()))


def run_suite(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    """Run `source` as a test module in-process, with this project's harness."""
    pytester.makepyfile(test_generated=textwrap.dedent(source))
    return pytester.runpytest(*INNER_ARGS, *args)


# --------------------------------------------------------------------------
# Commit, IntegrityError, delete: the next test, sync or async, starts empty
# --------------------------------------------------------------------------

ISOLATION_SUITE = """
    from sqlalchemy import delete

    from core.models import User
    from tests.factories import AgentFactory, UserFactory, async_create, async_create_batch
    from tests.harness import tables_with_rows
    from tests.unit.asynchronous.scenarios import integrity_error, users


    async def rows(async_db):
        return await async_db.run_sync(lambda session: tables_with_rows(session.connection()))


    async def test_commit(async_db):
        assert await rows(async_db) == {}
        await async_create(UserFactory, email="kept@example.com")
        await async_create(AgentFactory, with_owner=True)
        await async_db.commit()
        assert await users(async_db) == 2


    async def test_integrity_error_then_rollback(async_db):
        assert await rows(async_db) == {}
        await integrity_error(async_db)


    async def test_delete(async_db):
        assert await rows(async_db) == {}
        await async_create_batch(UserFactory, 3)
        agent = await async_create(AgentFactory)
        await async_db.commit()
        await async_db.execute(delete(User))
        await async_db.delete(agent)
        await async_db.commit()
        assert await rows(async_db) == {}


    async def test_same_unique_email_again(async_db):
        # Would fail on the UNIQUE constraint if test_commit's row had leaked.
        await async_create(UserFactory, email="kept@example.com")
        await async_db.commit()


    def test_a_sync_test_sees_an_empty_database(db):
        assert tables_with_rows(db.connection()) == {}


    async def test_last_sees_an_empty_database(async_db):
        assert await rows(async_db) == {}
"""


def test_commit_integrity_error_and_delete_leave_nothing_behind(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, ISOLATION_SUITE, "--check-isolation", "-v")

    result.assert_outcomes(passed=5 * DRIVERS + 1)
    ran = [line.split("::")[1].split()[0] for line in result.stdout.lines if "PASSED" in line]
    # Written order is run order for each driver (pytest groups the tests
    # of one driver), and the sync test runs after them: every check for an
    # empty database really came after the commits.
    for driver in harness.async_drivers(harness.test_database_url()):
        order = [f"test_{name}[{driver}]" for name in ("commit", "same_unique_email_again")]
        order.append(f"test_last_sees_an_empty_database[{driver}]")
        assert [ran.index(name) for name in order] == sorted(ran.index(name) for name in order)
    assert ran[-1] == "test_a_sync_test_sees_an_empty_database"


@asynccontextmanager
async def isolated(async_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """`async_db`'s recipe, by hand: a connection and an isolated session."""
    async with (
        async_engine.connect() as connection,
        harness.async_isolated_session(connection) as session,
    ):
        yield session


async def commit(session: AsyncSession) -> None:
    session.add(User(email="committed@example.com"))
    await session.commit()
    assert await users(session) == 1


async def uncommitted_write(session: AsyncSession) -> None:
    session.add(User(email="pending@example.com"))
    await session.flush()


@pytest.mark.parametrize("scenario", [commit, integrity_error, uncommitted_write])
async def test_async_isolated_session_leaves_no_rows(
    engine: Engine, async_engine: AsyncEngine, scenario: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    async with isolated(async_engine) as session:
        await scenario(session)
    assert harness.leftover_rows(engine) == {}


async def test_a_commit_in_an_async_test_only_releases_a_savepoint(
    engine: Engine, async_engine: AsyncEngine
) -> None:
    # What reaches the driver, and every real COMMIT SQLAlchemy makes, heard
    # on the async engine's sync_engine (where its events fire).
    heard: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        heard.append(sql.strip())

    def commit(_connection: Connection) -> None:
        heard.append("<a real commit>")

    listeners: list[tuple[str, Any]] = [("before_cursor_execute", statement), ("commit", commit)]
    for name, listener in listeners:
        event.listen(async_engine.sync_engine, name, listener)
    try:
        async with isolated(async_engine) as session:
            session.add(User(email="released@example.com"))
            await session.commit()
            assert await users(session) == 1
    finally:
        for name, listener in listeners:
            event.remove(async_engine.sync_engine, name, listener)

    assert any(sql.startswith("RELEASE SAVEPOINT") for sql in heard)
    assert "<a real commit>" not in heard
    assert not [sql for sql in heard if sql.upper().startswith("COMMIT")]
    assert harness.leftover_rows(engine) == {}


# --------------------------------------------------------------------------
# aiosqlite inherits the sqlite3 driver's missing BEGIN
# --------------------------------------------------------------------------


def sqlite_urls(tmp_path: Path, kind: str) -> str:
    return "sqlite+aiosqlite://" if kind == "memory" else f"sqlite+aiosqlite:///{tmp_path}/t.db"


async def commit_through_the_recipe(async_engine: AsyncEngine) -> int:
    """Run `async_db`'s recipe, commit inside it, count what survived."""
    async with async_engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with isolated(async_engine) as session:
        session.add(User(email="leaked@example.com"))
        await session.commit()
    async with AsyncSession(async_engine) as fresh:
        return await users(fresh)


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_without_the_begin_workaround_an_async_commit_leaks(
    tmp_path: Path, kind: str
) -> None:
    # aiosqlite runs the sqlite3 driver in a thread: no BEGIN for the outer
    # transaction, so the session's SAVEPOINT is the outermost one and its
    # RELEASE commits for real.
    plain = create_async_engine(sqlite_urls(tmp_path, kind), poolclass=StaticPool)
    try:
        assert await commit_through_the_recipe(plain) == 1
    finally:
        await plain.dispose()


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_with_make_async_engine_the_same_commit_is_rolled_back(
    tmp_path: Path, kind: str
) -> None:
    fixed = make_async_engine(sqlite_urls(tmp_path, kind))
    try:
        assert await commit_through_the_recipe(fixed) == 0
    finally:
        await fixed.dispose()


async def test_savepoint_probe_tells_the_two_async_engines_apart() -> None:
    plain = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    fixed = make_async_engine("sqlite://")
    try:
        async with plain.connect() as connection:
            assert await connection.run_sync(harness.sqlite_savepoint_works) is False
        async with fixed.connect() as connection:
            assert await connection.run_sync(harness.sqlite_savepoint_works) is True
    finally:
        await plain.dispose()
        await fixed.dispose()


# --------------------------------------------------------------------------
# --check-isolation covers async tests
# --------------------------------------------------------------------------

ASYNC_LEAKING_SUITE = """
    import uuid

    from sqlalchemy import insert

    from core.models import Workspace


    async def test_commits_outside_the_fixture(async_engine):
        async with async_engine.begin() as connection:
            await connection.execute(
                insert(Workspace).values(id=str(uuid.uuid4()), name="leaked")
            )
"""


def test_check_isolation_fails_a_leaking_async_test_naming_the_table(
    pytester: pytest.Pytester,
) -> None:
    result = run_suite(pytester, ASYNC_LEAKING_SUITE, "--check-isolation")

    result.assert_outcomes(passed=DRIVERS, errors=DRIVERS)
    result.stdout.fnmatch_lines(
        [
            "*isolation broken: test_generated.py::test_commits_outside_the_fixture*"
            " left rows behind: {'workspaces': 1}*"
        ]
    )


def test_an_async_leak_goes_unnoticed_without_the_flag(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, ASYNC_LEAKING_SUITE)
    result.assert_outcomes(passed=DRIVERS)


BOTH_SESSIONS_SUITE = """
    async def test_takes_both(db, async_db):
        pass
"""


def test_a_test_taking_db_and_async_db_is_told_to_take_one(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, BOTH_SESSIONS_SUITE)
    result.assert_outcomes(errors=DRIVERS)
    result.stdout.fnmatch_lines(
        ["*test_takes_both* takes both `db` and `async_db`: take one.*run_sync(fn)*"]
    )


# --------------------------------------------------------------------------
# One event loop for the run
# --------------------------------------------------------------------------

SHARED_LOOP_SUITE = """
    import asyncio

    loops, engines = set(), set()


    async def test_first(async_db, async_engine):
        loops.add(asyncio.get_running_loop())
        engines.add(async_engine)


    async def test_second(async_db, async_engine):
        # The same loop, and the engine of test_first (its pooled connections
        # opened on that loop): nothing is "attached to a different loop".
        assert loops == {asyncio.get_running_loop()}
        assert async_engine in engines
"""


def test_session_scoped_engine_and_function_scoped_sessions_share_one_loop(
    pytester: pytest.Pytester,
) -> None:
    result = run_suite(pytester, SHARED_LOOP_SUITE, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2 * DRIVERS)


LOOP_PER_TEST_SUITE = """
    from sqlalchemy import text


    async def test_uses_the_session(async_db):
        await async_db.execute(text("SELECT 1"))
"""


@pytest.mark.server("postgresql")
def test_a_loop_per_test_breaks_asyncpg_connections_made_on_the_session_loop(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why the loop scope is "session": with a loop per test, `async_db`'s
    # connection, opened by fixtures on the session's loop, is awaited from
    # the test's own loop. asyncpg binds a connection to the loop that opened
    # it and refuses; psycopg (like aiosqlite) waits on whichever loop is
    # running, so the mistake passes there until someone switches driver.
    server = harness.run_server("postgresql")
    monkeypatch.setenv("TEST_DATABASE_URL", server.render_as_string(hide_password=False))

    result = run_suite(
        pytester, LOOP_PER_TEST_SUITE, "-rf", "-o", "asyncio_default_test_loop_scope=function"
    )

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   RuntimeError: Task <Task pending*got Future*attached to a different loop",
            "FAILED test_generated.py::test_uses_the_session[[]asyncpg[]] - RuntimeError*",
        ]
    )


# --------------------------------------------------------------------------
# The dev-database guard, async spellings
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test_url", "app_url"),
    [
        ("sqlite+aiosqlite:///{tmp}/app.db", "sqlite:///{tmp}/app.db"),
        ("sqlite:///{tmp}/app.db", "sqlite+aiosqlite:///{tmp}/app.db"),
        ("postgresql+asyncpg://me@localhost/app", "postgresql+psycopg://me@127.0.0.1:5432/app"),
        ("postgresql+psycopg_async://me@127.0.0.1/app", "postgresql://me@localhost:5432/app"),
    ],
)
def test_guard_refuses_the_development_database_spelled_with_an_async_driver(
    tmp_path: Path, test_url: str, app_url: str
) -> None:
    with pytest.raises(harness.DevelopmentDatabaseError, match="is the application database"):
        harness.refuse_development_database(
            test_url.format(tmp=tmp_path), app_url.format(tmp=tmp_path)
        )


async def test_the_async_engine_is_never_made_on_the_development_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    development = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", development)
    engine = make_engine(development)
    try:
        with pytest.raises(harness.DevelopmentDatabaseError, match="sqlite\\+aiosqlite"):
            async with harness.async_engine_for(engine, "aiosqlite"):
                pytest.fail("an async engine was made on the development database")
    finally:
        engine.dispose()


GUARDED_ASYNC_SUITE = """
    from pathlib import Path


    async def test_needs_the_database(async_db):
        Path("ran_with_db").touch()
"""


def test_an_async_test_database_url_naming_the_development_database_stops_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_db = pytester.path / "app.db"
    monkeypatch.setenv("TEST_DATABASE_URL", "sqlite+aiosqlite:///app.db")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{app_db}")

    result = run_suite(pytester, GUARDED_ASYNC_SUITE)

    assert result.ret == 4
    result.stderr.fnmatch_lines(["*TEST_DATABASE_URL (sqlite+aiosqlite:///app.db) is the appl*"])
    assert not (pytester.path / "ran_with_db").exists()
    assert not app_db.exists()


def test_each_async_test_gets_a_database_named_for_its_run(engine: Engine) -> None:
    # The async engine's URL is derived from `engine.url`, the run's own
    # database, never from TEST_DATABASE_URL itself.
    url = async_url(engine.url, driver=harness.async_drivers(engine.url)[0])
    assert url.database == engine.url.database
    assert url.get_backend_name() == engine.url.get_backend_name()
