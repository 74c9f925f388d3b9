"""`python -m core upgrade` (`make run`): the embedded database goes to head
through alembic, never through create_all."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core import cli, migrate
from core.models import Base


@pytest.fixture
def application_database(empty_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    return empty_engine


def test_upgrade_migrates_to_head_and_prints_every_table(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    head = migrate.script_directory().get_current_head()

    assert cli.main(["upgrade"]) == 0

    output = capsys.readouterr().out
    assert migrate.current_revision(application_database) == head
    assert f"revision: {head} (head, upgraded from empty)" in output
    for table in Base.metadata.tables:
        assert f"\n{table} " in output


def test_upgrade_twice_changes_nothing(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["upgrade"]) == 0
    first = capsys.readouterr().out

    assert cli.main(["upgrade"]) == 0

    second = capsys.readouterr().out
    assert "(head, already at head)" in second
    assert second.replace("already at head", "upgraded from empty") == first


def test_upgrade_refuses_a_database_built_without_migrations(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    Base.metadata.create_all(application_database)

    assert cli.main(["upgrade"]) == 1

    assert "alembic stamp head" in capsys.readouterr().out
    assert migrate.current_revision(application_database) is None


def test_stats_prints_row_counts_without_changing_the_schema(
    application_database: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(application_database)

    assert cli.main(["stats"]) == 0

    assert "users" in capsys.readouterr().out
