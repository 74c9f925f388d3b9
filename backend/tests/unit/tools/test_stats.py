"""`python -m core stats` and the command line's arguments (`upgrade` is tested
with the migrations, `demo` in `test_demo_cli.py`), on a `DATABASE_URL` of the
test's own."""

from __future__ import annotations

import runpy
import sqlite3
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url

from core.database import session_scope
from core.models import (
    Base,
    User,
)
from core.tools import cli


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
