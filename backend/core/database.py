"""Engine, sessions, settings and the declarative base.

Nothing here touches a database at import time: callers build an engine with
`make_engine(url)` (the URL defaults to `database_url()`), a session factory
with `make_session_factory(engine)`, and run units of work in
`session_scope()`. SQLite gets the connection settings that make it behave
like a real transactional database (foreign keys, SAVEPOINT, WAL); no other
backend is touched by them.

Async callers have the same from one setting: `make_async_engine(url)`
(`DATABASE_URL` turned into its asyncio driver, SQLite with the same
settings), `make_async_session_factory(engine)` and `async_session_scope()`.
"""

from __future__ import annotations

import enum
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Enum,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, RootTransaction, make_url
from sqlalchemy.exc import ArgumentError, MissingGreenlet
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlalchemy.util.concurrency import in_greenlet

from core.validation import add_range_constraints, install_validators

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "var" / "agent_governance.db"
DATABASE_URL_ENV = "DATABASE_URL"

# The backends the application, its migrations and its test harness support,
# each with the driver `make install` provides for it: the one list every
# check reads (adding one is an entry here, plus its lock in
# `exclusive_transaction`).
SUPPORTED_BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}

# One convention for every constraint, so that alembic can diff and
# batch-migrate them, and no migration ever creates a constraint named None.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


def database_url() -> str:
    """The application database: `DATABASE_URL`, else the embedded SQLite file."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{DEFAULT_DATABASE_PATH}"


def is_memory_sqlite(url: str | URL) -> bool:
    """True when `url` names an in-memory SQLite database, which lives only as
    long as its connection: `sqlite://`, `:memory:`, or a URI with mode=memory."""
    url = make_url(url)
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


class DatabaseURLError(ValueError):
    """A database URL setting that names nothing the application can use."""


def checked_url(url: str | URL, setting: str = DATABASE_URL_ENV) -> URL:
    """`url` parsed, on a supported backend whose driver is installed.

    Otherwise a `DatabaseURLError` that names `setting`, what is wrong and
    what would do. Nothing is connected to.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        raise DatabaseURLError(
            f"{setting} is not a database URL (got {_masked(str(url))!r}): write "
            "dialect+driver://user:password@host:port/database, e.g. "
            "sqlite:///var/app.db or postgresql+psycopg://user@localhost:5432/app."
        ) from error
    backend, shown = parsed.get_backend_name(), parsed.render_as_string(hide_password=True)
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseURLError(
            f"{setting} names a {backend} database ({shown}), which this application does "
            f"not support: point it at one of {', '.join(SUPPORTED_BACKENDS)}."
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, ImportError) as error:
        # ArgumentError: no such driver; ImportError: one not installed.
        raise DatabaseURLError(
            f"{setting} asks for the {parsed.drivername} driver, which is not available "
            f"({error}): write {SUPPORTED_BACKENDS[backend]}:// (installed by `make install`)."
        ) from error
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The file a SQLite URL names, resolved; None in memory or on a server."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    path = url.database or ""
    if str(url.query.get("uri", "")).lower() == "true":  # `file:<path>?mode=ro`: its path
        path = urlsplit(path).path
    return Path(path).resolve()


def _masked(url: str) -> str:
    """`url` with anything that looks like a password replaced, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# --------------------------------------------------------------------------
# Column types shared by every model
# --------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC when read back.

    A naive value written by a caller is taken as UTC (existing callers write
    `datetime.utcnow()`); an aware one is converted. SQLite stores naive UTC
    text, PostgreSQL a `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def coerce_assigned(self, value: Any) -> datetime:
        """Applied on attribute assignment, so loaded and unsaved objects
        hold the same kind of value (and compare without TypeError)."""
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        return as_utc(value)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = self.coerce_assigned(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def as_utc(value: datetime) -> datetime:
    """Naive means UTC; aware is converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL.

    A function, not a shared instance: `MutableDict.as_mutable` and
    `MutableList.as_mutable` each need a type object of their own.
    """
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base of every model: one metadata, one naming convention.

    `AsyncAttrs` gives every model `awaitable_attrs`: async code loads a
    relationship or an expired column with `await agent.awaitable_attrs.executions`.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        # Enums are stored as their value strings in a VARCHAR guarded by a
        # CHECK constraint: portable, and a new value needs no ALTER TYPE.
        enum.Enum: Enum(
            enum.Enum,
            native_enum=False,
            create_constraint=True,
            validate_strings=True,
            values_callable=lambda members: [member.value for member in members],
            length=32,
        ),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each column rule (enum, length, numeric bounds) is declared once on
        # the column and enforced twice: on assignment and by the database.
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table):
            add_range_constraints(table)
            install_validators(cls, table)


# --------------------------------------------------------------------------
# Engines and sessions
# --------------------------------------------------------------------------


# How a SQLite transaction begins: `make_engine(url, sqlite_begin=...)` sets it
# for an engine, the execution option of the same name for one engine copy or
# connection (`engine.execution_options(sqlite_begin="deferred")`).
SQLITE_BEGIN = "sqlite_begin"
SQLITE_BEGIN_MODES = ("immediate", "deferred")


def make_engine(
    url: str | URL | None = None, *, sqlite_begin: str | None = None, **kwargs: Any
) -> Engine:
    """Create an engine for `url` (default: `database_url()`).

    On SQLite every connection gets `PRAGMA foreign_keys=ON` (SQLite ignores
    foreign keys otherwise), a busy timeout, WAL for file databases, and
    SQLAlchemy's documented fix that lets SAVEPOINT and transactional DDL
    work with the sqlite3 driver. An in-memory database uses one shared
    connection, so every session sees the same data.

    `sqlite_begin` says how SQLite transactions begin: "immediate" (the
    default for a file: the transaction takes the write lock at BEGIN,
    waiting up to the busy timeout for it) or "deferred" (the default in
    memory, where one connection is shared and there is nothing to wait
    for; for a file, read-mostly engines may choose it, see
    `_install_sqlite_pragmas`). Other backends ignore it.
    """
    url = make_url(url if url is not None else database_url())
    return _configured_engine(create_engine, _itself, url, sqlite_begin, kwargs)


AnyEngine = TypeVar("AnyEngine", Engine, AsyncEngine)


def _itself(engine: Engine) -> Engine:
    return engine


def _configured_engine(
    create: Callable[..., AnyEngine],
    sync_engine_of: Callable[[AnyEngine], Engine],
    url: URL,
    sqlite_begin: str | None,
    kwargs: dict[str, Any],
) -> AnyEngine:
    """`create(url, **kwargs)` with the project's settings: one code path for
    the sync and the async engine. `sync_engine_of` gives the `Engine` whose
    events configure the connections (an `AsyncEngine`'s `sync_engine`)."""
    if url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create(url, **kwargs)

    memory = is_memory_sqlite(url)
    if sqlite_begin is None:
        sqlite_begin = "deferred" if memory else "immediate"
    begin = _sqlite_begin_mode(sqlite_begin)
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        file = sqlite_file(url)
        assert file is not None  # on SQLite, only an in-memory URL names no file
        file.parent.mkdir(parents=True, exist_ok=True)
    engine = create(url, **kwargs)
    _install_sqlite_pragmas(sync_engine_of(engine), file_database=not memory, begin=begin)
    return engine


def _sqlite_begin_mode(mode: object) -> str:
    if mode not in SQLITE_BEGIN_MODES:
        raise ValueError(
            f"{SQLITE_BEGIN} must be one of {', '.join(map(repr, SQLITE_BEGIN_MODES))}, "
            f"got {mode!r}"
        )
    return str(mode)


def _install_sqlite_pragmas(engine: Engine, *, file_database: bool, begin: str) -> None:
    # Registered before the first connection exists: a StaticPool keeps that
    # first connection for the engine's whole life.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # On an async engine (aiosqlite) `dbapi_connection` is SQLAlchemy's
        # adapter, not a sqlite3 connection: the sqlite3 connection belongs to
        # aiosqlite's worker thread. The adapter's `isolation_level` setter
        # and its cursors run each call there, so the same lines serve both
        # engines; never reach past the adapter to the sqlite3 connection.
        # Stop the sqlite3 driver from issuing its own BEGIN/COMMIT, so that
        # SQLAlchemy's transaction (and SAVEPOINT inside it) is the real one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Outside any transaction: inside one, this pragma is a no-op.
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            if file_database:
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    # Why a file database begins IMMEDIATE by default (as Rails 7.1 does):
    # SQLite has one writer at a time, and a DEFERRED transaction asks for
    # the write lock only at its first write. If it has read by then, SQLite
    # cannot let it wait (the writer ahead may commit and make its reads
    # stale), so it fails at once: SQLITE_BUSY while the lock is held,
    # SQLITE_BUSY_SNAPSHOT once anyone has committed since its first read,
    # even to an unrelated table. Every read-then-write unit of work (rate a
    # run, read an episode, decide a proposal) then fails under contention.
    # BEGIN IMMEDIATE takes the lock first: the transaction waits its turn
    # (up to busy_timeout) and what it reads stays current until it commits.
    # Measured on a file, 12 threads each rating a run of one agent: deferred,
    # 10 or 11 of the 12 failed in each of 10 races, and retried by
    # `run_unit_of_work` each of 20 races took 28 to 49 retries (up to 6 for
    # one thread); immediate, none failed and none retried.
    # The price: transactions that only read queue behind writers and each
    # other instead of reading side by side as WAL allows (12 read-only
    # sessions at once, each 20 queries over 20 ms: 0.07 s deferred, 0.9 s
    # immediate). An engine (or connection) that only reads can opt out with
    # `engine.execution_options(sqlite_begin="deferred")`; a connection
    # opened read-only (`?mode=ro&uri=true`) begins IMMEDIATE without taking
    # the lock. In memory one connection is shared: plain BEGIN, nothing to
    # wait for, and the test harness's transactions are unchanged.
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # With isolation_level=None the driver no longer begins transactions.
        mode = _sqlite_begin_mode(connection.get_execution_options().get(SQLITE_BEGIN, begin))
        connection.exec_driver_sql("BEGIN" if mode == "deferred" else "BEGIN IMMEDIATE")


def make_session_factory(engine: Engine, **kwargs: Any) -> sessionmaker[Session]:
    """A sessionmaker bound to `engine`; keyword arguments go to sessionmaker."""
    return sessionmaker(bind=engine, **kwargs)


@contextmanager
def session_scope(
    session_factory: sessionmaker[Session] | None = None,
) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close.

    Without a factory, a throwaway engine on `database_url()` is used and
    disposed of afterwards.
    """
    engine = None
    if session_factory is None:
        engine = make_engine()
        session_factory = make_session_factory(engine)
    try:
        with session_factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        if engine is not None:
            engine.dispose()


# The PostgreSQL advisory lock that serialises start-up across processes: the
# migration and the demo's unit of work. Any fixed 64-bit number shared by
# every process would do; this one is "agentgov" in ASCII. Other programs on
# the same server must not use it for something else.
STARTUP_LOCK_KEY = int.from_bytes(b"agentgov", "big")


@contextmanager
def exclusive_transaction(connection: Connection) -> Iterator[Connection]:
    """Begin a transaction that one process at a time may hold; commit it at
    the end of the block (roll it back on error).

    Two processes starting at once (two `python -m core demo`) would otherwise
    both read "nothing here yet" and both write. The first to get here goes on;
    the other waits for its commit, then reads what it wrote.

    - PostgreSQL: `pg_advisory_xact_lock(STARTUP_LOCK_KEY)`, released by the
      commit or rollback. It blocks only other holders of the same lock.
    - SQLite: `BEGIN IMMEDIATE`, the database's write lock, taken before the
      first read. A plain (deferred) BEGIN reads a snapshot first, and its
      first write fails if another writer committed meanwhile. Waiting is
      bounded by the busy timeout; then "database is locked".

    The connection must have no transaction open: the lock belongs at its start.
    """
    if connection.in_transaction():
        raise RuntimeError("exclusive_transaction begins the transaction: none may be open")
    backend = connection.dialect.name
    if backend == "sqlite":
        transaction = _begin_immediate(connection)
    elif backend == "postgresql":
        transaction = connection.begin()
        connection.execute(select(func.pg_advisory_xact_lock(STARTUP_LOCK_KEY)))
    else:
        supported = ", ".join(SUPPORTED_BACKENDS)
        raise ValueError(f"no start-up lock for {backend}, only for {supported}")
    with transaction:
        yield connection


def _begin_immediate(connection: Connection) -> RootTransaction:
    """`connection.begin()`, its BEGIN sent as BEGIN IMMEDIATE.

    `make_engine` emits the BEGIN itself (the sqlite3 driver's own would
    come too late, at the first write); a plain or DEFERRED one is upgraded
    here, an IMMEDIATE or EXCLUSIVE one kept. An engine that sends no BEGIN
    at all is refused rather than left unlocked.
    """
    began: list[str] = []

    def immediate(
        _conn: Connection, _cursor: Any, statement: str, parameters: Any, *_context: Any
    ) -> tuple[str, Any]:
        words = statement.upper().split()
        if words[:1] == ["BEGIN"]:
            began.append(statement)
            if words[1:2] in ([], ["DEFERRED"]):
                return "BEGIN IMMEDIATE", parameters
        return statement, parameters

    event.listen(connection, "before_cursor_execute", immediate, retval=True)
    try:
        transaction = connection.begin()
    finally:
        event.remove(connection, "before_cursor_execute", immediate)
    if not began:
        transaction.rollback()
        raise RuntimeError("exclusive_transaction needs a SQLite engine made by make_engine")
    return transaction


# --------------------------------------------------------------------------
# Async engines and sessions
# --------------------------------------------------------------------------

# The asyncio drivers of each backend, its default first. A URL spelled with
# a sync driver (`DATABASE_URL` as the command line reads it) gets the
# default; one that already names one of these keeps it. psycopg 3 is one
# driver with both modes: `postgresql+psycopg` serves the sync engine and,
# through `create_async_engine`, the async one.
ASYNC_DRIVERS: dict[str, tuple[str, ...]] = {
    "sqlite": ("aiosqlite",),
    "postgresql": ("psycopg", "asyncpg"),
    # MariaDB's entry goes here, e.g. "mysql": ("aiomysql", "asyncmy"),
}


def async_url(url: str | URL | None = None, *, driver: str | None = None) -> URL:
    """`url` (default: `database_url()`) spelled with an asyncio driver.

    `sqlite:///app.db` becomes `sqlite+aiosqlite:///app.db` and
    `postgresql+psycopg://...` stays itself (psycopg's async mode); a URL
    that already names an async driver is kept. `driver="asyncpg"` asks for
    another of the backend's `ASYNC_DRIVERS`. A bad URL, an unknown driver
    or one that is not installed raises `DatabaseURLError` naming the
    setting and what would do.
    """
    setting = DATABASE_URL_ENV if url is None else "the database URL"
    parsed = checked_url(url if url is not None else database_url(), setting)
    backend, own = parsed.get_backend_name(), parsed.get_driver_name()
    drivers = ASYNC_DRIVERS.get(backend, ())
    if driver is None:
        keep = own in drivers or parsed.get_dialect().is_async
        driver = own if keep else next(iter(drivers), "")
    elif driver not in drivers:
        raise DatabaseURLError(
            f"{driver!r} is no asyncio driver for {backend}: choose one of "
            f"{', '.join(drivers) or 'none (no asyncio driver is known for it)'}."
        )
    if not driver:
        raise DatabaseURLError(f"{setting}: no asyncio driver is known for {backend}.")
    converted = parsed.set(drivername=f"{backend}+{driver}")
    try:
        converted.get_dialect(_is_async=True).import_dbapi()
    except ImportError as error:
        raise DatabaseURLError(
            f"{setting}: an async engine on {backend}+{driver} needs a driver that is "
            f"not installed ({error}): `make install` installs aiosqlite, asyncpg and "
            "psycopg (or pip install the `asyncio` extra, and `postgres` for PostgreSQL)."
        ) from error
    return converted


def make_async_engine(
    url: str | URL | None = None,
    *,
    driver: str | None = None,
    sqlite_begin: str | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """An `AsyncEngine` for `url` (default: `database_url()`), through
    `async_url` (`driver` picks an asyncio driver other than the default).

    SQLite gets exactly `make_engine`'s settings, installed by the same code
    on the async engine's `sync_engine`: foreign keys, busy timeout, WAL for
    files, and the BEGIN fix, which aiosqlite needs as much as sqlite3 (it
    wraps it): without it a session's SAVEPOINT is the outermost transaction
    and releasing it commits. Files begin IMMEDIATE, as `sqlite_begin` says.

    On asyncpg SQLAlchemy caches each connection's prepared statements;
    DDL that another process or engine runs (a migration) can leave them
    stale, and the first use of one then fails once with
    `InvalidCachedStatementError`. Run migrations before the engine starts,
    or `await engine.dispose()` after one; `connect_args=
    {"prepared_statement_cache_size": 0}` turns the cache off (the test
    harness does, see README "Async").
    """
    return _configured_engine(
        create_async_engine, _sync_engine, async_url(url, driver=driver), sqlite_begin, kwargs
    )


def _sync_engine(engine: AsyncEngine) -> Engine:
    return engine.sync_engine


class ImplicitLoadError(MissingGreenlet):
    """Async code touched an attribute whose value needs a query: a
    relationship not loaded yet, or a column expired (by a commit or a
    rollback) or deferred. The message names it and how to load it."""


class AsyncBackedSession(Session):
    """The sync `Session` inside every `AsyncSession` this module makes.

    Reading an unloaded attribute from async code would run a query where
    no `await` can: SQLAlchemy's answer is a bare `MissingGreenlet`
    ("greenlet_spawn has not been called"). This class turns it into an
    `ImplicitLoadError` naming the attribute and the eager load to use,
    raised before any SQL (a `do_orm_execute` hook, which runs before the
    autoflush too). Inside `await session.run_sync(fn)`, `await
    session.execute(...)` and `awaitable_attrs` loads run as usual.
    """


@event.listens_for(AsyncBackedSession, "do_orm_execute")
def _refuse_implicit_load(state: ORMExecuteState) -> None:
    if in_greenlet():  # under an await: SQLAlchemy can run the query
        return
    if state.is_relationship_load:
        path = state.loader_strategy_path
        attribute = str(getattr(path, "prop", "a relationship"))
        owner, _, name = attribute.partition(".")
        raise ImplicitLoadError(
            f"{attribute} is not loaded, and loading it needs a query, which async code "
            f"cannot run on attribute access. Load it with the query: "
            f".options(selectinload({attribute})), or await it: "
            f"await {owner.lower() or 'obj'}.awaitable_attrs.{name or 'attribute'}."
        )
    # The object a column load refreshes: SQLAlchemy keeps it in the load options.
    target = state.load_options._refresh_state if state.is_column_load else None
    if target is not None:
        columns = sorted(set(target.mapper.column_attrs.keys()) & target.unloaded)
        shown = ", ".join(columns[:4]) + (", ..." if len(columns) > 4 else "")
        key = ", ".join(map(str, target.identity or ("(pending)",)))
        raise ImplicitLoadError(
            f"{target.class_.__name__} {key} has expired or deferred "
            f"attributes ({shown}), and loading them needs a query, which async code "
            "cannot run on attribute access. A commit or rollback expires every loaded "
            "object (make_async_session_factory keeps them after commit: "
            "expire_on_commit=False). Reload with `await session.refresh(obj)`, or read "
            f"one with `await obj.awaitable_attrs.{columns[0] if columns else 'name'}`."
        )
    raise ImplicitLoadError(
        "A query ran on the sync session of an AsyncSession outside `await`: use "
        "`await session.execute(...)`, or run sync code with `await session.run_sync(fn)`."
    )


# The session settings async code needs, shared by `make_async_session_factory`
# and the test harness's `async_db`: attributes stay loaded after commit (a
# reload would be implicit IO), and an implicit load fails readably.
ASYNC_SESSION_OPTIONS: dict[str, Any] = {
    "expire_on_commit": False,
    "sync_session_class": AsyncBackedSession,
}


def make_async_session_factory(
    bind: AsyncEngine | AsyncConnection, **kwargs: Any
) -> async_sessionmaker[AsyncSession]:
    """An `async_sessionmaker` bound to `bind`, with `ASYNC_SESSION_OPTIONS`;
    keyword arguments override them or go to `async_sessionmaker`."""
    return async_sessionmaker(bind=bind, **{**ASYNC_SESSION_OPTIONS, **kwargs})


@asynccontextmanager
async def async_session_scope(
    session_factory: async_sessionmaker[AsyncSession] | None = None,
) -> AsyncIterator[AsyncSession]:
    """One async unit of work: commit on success, roll back on error, always
    close. Without a factory, a throwaway engine on `database_url()` (its
    asyncio driver) is used and disposed of afterwards.

    The governance rules are sync functions; run them inside with
    `await session.run_sync(route_trigger, agent, ...)`.
    """
    engine = None
    if session_factory is None:
        engine = make_async_engine()
        session_factory = make_async_session_factory(engine)
    try:
        async with session_factory() as session, session.begin():
            yield session
    finally:
        if engine is not None:
            await engine.dispose()
