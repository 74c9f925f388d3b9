"""Engine, sessions, settings and the declarative base.

Nothing here touches a database at import time: callers build an engine with
`make_engine(url)` (the URL defaults to `database_url()`), a session factory
with `make_session_factory(engine)`, and run units of work in
`session_scope()`. SQLite gets the connection settings that make it behave
like a real transactional database (foreign keys, SAVEPOINT, WAL); no other
backend is touched by them.
"""

from __future__ import annotations

import enum
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
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
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine

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


class Base(DeclarativeBase):
    """Declarative base of every model: one metadata, one naming convention."""

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

    Without a factory, the one `use_session_factory` set for this context is
    used; without that, a throwaway engine on `database_url()`, disposed of
    afterwards.
    """
    engine = None
    if session_factory is None:
        session_factory = _context_session_factory.get()
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
