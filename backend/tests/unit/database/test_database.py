"""`core.database`: settings (`DATABASE_URL`, the start-up lock's timeout),
engines, and `session_scope`. (Column types: `test_column_types.py`.)

Every database here is a temporary file or in memory; none of these tests
touches the development database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from core.database import (
    DEFAULT_DATABASE_PATH,
    STARTUP_LOCK_TIMEOUT_ENV,
    SettingError,
    database_url,
    dispose_default_engines,
    make_engine,
    session_scope,
    startup_lock_timeout_ms,
)
from core.models import User


def test_database_url_honours_the_environment(app_url: str) -> None:
    assert database_url() == app_url


@pytest.mark.parametrize("value", [None, ""])
def test_database_url_defaults_to_the_embedded_file(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("DATABASE_URL", value)
    assert database_url() == f"sqlite:///{DEFAULT_DATABASE_PATH}"
    assert DEFAULT_DATABASE_PATH.parent.name == "var"


def test_startup_waits_two_minutes_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STARTUP_LOCK_TIMEOUT_ENV, raising=False)
    assert startup_lock_timeout_ms() == 120_000
    monkeypatch.setenv(STARTUP_LOCK_TIMEOUT_ENV, "2.5")
    assert startup_lock_timeout_ms() == 2_500


@pytest.mark.parametrize(("value", "ms"), [("0", 0), ("999999.999", 999_999_999)])
def test_a_startup_lock_timeout_from_zero_to_under_a_million_seconds_is_taken(
    monkeypatch: pytest.MonkeyPatch, value: str, ms: int
) -> None:
    monkeypatch.setenv(STARTUP_LOCK_TIMEOUT_ENV, value)
    assert startup_lock_timeout_ms() == ms


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "1e6", "1000000.5"])
def test_a_startup_lock_timeout_that_is_not_seconds_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(STARTUP_LOCK_TIMEOUT_ENV, value)
    with pytest.raises(SettingError) as refused:
        startup_lock_timeout_ms()
    assert str(refused.value) == (
        f"CORE_STARTUP_LOCK_TIMEOUT must be a number of seconds (0 or more), got '{value}'"
    )


# --------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------


def test_file_engine_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "app.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_a_wal_file_another_connection_is_writing_to_opens_at_once(tmp_path: Path) -> None:
    # Opening it sets foreign keys, the busy timeout and (already set) WAL,
    # none of which may wait for the writer.
    path = tmp_path / "busy.db"
    first = make_engine(f"sqlite:///{path}")
    # Deferred: an immediate BEGIN would wait for the writer, by design.
    second = make_engine(f"sqlite:///{path}", sqlite_begin="deferred")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        with first.connect():
            pass  # the file is WAL from here on
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("CREATE TABLE being_written (x)")
        with second.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        writer.close()
        first.dispose()
        second.dispose()


@pytest.fixture
def writing(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A new database file (not WAL yet) and a connection in the middle of
    writing to it: switching the file to WAL fails at once while it does."""
    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    yield path, writer
    writer.close()


def test_a_file_being_written_to_is_switched_to_wal_once_the_writer_commits(
    writing: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, writer = writing
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            writer.execute("COMMIT")

    monkeypatch.setattr("core.database.time.sleep", wait)
    engine = make_engine(f"sqlite:///{path}", sqlite_begin="deferred")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
    assert waits == [0.1, 0.1]


def test_a_file_that_stays_locked_is_reported_after_fifty_tries(
    writing: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _writer = writing
    waits: list[float] = []
    monkeypatch.setattr("core.database.time.sleep", waits.append)
    engine = make_engine(f"sqlite:///{path}", sqlite_begin="deferred")
    try:
        with pytest.raises(
            OperationalError, match=r"\(sqlite3.OperationalError\) database is locked"
        ):
            engine.connect()
    finally:
        engine.dispose()
    assert waits == [0.1] * 50  # five seconds, in tenths


def test_engine_defaults_to_database_url(app_url: str) -> None:
    engine = make_engine()
    try:
        assert engine.url.render_as_string() == app_url
    finally:
        engine.dispose()


def test_memory_engine_shares_one_connection() -> None:
    engine = make_engine("sqlite://")
    try:
        assert isinstance(engine.pool, StaticPool)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE shared (x INTEGER)")
            connection.exec_driver_sql("INSERT INTO shared VALUES (1)")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT x FROM shared").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
    finally:
        engine.dispose()


def test_non_sqlite_engine_gets_no_sqlite_settings() -> None:
    # Built, never connected: no server is needed.
    engine = make_engine("postgresql+psycopg://user@db.invalid/app")
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.pool._pre_ping is True
        assert not isinstance(engine.pool, StaticPool)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# session_scope
# --------------------------------------------------------------------------


def _emails(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(User.email).order_by(User.email)))


def test_session_scope_commits_on_success(app_engine: Engine) -> None:
    with session_scope(sessionmaker(bind=app_engine)) as session:
        session.add(User(email="kept@example.com"))
    assert _emails(app_engine) == ["kept@example.com"]


def test_session_scope_rolls_back_on_error(app_engine: Engine) -> None:
    factory = sessionmaker(bind=app_engine)
    with session_scope(factory) as session:
        session.add(User(email="before@example.com"))

    def fail_after_a_flush() -> None:
        with session_scope(factory) as session:
            session.add(User(email="lost@example.com"))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_after_a_flush()
    assert _emails(app_engine) == ["before@example.com"]


def test_session_scope_closes_its_session(app_engine: Engine) -> None:
    with session_scope(sessionmaker(bind=app_engine)) as session:
        user = User(email="closed@example.com")
        session.add(user)
    assert user not in session
    assert not session.in_transaction()


def test_session_scope_without_a_factory_uses_database_url(app_engine: Engine) -> None:
    with session_scope() as session:
        session.add(User(email="default@example.com"))
        bind = session.get_bind()
        assert isinstance(bind, Engine)
        assert bind.url == app_engine.url
    assert _emails(app_engine) == ["default@example.com"]


def test_units_of_work_on_the_default_database_share_one_engine(app_engine: Engine) -> None:
    with session_scope() as first, session_scope() as second:
        assert first.get_bind() is second.get_bind()
    dispose_default_engines()
    with session_scope() as third:
        assert third.get_bind() is not first.get_bind()  # made anew after disposal
