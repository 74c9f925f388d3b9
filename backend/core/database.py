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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Engine,
    Enum,
    MetaData,
    Table,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.validation import add_range_constraints, install_validators

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "var" / "agent_governance.db"
DATABASE_URL_ENV = "DATABASE_URL"

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
    else:  # a file: only an in-memory URL may lack a path
        path = url.database or ""
        if str(url.query.get("uri", "")).lower() == "true":  # `file:<path>?mode=ro`: its path
            path = urlsplit(path).path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
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
