"""`core.database` and `core.tools.cli`: settings, engines, sessions, column types.

Every database here is a temporary file or in memory; none of these tests
touches the development database.
"""

from __future__ import annotations

import runpy
import sqlite3
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Dialect, Engine, create_mock_engine, make_url, select
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
from core.models import Base, User, ValidationError
from core.schema import (
    UTCDateTime,
    as_utc,
    json_type,
    new_uuid,
    utc_now,
)
from core.tools import cli

# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


@pytest.fixture
def app_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`DATABASE_URL` pointed at a fresh file under `tmp_path`."""
    url = f"sqlite:///{tmp_path / 'var' / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    dispose_default_engines()  # what `session_scope()` opened on it


@pytest.fixture
def app_engine(app_url: str) -> Iterator[Engine]:
    engine = make_engine(app_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


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


# --------------------------------------------------------------------------
# Column types and small helpers
# --------------------------------------------------------------------------

PLUS_TWO = timezone(timedelta(hours=2))


def _dialect(url: str) -> Dialect:
    # The dialect of a URL, with no connection and no server needed.
    return create_mock_engine(url, executor=print).dialect


@pytest.mark.parametrize(
    ("given", "stored_on_sqlite", "stored_on_postgresql"),
    [
        (
            datetime(2025, 1, 2, 3, 4, 5),
            datetime(2025, 1, 2, 3, 4, 5),
            datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        (
            datetime(2025, 1, 2, 5, 4, 5, tzinfo=PLUS_TWO),
            datetime(2025, 1, 2, 3, 4, 5),
            datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
    ],
)
def test_utc_datetime_binds_naive_as_utc_and_converts_aware(
    given: datetime, stored_on_sqlite: datetime, stored_on_postgresql: datetime
) -> None:
    column_type = UTCDateTime()
    on_sqlite = column_type.process_bind_param(given, _dialect("sqlite://"))
    on_postgresql = column_type.process_bind_param(given, _dialect("postgresql+psycopg://"))
    assert on_sqlite == stored_on_sqlite
    assert on_sqlite is not None
    assert on_sqlite.tzinfo is None
    assert on_postgresql == stored_on_postgresql
    assert on_postgresql is not None
    assert on_postgresql.tzinfo is UTC


def test_utc_datetime_reads_back_aware_utc() -> None:
    column_type = UTCDateTime()
    read = column_type.process_result_value(datetime(2025, 1, 2, 3, 4, 5), _dialect("sqlite://"))
    assert read == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert read is not None
    assert read.tzinfo is UTC
    assert column_type.process_result_value(None, _dialect("sqlite://")) is None
    assert column_type.process_bind_param(None, _dialect("sqlite://")) is None


@pytest.mark.parametrize("value", ["2025-01-02T03:04:05", 1735787045, datetime.now(UTC).date()])
def test_utc_datetime_rejects_non_datetimes(value: object) -> None:
    with pytest.raises(TypeError, match="expected a datetime, got"):
        UTCDateTime().process_bind_param(value, _dialect("sqlite://"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"User\.last_login_at: expected a datetime"):
        User(last_login_at=value)


def test_utc_datetime_round_trip(db: Session) -> None:
    user = User(email="clock@example.com", last_login_at=datetime(2025, 6, 1, 12, tzinfo=PLUS_TWO))
    db.add(user)
    db.flush()
    db.expire(user)
    assert user.last_login_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert user.last_login_at.tzinfo is UTC


def test_as_utc() -> None:
    assert as_utc(datetime(2025, 1, 1)) == datetime(2025, 1, 1, tzinfo=UTC)
    assert as_utc(datetime(2025, 1, 1, 2, tzinfo=PLUS_TWO)).hour == 0
    assert as_utc(datetime(2025, 1, 1, 2, tzinfo=PLUS_TWO)).tzinfo is UTC


def test_json_type_is_jsonb_on_postgresql_only() -> None:
    column_type = json_type()
    assert column_type.dialect_impl(_dialect("postgresql+psycopg://")).__visit_name__ == "JSONB"
    assert column_type.dialect_impl(_dialect("sqlite://")).__visit_name__ == "JSON"
    assert json_type() is not column_type


def test_small_helpers() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    first, second = new_uuid(), new_uuid()
    assert first != second
    assert len(first) == 36


# --------------------------------------------------------------------------
# python -m core stats (upgrade is tested with the migrations)
# --------------------------------------------------------------------------


def _table_lines(output: str) -> dict[str, int]:
    rows = [line.split() for line in output.splitlines()[3:]]
    return {name: int(count) for name, count in rows}


def test_stats_prints_every_table_with_its_count(
    app_engine: Engine, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["stats"]) == 0
    output = capsys.readouterr().out
    assert output.splitlines()[0] == f"database: {app_url}"
    assert output.splitlines()[1].split() == ["table", "rows"]
    assert _table_lines(output) == {table.name: 0 for table in Base.metadata.sorted_tables}

    with session_scope() as session:
        session.add(User(email="counted@example.com"))
    assert cli.main(["stats"]) == 0
    assert _table_lines(capsys.readouterr().out)["users"] == 1


def test_stats_on_an_empty_database_lists_no_tables(
    app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `stats` never creates the database it is pointed at: make an empty one.
    path = Path(make_url(app_url).database or "")
    path.parent.mkdir(parents=True)
    sqlite3.connect(path).close()

    assert cli.main(["stats"]) == 0
    assert _table_lines(capsys.readouterr().out) == {}
    assert cli.format_counts({}) == "table  rows\n-----  ----"


def test_cli_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2
    assert "stats" in capsys.readouterr().err


def test_python_dash_m_core(
    app_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m core", "stats"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("core", run_name="__main__")
    assert exited.value.code == 0
    assert "users" in _table_lines(capsys.readouterr().out)


def test_startup_waits_two_minutes_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STARTUP_LOCK_TIMEOUT_ENV, raising=False)
    assert startup_lock_timeout_ms() == 120_000
    monkeypatch.setenv(STARTUP_LOCK_TIMEOUT_ENV, "2.5")
    assert startup_lock_timeout_ms() == 2_500


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_startup_lock_timeout_that_is_not_seconds_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(STARTUP_LOCK_TIMEOUT_ENV, value)
    with pytest.raises(SettingError, match=f"CORE_STARTUP_LOCK_TIMEOUT must be .* got '{value}'"):
        startup_lock_timeout_ms()
