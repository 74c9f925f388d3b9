"""env.py: what it accepts in `config.attributes["connection"]`, and how the
`alembic` command fails (one line, a documented exit code, no trace)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from core import migrate
from core.database import (
    DATABASE_URL_ENV,
    PROJECT_ROOT,
)
from core.tools.problems import TRACEBACK_ENV, ExitCode
from tests.migrations.databases import leftovers


def _config_with(connection: object) -> Config:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    return config


def test_an_engine_handed_in_is_migrated_and_committed(empty_engine: Engine) -> None:
    # What pytest-alembic and similar tools hand in.
    command.upgrade(_config_with(empty_engine), "head")

    assert migrate.current_revision(empty_engine) == migrate.script_directory().get_current_head()


def test_a_connection_handed_in_is_migrated_and_committed(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        command.downgrade(_config_with(connection), "base")
        assert not connection.in_transaction()

    assert leftovers(migrated_engine) == []


def test_alembic_writes_to_the_stdout_in_force_when_its_config_is_made(
    migrated_engine: Engine,
) -> None:
    # Not to the one of when alembic was imported, which may be closed by now.
    written = io.StringIO()
    with migrated_engine.connect() as connection, contextlib.redirect_stdout(written):
        command.check(migrate.alembic_config(connection))
    assert written.getvalue() == "No new upgrade operations detected.\n"


def test_anything_else_handed_in_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"must be a SQLAlchemy Engine or Connection, not str"):
        command.upgrade(_config_with("sqlite://"), "head")


def test_the_alembic_command_reports_a_bad_url_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "mssql+pymssql://sa@127.0.0.1/governance")
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)

    with pytest.raises(SystemExit) as exited:
        command.upgrade(migrate.alembic_config(), "head")

    assert exited.value.code == ExitCode.CONFIGURATION
    assert capsys.readouterr().err.splitlines() == [
        "DATABASE_URL names a mssql database (mssql+pymssql://sa@127.0.0.1/governance), which "
        "this application does not support: point it at one of sqlite, postgresql, mysql."
    ]


def test_offline_sql_is_written_for_postgresql_and_refused_in_one_line_for_sqlite(
    empty_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, empty_engine.url.render_as_string(hide_password=False))

    if empty_engine.dialect.name == "sqlite":
        with pytest.raises(SystemExit) as exited:
            command.upgrade(migrate.alembic_config(), "head", sql=True)
        assert exited.value.code == ExitCode.USAGE
        output = capsys.readouterr()
        assert output.out == ""  # no half script
        assert output.err.startswith("alembic --sql cannot write SQLite migrations: batch mode")
    else:
        command.upgrade(migrate.alembic_config(), "head", sql=True)
        script = capsys.readouterr().out
        assert "CREATE TABLE users" in script
        # One transaction, where DDL is transactional (not on MariaDB).
        assert script.rstrip().endswith("COMMIT;") is (empty_engine.dialect.name != "mysql")
    assert leftovers(empty_engine) == []  # offline: nothing ran


def test_alembic_upgrade_sql_on_sqlite_through_the_command_line(tmp_path: Path) -> None:
    environment = {**os.environ, DATABASE_URL_ENV: f"sqlite:///{tmp_path / 'app.db'}"}
    environment.pop(TRACEBACK_ENV, None)

    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == ExitCode.USAGE
    assert "Traceback (most recent call last)" not in done.stdout + done.stderr
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("alembic --sql cannot write SQLite migrations: batch mode rebuilds")
