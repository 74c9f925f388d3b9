"""`python -m core demo` and friends, always on a temporary DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core import migrate
from core.database import (
    DATABASE_URL_ENV,
    make_engine,
)
from core.models import Base
from core.tools.cli import main, table_counts
from core.tools.demo import run_demo


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    return url


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        return table_counts(engine)
    finally:
        engine.dispose()


def test_the_demo_plays_the_whole_scenario(db: Session) -> None:
    lines: list[str] = []

    assert run_demo(db, out=lines.append) == 1

    trail = "\n".join(lines)
    for expected in (
        "workspace 'Northwind Support' (created)",
        "(student): blocked, training; training proposal",
        "(intern): blocked, proposal; action proposal",
        "triggered_by='supervision:workflow_engine'",
        "triggered_by='execution:manual'",
        "is paused: cannot take the data_sync trigger",
        "approve   'Reply drafter #1: act on ticket.reply_needed' by dana.lead@",
        "blocked triggers resolved: 1",
        "refuse    approve again: cannot move proposal",
        "confidence 0.65 -> 0.72, graduated intern -> supervised",
        "3 ordered segments",
    ):
        assert expected in trail


def test_demo_migrates_then_runs_twice_adding_a_second_round(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    first = counts(database_url)
    assert main(["demo"]) == 0
    second = counts(database_url)

    output = capsys.readouterr().out
    head = migrate.script_directory().get_current_head()
    assert f"revision: {head} (head, upgraded from empty)" in output
    assert f"revision: {head} (head, already at head)" in output
    assert "== demo run 1" in output
    assert "== demo run 2" in output
    assert "workspace 'Northwind Support' (found)" in output
    assert f"database: {database_url}" in output
    # The tenant is reused; each run brings its own agents and their history.
    for table in ("workspaces", "teams", "users", "user_workspaces", "team_members"):
        assert second[table] == first[table] > 0
    for table in ("agent_registry", "agent_executions", "agent_proposals", "episode_segments"):
        assert second[table] == 2 * first[table] > 0


def test_demo_refuses_a_database_no_migration_built(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    engine.dispose()

    assert main(["demo"]) == 1

    assert "alembic stamp head" in capsys.readouterr().err
    assert set(counts(database_url).values()) == {0}


def test_stats_after_the_demo_prints_its_rows(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    capsys.readouterr()

    assert main(["stats"]) == 0

    output = capsys.readouterr().out
    assert "== demo run" not in output
    for table, rows in counts(database_url).items():
        assert f"\n{table} " in output
        assert any(line.split() == [table, str(rows)] for line in output.splitlines())


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    output = capsys.readouterr().out
    for command in ("upgrade", "demo", "stats"):
        assert command in output


def test_python_dash_m_core_honours_database_url(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    environment = {**os.environ, DATABASE_URL_ENV: f"sqlite:///{target}"}

    finished = subprocess.run(
        [sys.executable, "-m", "core", "demo"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stderr
    assert "graduated intern -> supervised" in finished.stdout
    assert target.exists()
