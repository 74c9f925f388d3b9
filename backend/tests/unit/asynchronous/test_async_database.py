"""`core.database`'s async side: the URL, the engine, sessions, the unit of work.

Every database here is a temporary file, in memory, or (for the PostgreSQL
drivers, in `make test-postgres`) a scratch database created and dropped by
the test.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import StaticPool

from core import database
from core.database import (
    AsyncBackedSession,
    DatabaseURLError,
    async_session_scope,
    async_url,
    make_async_engine,
    make_async_session_factory,
)
from core.models import (
    Base,
    User,
)
from tests import harness

# --------------------------------------------------------------------------
# The URL: DATABASE_URL turned into its asyncio driver
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver", "expected"),
    [
        ("sqlite:///var/app.db", None, "sqlite+aiosqlite:///var/app.db"),
        ("sqlite://", None, "sqlite+aiosqlite://"),
        ("sqlite+aiosqlite:///app.db", None, "sqlite+aiosqlite:///app.db"),
        ("postgresql+psycopg://me@db/app", None, "postgresql+psycopg://me@db/app"),
        ("postgresql://me@db/app", None, "postgresql+psycopg://me@db/app"),
        ("postgresql+psycopg://me@db/app", "asyncpg", "postgresql+asyncpg://me@db/app"),
        ("postgresql+asyncpg://me@db/app", None, "postgresql+asyncpg://me@db/app"),
        ("postgresql+asyncpg://me@db/app", "psycopg", "postgresql+psycopg://me@db/app"),
        ("postgresql+psycopg_async://me@db/app", None, "postgresql+psycopg_async://me@db/app"),
    ],
)
def test_async_url_spells_the_url_with_an_asyncio_driver(
    given: str, driver: str | None, expected: str
) -> None:
    assert async_url(given, driver=driver).render_as_string() == expected


def test_async_url_defaults_to_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
    assert async_url().render_as_string() == f"sqlite+aiosqlite:///{tmp_path}/app.db"


def test_an_unknown_asyncio_driver_is_refused_with_the_choices() -> None:
    with pytest.raises(DatabaseURLError, match=r"^'asyncpg' is no asyncio driver for sqlite: "):
        async_url("sqlite://", driver="asyncpg")
    with pytest.raises(DatabaseURLError, match=r"choose one of psycopg, asyncpg\.$"):
        async_url("postgresql://me@db/app", driver="aiosqlite")


def test_bad_urls_are_refused_as_for_the_sync_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mssql+pymssql://sa@db/app")
    with pytest.raises(DatabaseURLError, match=r"^DATABASE_URL names a mssql database"):
        async_url()
    with pytest.raises(DatabaseURLError, match=r"^the database URL is not a database URL"):
        async_url("nonsense")


@pytest.mark.parametrize("entry", ["empty", "missing"])
def test_a_backend_without_an_asyncio_driver_is_named(
    monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    # What a backend looks like before its entry is added to ASYNC_DRIVERS.
    if entry == "empty":
        monkeypatch.setitem(database.ASYNC_DRIVERS, "sqlite", ())
    else:
        monkeypatch.delitem(database.ASYNC_DRIVERS, "sqlite")
    with pytest.raises(DatabaseURLError) as refused:
        async_url("sqlite://")
    assert str(refused.value) == "the database URL: no asyncio driver is known for sqlite."
    with pytest.raises(DatabaseURLError) as refused:
        async_url("sqlite://", driver="aiosqlite")
    assert str(refused.value) == (
        "'aiosqlite' is no asyncio driver for sqlite: "
        "choose one of none (no asyncio driver is known for it)."
    )


@pytest.mark.parametrize(
    ("url", "module"), [("sqlite://", "aiosqlite"), ("postgresql://", "asyncpg")]
)
def test_a_missing_driver_is_named_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    with pytest.raises(DatabaseURLError) as refused:
        async_url(f"{url}/app", driver=module)
    backend = url.removesuffix("://")
    assert str(refused.value) == (
        f"the database URL: an async engine on {backend}+{module} needs a driver that is not "
        f"installed (import of {module} halted; None in sys.modules): `make install` installs "
        "aiosqlite, asyncpg, psycopg and aiomysql (or pip install the `asyncio` extra, with "
        "`postgres` or `mysql` for those servers)."
    )


# --------------------------------------------------------------------------
# The engine: make_engine's SQLite settings, through the aiosqlite adapter
# --------------------------------------------------------------------------


async def pragmas(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return {
            name: await connection.scalar(text(f"PRAGMA {name}"))
            for name in ("foreign_keys", "busy_timeout", "journal_mode")
        }


def begins(engine: AsyncEngine) -> list[str]:
    """The BEGIN statements `engine` sends (heard on its sync_engine)."""
    sent: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            sent.append(statement)

    return sent


@pytest.fixture
async def file_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(f"sqlite:///{tmp_path / 'deep' / 'app.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


async def test_a_file_engine_has_the_sync_engines_settings_and_begins_immediate(
    tmp_path: Path, file_engine: AsyncEngine
) -> None:
    assert (tmp_path / "deep").is_dir()
    assert file_engine.url.drivername == "sqlite+aiosqlite"
    assert await pragmas(file_engine) == {
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "journal_mode": "wal",
    }
    sent = begins(file_engine)
    async with file_engine.begin() as connection:
        await connection.execute(text("SELECT 1"))
    async with file_engine.execution_options(sqlite_begin="deferred").begin() as connection:
        await connection.execute(text("SELECT 1"))
    assert sent == ["BEGIN IMMEDIATE", "BEGIN"]


async def test_an_in_memory_engine_shares_one_connection_and_begins_plain() -> None:
    engine = make_async_engine("sqlite://")
    sent = begins(engine)
    try:
        assert isinstance(engine.pool, StaticPool)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE shared (x INTEGER)"))
            await connection.execute(text("INSERT INTO shared VALUES (1)"))
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT x FROM shared")) == 1
        assert (await pragmas(engine))["foreign_keys"] == 1
    finally:
        await engine.dispose()
    assert set(sent) == {"BEGIN"}


async def test_foreign_keys_are_enforced_through_aiosqlite(file_engine: AsyncEngine) -> None:
    async with file_engine.connect() as connection:
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            await connection.execute(
                text("INSERT INTO teams (id, name, workspace_id) VALUES ('t', 'x', 'nowhere')")
            )


async def test_an_unknown_begin_mode_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match=r"^sqlite_begin must be one of"):
        make_async_engine("sqlite://", sqlite_begin="exclusive")


def test_a_server_engine_gets_no_sqlite_settings_and_pings_its_pool() -> None:
    # Built, never connected: no server is needed.
    engine = make_async_engine("postgresql+psycopg://user@db.invalid/app", driver="asyncpg")
    assert engine.url.drivername == "postgresql+asyncpg"
    assert engine.sync_engine.pool._pre_ping is True
    assert not isinstance(engine.pool, StaticPool)


@pytest.mark.server("postgresql")
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_both_postgresql_drivers_connect(driver: str) -> None:
    with harness.scratch_postgres("async_engine") as url:
        engine = make_async_engine(url, driver=driver)
        try:
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT current_database()")) == url.database
        finally:
            await engine.dispose()


# --------------------------------------------------------------------------
# Sessions and the async unit of work
# --------------------------------------------------------------------------


async def emails(engine: AsyncEngine) -> list[str]:
    async with AsyncSession(engine) as session:
        return list(await session.scalars(select(User.email).order_by(User.email)))


async def test_the_session_factory_has_the_async_settings_and_takes_options(
    file_engine: AsyncEngine,
) -> None:
    factory = make_async_session_factory(file_engine)
    assert isinstance(factory, async_sessionmaker)
    async with factory() as session:
        assert session.sync_session.expire_on_commit is False
        assert isinstance(session.sync_session, AsyncBackedSession)
    async with make_async_session_factory(file_engine, expire_on_commit=True)() as session:
        assert session.sync_session.expire_on_commit is True


async def test_async_session_scope_commits_on_success(file_engine: AsyncEngine) -> None:
    async with async_session_scope(make_async_session_factory(file_engine)) as session:
        session.add(User(email="kept@example.com"))
    assert await emails(file_engine) == ["kept@example.com"]


async def test_async_session_scope_rolls_back_on_error(file_engine: AsyncEngine) -> None:
    factory = make_async_session_factory(file_engine)
    async with async_session_scope(factory) as session:
        session.add(User(email="before@example.com"))

    async def fail_after_a_flush() -> None:
        async with async_session_scope(factory) as session:
            session.add(User(email="lost@example.com"))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_after_a_flush()
    assert await emails(file_engine) == ["before@example.com"]


async def test_async_session_scope_without_a_factory_uses_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_engine: AsyncEngine
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'deep' / 'app.db'}")
    async with async_session_scope() as session:
        session.add(User(email="default@example.com"))
        bind = session.get_bind()
        assert isinstance(bind, Engine)  # the sync side of a throwaway AsyncEngine
        assert bind.url.render_as_string() == file_engine.url.render_as_string()
        assert bind.url.drivername == "sqlite+aiosqlite"
    assert not session.in_transaction()
    assert await emails(file_engine) == ["default@example.com"]
