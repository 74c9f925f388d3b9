"""Settings, engines, sessions and locks: how the application reaches its database.

Nothing here touches a database at import time: callers build an engine with
`make_engine(url)` (the URL defaults to `database_url()`, checked by
`checked_url`), a session factory with `sessionmaker(bind=engine)`, and run
units of work in `session_scope()`. SQLite gets the connection settings that make it behave
like a real transactional database (foreign keys, SAVEPOINT, WAL); MariaDB
(and MySQL) the ones that make it refuse, store and compare what the other
two do (strict SQL mode, utf8mb4 with a binary collation, UTC, microsecond
timestamps). PostgreSQL is left as it is.

Async callers have the same from one setting: `make_async_engine(url)`
(`DATABASE_URL` turned into its asyncio driver, SQLite with the same
settings), `make_async_session_factory(engine)` and `async_session_scope()`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.mysql.base import MySQLDialect
from sqlalchemy.engine import URL, ExceptionContext, RootTransaction, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, MissingGreenlet, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.util.concurrency import in_greenlet

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "var" / "agent_governance.db"
DATABASE_URL_ENV = "DATABASE_URL"

# The backends the application, its migrations and its test harness support,
# each with the driver `make install` provides for it: the one list every
# check reads (adding one is an entry here, plus its lock in
# `exclusive_transaction`).
SUPPORTED_BACKENDS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
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


class SettingError(ValueError):
    """A setting (an environment variable) whose value the application cannot use."""


class DatabaseURLError(SettingError):
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
        # SQLAlchemy's "mariadb" dialect is a variant this application does not adapt to.
        mariadb = " (for MariaDB, write mysql+pymysql://)" if backend == "mariadb" else ""
        raise DatabaseURLError(
            f"{setting} names a {backend} database ({shown}), which this application does "
            f"not support: point it at one of {', '.join(SUPPORTED_BACKENDS)}{mariadb}."
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
    path = str(url.database)  # not in memory: a name is given
    if str(url.query.get("uri")).lower() == "true":  # `file:<path>?mode=ro`: its path
        path = urlsplit(path).path
    return Path(path).resolve()


def _masked(url: str) -> str:
    """`url` with anything that looks like a password replaced, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# --------------------------------------------------------------------------
# Engines and sessions
# --------------------------------------------------------------------------


# How long a SQLite connection waits for another's write lock before it gives
# up with "database is locked" (a unit of work's wait; start-up waits longer).
SQLITE_BUSY_TIMEOUT_MS = 5_000
# Start-up (migration, demo round) waits for another process's start-up this
# long on SQLite: a migration of a fresh file takes longer than a unit of work.
STARTUP_LOCK_TIMEOUT_ENV = "CORE_STARTUP_LOCK_TIMEOUT"
DEFAULT_STARTUP_LOCK_TIMEOUT_SECONDS = 120.0


def startup_lock_timeout_ms() -> int:
    """`CORE_STARTUP_LOCK_TIMEOUT` (seconds, default 120) in milliseconds."""
    given = os.environ.get(STARTUP_LOCK_TIMEOUT_ENV) or str(DEFAULT_STARTUP_LOCK_TIMEOUT_SECONDS)
    try:
        seconds = float(given)
    except ValueError:
        seconds = math.nan  # refused below, as "nan" is
    if not 0 <= seconds < 1e6:
        raise SettingError(
            f"{STARTUP_LOCK_TIMEOUT_ENV} must be a number of seconds (0 or more), got {given!r}"
        )
    return round(seconds * 1000)


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

    On MariaDB and MySQL every connection gets the session settings of
    `_make_mysql_engine`, and a CHECK a row breaks raises `IntegrityError`
    (as on the other backends), not the driver's `OperationalError`.
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
    if url.get_backend_name() == "mysql":
        return _make_mysql_engine(create, sync_engine_of, url, kwargs)
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


def _use_wal(cursor: Any) -> None:
    """Put the database file in WAL mode (it stays so: the mode is stored in
    the file), if it is not WAL yet. The switch needs the file to itself: of
    two connections switching a new file at once, one fails with "database is
    locked", busy timeout or not; it tries again and finds the file switched
    by the other."""
    if _journal_mode(cursor) == "wal":
        return
    for _attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
        if _journal_mode(cursor) == "wal":
            return
        time.sleep(0.1)
    cursor.execute("PRAGMA journal_mode=WAL")  # still locked after 5 s: say so


def _journal_mode(cursor: Any) -> str:
    # execute, then fetch from the cursor: on aiosqlite's adapter, `execute`
    # returns the driver's own (awaitable) cursor, not the adapter.
    cursor.execute("PRAGMA journal_mode")
    return str(cursor.fetchone()[0]).lower()


def _install_sqlite_pragmas(engine: Engine, *, file_database: bool, begin: str) -> None:
    # Registered before the first connection exists: a StaticPool keeps that
    # first connection for the engine's whole life.
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
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if file_database:
                _use_wal(cursor)
        finally:
            cursor.close()

    event.listen(engine, "connect", _on_connect)

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
    def _on_begin(connection: Any) -> None:
        # With isolation_level=None the driver no longer begins transactions.
        mode = _sqlite_begin_mode(connection.get_execution_options().get(SQLITE_BEGIN, begin))
        connection.exec_driver_sql("BEGIN" if mode == "deferred" else "BEGIN IMMEDIATE")

    event.listen(engine, "begin", _on_begin)


# --------------------------------------------------------------------------
# MariaDB and MySQL: the session settings that make them answer like the others
# --------------------------------------------------------------------------

# Strict: a value the column cannot hold (too long, not a number, out of
# range, a zero date) is refused with an error, as PostgreSQL does, instead
# of being truncated or converted with a warning; TRADITIONAL includes
# STRICT_ALL_TABLES, NO_ZERO_DATE, NO_ZERO_IN_DATE and
# ERROR_FOR_DIVISION_BY_ZERO. PIPES_AS_CONCAT: `a || b` concatenates, as in
# standard SQL, SQLite and PostgreSQL, instead of meaning OR (SQLAlchemy
# writes neither). ANSI_QUOTES is left out: it would make a double-quoted
# string literal in someone's raw SQL an identifier.
MYSQL_SQL_MODE = "TRADITIONAL,PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION"
MYSQL_CHARSET = "utf8mb4"  # all of Unicode; MariaDB's "utf8" stops at 3 bytes
# Binary and NO PAD: 'A' <> 'a' and 'a' <> 'a ', in comparisons, unique keys
# and the email CHECK's `email = lower(trim(email))`, as on SQLite and
# PostgreSQL. The server's default (utf8mb4_general_ci) folds case, and
# utf8mb4_bin still ignores trailing spaces. MySQL 8 names it utf8mb4_0900_bin.
MARIADB_COLLATION = "utf8mb4_nopad_bin"
MYSQL_COLLATION = "utf8mb4_0900_bin"
# PostgreSQL's default: each statement sees what was committed before it. A
# lock (FOR UPDATE) waits for the row, then reads its latest version.
MYSQL_ISOLATION_LEVEL = "READ COMMITTED"
# MariaDB's code for a CHECK constraint a row breaks (MySQL 8: 3819). PyMySQL
# reports it as OperationalError, the class of a lost connection.
MYSQL_CHECK_VIOLATIONS = frozenset({4025, 3819})
# "Data truncated": from ALTER TABLE, existing rows that break the column's
# new definition (NULLs in a column made NOT NULL); a DataError otherwise.
MYSQL_DATA_TRUNCATED = 1265


def mysql_collation(dialect: Dialect) -> str:
    """The case- and space-sensitive collation of the server behind `dialect`,
    a MySQL dialect (which knows whether its server is MariaDB)."""
    return MARIADB_COLLATION if cast(MySQLDialect, dialect).is_mariadb else MYSQL_COLLATION


def _make_mysql_engine(
    create: Callable[..., AnyEngine],
    sync_engine_of: Callable[[AnyEngine], Engine],
    url: URL,
    kwargs: dict[str, Any],
) -> AnyEngine:
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("isolation_level", MYSQL_ISOLATION_LEVEL)
    # The driver's own character set, for what it encodes and decodes.
    kwargs["connect_args"] = {"charset": MYSQL_CHARSET, **kwargs.get("connect_args", {})}
    created = create(url, **kwargs)
    engine = sync_engine_of(created)

    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # UTC: CURRENT_TIMESTAMP (server defaults) then agrees with the
            # UTC wall times UTCDateTime writes.
            cursor.execute(
                f"SET SESSION sql_mode = '{MYSQL_SQL_MODE}', time_zone = '+00:00', "
                f"NAMES {MYSQL_CHARSET} COLLATE {mysql_collation(engine.dialect)}"
            )
        finally:
            cursor.close()

    event.listen(engine, "connect", _on_connect)

    def _violation_is_integrity_error(context: ExceptionContext) -> Exception | None:
        # As on SQLite and PostgreSQL: a row that breaks a constraint is an
        # IntegrityError, which callers (and env.py) catch as such.
        error = context.original_exception
        number = error.args[0] if error.args else None
        statement = (context.statement or "").lstrip().upper()
        if (
            isinstance(context.sqlalchemy_exception, OperationalError)
            and number in MYSQL_CHECK_VIOLATIONS
        ) or (number == MYSQL_DATA_TRUNCATED and statement.startswith("ALTER TABLE")):
            return IntegrityError(context.statement, context.parameters, error)
        return None

    event.listen(engine, "handle_error", _violation_is_integrity_error, retval=True)

    return created


@compiles(CreateTable, "mysql")
def _create_mysql_table(create: CreateTable, compiler: DDLCompiler, **kw: Any) -> str:
    """Every table created on MariaDB or MySQL, by `create_all` and by the
    migrations alike, in utf8mb4 with the binary NO PAD collation (unless it
    names its own): the database's default collation folds case."""
    sql: str = compiler.visit_create_table(create, **kw)  # type: ignore[no-untyped-call]
    options = {key.lower() for key in create.element.kwargs}
    if options & {"mysql_charset", "mysql_default_charset", "mysql_collate"}:
        return sql
    collation = mysql_collation(compiler.dialect)
    return f"{sql.rstrip()} DEFAULT CHARSET={MYSQL_CHARSET} COLLATE={collation}\n\n"


# The engines `default_session_factory` made, by URL: kept, so that units of
# work share a pool; a dict rather than a cache, so that they can be disposed.
_DEFAULT_ENGINES: dict[str, Engine] = {}


def default_session_factory() -> sessionmaker[Session]:
    """Sessions on `database_url()`: one engine, and so one connection pool,
    per URL for the life of the process, made on first use."""
    url = database_url()
    engine = _DEFAULT_ENGINES.get(url)
    if engine is None:
        engine = _DEFAULT_ENGINES[url] = make_engine(url)
    return sessionmaker(bind=engine)


def dispose_default_engines() -> None:
    """Close the pools `default_session_factory` made, and forget them (at the
    end of a program, or of a test that pointed `DATABASE_URL` elsewhere)."""
    while _DEFAULT_ENGINES:
        _DEFAULT_ENGINES.popitem()[1].dispose()


@contextmanager
def session_scope(
    session_factory: sessionmaker[Session] | None = None,
) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, always close.

    Without a factory, the one `use_session_factory` set for this context;
    without that, `default_session_factory()`: the application's own
    database, on an engine made once, not one per unit of work.
    """
    factory = session_factory or _context_session_factory.get() or default_session_factory()
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# --------------------------------------------------------------------------
# Pointing the default unit of work elsewhere (tests, tenants)
# --------------------------------------------------------------------------

_context_session_factory: ContextVar[sessionmaker[Session] | None] = ContextVar(
    "session_factory", default=None
)


@contextmanager
def use_session_factory(session_factory: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """Inside the block, `session_scope()` without a factory uses `session_factory`.

    The seam that points code which opens its own unit of work at another
    database without patching anything: the test harness's
    `transactional_db` fixture points it at the run's own database. A
    context variable, so it holds in this thread (or asyncio task) and in
    what it calls; a thread started inside the block begins without it
    (Python threads start with an empty context): hand such a thread its
    sessionmaker, or run it in `contextvars.copy_context()`.
    """
    token = _context_session_factory.set(session_factory)
    try:
        yield session_factory
    finally:
        _context_session_factory.reset(token)


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
      bounded by `CORE_STARTUP_LOCK_TIMEOUT`; then "database is locked".
    - MariaDB/MySQL: `GET_LOCK` of a name made from STARTUP_LOCK_KEY and the
      database's name, taken before the transaction begins. It is a lock of
      the connection, not of the transaction (MariaDB has no transaction
      advisory lock, and its DDL commits on its own): it is released right
      after the commit or rollback, and when that fails the connection is
      closed, which releases it too.

    The connection must have no transaction open: the lock belongs at its start.
    """
    if connection.in_transaction():
        raise RuntimeError("exclusive_transaction begins the transaction: none may be open")
    backend = connection.dialect.name
    if backend == "sqlite":
        # The other process may be migrating a fresh database, which takes
        # longer than a unit of work: wait for it as long as start-up may take.
        # On the driver's connection: through SQLAlchemy's, the pragma would
        # begin the transaction before `_begin_immediate` could.
        driver = connection.connection.driver_connection
        assert driver is not None  # a connection that is open
        driver.execute(f"PRAGMA busy_timeout={startup_lock_timeout_ms()}")
        try:
            transaction = _begin_immediate(connection)
        finally:
            driver.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    elif backend == "postgresql":
        transaction = connection.begin()
        connection.execute(select(func.pg_advisory_xact_lock(STARTUP_LOCK_KEY)))
    elif backend == "mysql":
        with _mysql_startup_lock(connection), connection.begin():
            yield connection
        return
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
        # BEGIN [DEFERRED | IMMEDIATE | EXCLUSIVE] [TRANSACTION]
        words = statement.upper().split()
        if words[:1] == ["BEGIN"]:
            began.append(statement)
            if "IMMEDIATE" not in words and "EXCLUSIVE" not in words:
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


# How long a process waits for MariaDB's start-up lock. PostgreSQL's waits
# forever; GET_LOCK needs a number (MariaDB refuses -1). A day is forever for
# a migration, and still ends a wait on a process that hung holding it.
MYSQL_STARTUP_LOCK_WAIT_SECONDS = 86_400


def mysql_startup_lock_name(connection: Connection) -> str:
    """The name of the start-up lock on MariaDB: a lock name is global to the
    server, so it carries the database's (hashed: names stop at 64 characters)."""
    database = connection.scalar(select(func.database())) or ""
    digest = hashlib.sha1(database.encode(), usedforsecurity=False).hexdigest()
    return f"{STARTUP_LOCK_KEY:x}:{digest}"


@contextmanager
def _mysql_startup_lock(connection: Connection) -> Iterator[None]:
    name = mysql_startup_lock_name(connection)
    got = connection.scalar(select(func.get_lock(name, MYSQL_STARTUP_LOCK_WAIT_SECONDS)))
    connection.rollback()  # end the statement's transaction: the block begins its own
    if got != 1:
        raise RuntimeError(
            f"the start-up lock {name!r} was not granted within "
            f"{MYSQL_STARTUP_LOCK_WAIT_SECONDS} s: another process holds it"
        )
    try:
        yield
    finally:
        try:
            connection.scalar(select(func.release_lock(name)))
            connection.rollback()
        except Exception:
            # A connection that cannot release it is broken: closing it
            # releases the lock, and the block's own outcome stands.
            connection.invalidate()


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
    "mysql": ("aiomysql",),
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
        if own in drivers or parsed.get_dialect().is_async:
            driver = own
        elif drivers:
            driver = drivers[0]
        else:
            raise DatabaseURLError(f"{setting}: no asyncio driver is known for {backend}.")
    elif driver not in drivers:
        raise DatabaseURLError(
            f"{driver!r} is no asyncio driver for {backend}: choose one of "
            f"{', '.join(drivers) or 'none (no asyncio driver is known for it)'}."
        )
    converted = parsed.set(drivername=f"{backend}+{driver}")
    try:
        converted.get_dialect(_is_async=True).import_dbapi()
    except ImportError as error:
        raise DatabaseURLError(
            f"{setting}: an async engine on {backend}+{driver} needs a driver that is "
            f"not installed ({error}): `make install` installs aiosqlite, asyncpg, "
            "psycopg and aiomysql (or pip install the `asyncio` extra, with `postgres` "
            "or `mysql` for those servers)."
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


def _refuse_implicit_load(state: ORMExecuteState) -> None:
    if in_greenlet():  # under an await: SQLAlchemy can run the query
        return
    if state.is_relationship_load:
        # A relationship's load path ends at it (a PropRegistry: `.prop`).
        relationship = cast(Any, state.loader_strategy_path).prop
        owner, name = relationship.parent.class_.__name__, relationship.key
        raise ImplicitLoadError(
            f"{owner}.{name} is not loaded, and loading it needs a query, which async code "
            f"cannot run on attribute access. Load it with the query: "
            f".options(selectinload({owner}.{name})), or await it: "
            f"await {owner.lower()}.awaitable_attrs.{name}."
        )
    # The object a column load refreshes: SQLAlchemy keeps it in the load options.
    target = state.load_options._refresh_state if state.is_column_load else None
    if target is not None:
        columns = sorted(set(target.mapper.column_attrs.keys()) & target.unloaded)
        shown = ", ".join(columns[:4]) + (", ..." if len(columns) > 4 else "")
        # Only a persistent object is refreshed: it has an identity.
        key = ", ".join(map(str, target.identity))
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


event.listen(AsyncBackedSession, "do_orm_execute", _refuse_implicit_load)


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
    asyncio driver) is used and disposed of afterwards: unlike the sync
    `session_scope`, no engine is kept between calls, because an async
    engine's pooled connections belong to the event loop that opened them,
    and a kept one reused from another loop fails ("attached to a different
    loop").

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
