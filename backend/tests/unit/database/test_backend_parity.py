"""What MariaDB's defaults would answer differently, answered alike on every backend.

Runs on the suite's own database (`make test`, `make test-postgres`, `make
test-mariadb`). Each test is a place where MariaDB, as installed, differs
from SQLite and PostgreSQL, and where `make_engine` and the schema make it
agree: strings compare byte for byte (its default collation folds case and
ignores trailing spaces), timestamps keep their microseconds (its DATETIME
drops them), and `||` concatenates (its default reads it as OR).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AgentExecution,
    Team,
    User,
)
from core.schema import new_uuid
from tests.factories import AgentExecutionFactory, TeamFactory, UserFactory, WorkspaceFactory


def test_names_differing_only_in_case_or_trailing_spaces_are_different_names(
    db: Session,
) -> None:
    workspace = WorkspaceFactory()
    names = ["Ops", "ops", "ops "]
    for name in names:
        TeamFactory(workspace=workspace, name=name)
    db.flush()  # the (workspace_id, name) unique key admits all three

    found = db.scalars(select(Team.name).where(Team.workspace_id == workspace.id)).all()
    assert sorted(found) == sorted(names)
    assert db.scalars(select(Team.name).where(Team.name == "ops")).all() == ["ops"]


def test_an_email_lookup_is_case_sensitive(db: Session) -> None:
    UserFactory(email="ada@example.com")
    db.flush()

    assert db.scalar(select(User.id).where(User.email == "ADA@example.com")) is None


@pytest.mark.parametrize("email", ["Ada@example.com", "ada@example.com "])
def test_raw_sql_cannot_store_an_email_the_model_would_normalise(db: Session, email: str) -> None:
    # `email = lower(trim(email))` holds for these under a case-folding,
    # space-padding collation: the binary one makes the CHECK mean it.
    insert = text("INSERT INTO users (id, email) VALUES (:id, :email)")

    with pytest.raises(IntegrityError, match="ck_users_email_format"), db.begin_nested():
        db.execute(insert, {"id": new_uuid(), "email": email})


def test_timestamps_keep_their_microseconds(db: Session) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    run = AgentExecutionFactory(started_at=started)
    db.flush()
    db.expire_all()

    assert db.scalar(select(AgentExecution.started_at).filter_by(id=run.id)) == started


def test_double_bars_concatenate_in_raw_sql(db: Session) -> None:
    assert db.scalar(text("SELECT 'agent' || '-' || 'gov'")) == "agent-gov"
