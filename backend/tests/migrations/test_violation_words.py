"""What a failed migration says, in `core.migrate`: the words for the rows
that break a constraint (`Violation.describe`), with and without a count, one
row or more; what the failure left behind on each backend; and the version
table dropped at base, there or not.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from core.migrate import Violation, drop_version_table, failed_migration_outcome


@pytest.mark.parametrize(
    ("violation", "words"),
    [
        (Violation("NOT NULL", "users", None, ["email"], rows=1),
         "1 row of table users has no value in column email, which the migration makes NOT NULL"),
        (Violation("NOT NULL", "users", None, ["email", "role"], rows=2),
         "2 rows of table users have no value in column email, role, "
         "which the migration makes NOT NULL"),
        (Violation("UNIQUE", "teams", "uq_teams_name", ["workspace_id", "name"], rows=3),
         "3 rows of table teams share values of (workspace_id, name), "
         "which UNIQUE constraint uq_teams_name forbids"),
        (Violation("CHECK", "agent_registry", "ck_confidence", [], rows=1),
         "1 row of table agent_registry breaks CHECK constraint ck_confidence"),
        (Violation(None, None, None, []),
         "rows of table (not reported) break the constraint the migration adds"),
    ],
    ids=["not-null-one", "not-null-two", "unique", "check-one", "nothing-known"],
)  # fmt: skip
def test_a_violation_is_told_in_these_words(violation: Violation, words: str) -> None:
    assert violation.describe() == words


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sqlite://", "the migration was rolled back"),
        ("postgresql+psycopg://db.example/app", "the migration was rolled back"),
        ("mysql+pymysql://db.example/app",
         "that statement changed nothing, but MariaDB commits each schema change as it runs: "
         "earlier statements of the same revision stay applied"),
    ],
    ids=["sqlite", "postgresql", "mariadb"],
)  # fmt: skip
def test_a_failed_migration_says_what_it_left_behind(url: str, words: str) -> None:
    assert failed_migration_outcome(make_url(url).get_dialect()()) == words


def test_dropping_the_version_table_where_there_is_none_does_nothing() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        drop_version_table(connection)
        drop_version_table(connection)
        assert inspect(connection).get_table_names() == []
