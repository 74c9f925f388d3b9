"""Settings, engines, sessions and locks: how the application reaches its database.

Nothing here touches a database at import time: callers build an engine with
`make_engine(url)` (the URL defaults to `database_url()`, checked by
`checked_url`), a session factory with `sessionmaker(bind=engine)`, and run
units of work in `session_scope()`. SQLite gets the connection settings that make it behave
like a real transactional database (foreign keys, SAVEPOINT, WAL); no other
backend is touched by them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import URL, RootTransaction, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "var" / "agent_governance.db"
DATABASE_URL_ENV = "DATABASE_URL"

# The backends the application, its migrations and its test harness support,
# each with the driver `make install` provides for it: the one list every
# check reads (adding one is an entry here, plus its lock in
# `exclusive_transaction`).
SUPPORTED_BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}

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
        seconds = -1.0
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
    """
    url = make_url(url if url is not None else database_url())
    if url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)

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
    engine = create_engine(url, **kwargs)
    _install_sqlite_pragmas(engine, file_database=not memory, begin=begin)
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
        # Stop the sqlite3 driver from issuing its own BEGIN/COMMIT, so that
        # SQLAlchemy's transaction (and SAVEPOINT inside it) is the real one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Outside any transaction: inside one, this pragma is a no-op.
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
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

    Without a factory, `default_session_factory()`: the application's own
    database, on an engine made once, not one per unit of work.
    """
    factory = session_factory if session_factory is not None else default_session_factory()
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


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
