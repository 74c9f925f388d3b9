"""`core.migrate.Violation.describe`: the words a refused migration uses for
the rows that break a constraint, with and without a count, one row or more.
"""

from __future__ import annotations

import pytest

from core.migrate import Violation


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
