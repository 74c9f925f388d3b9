"""Query budgets: `count_queries(max=n)`, beside the exact count.

pytest-django's `django_assert_max_num_queries`: the block may run fewer
statements than its budget, never more, and a failure lists what it ran.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import (
    Team,
    User,
)
from tests import harness
from tests.factories import UserFactory


def _three_selects(db: Session) -> None:
    for model in (User, Team, User):
        db.execute(select(model)).all()


@pytest.mark.parametrize("budget", [3, 4, 10])
def test_a_block_within_its_budget_passes(db: Session, budget: int) -> None:
    with harness.count_queries(db, max=budget) as log:
        _three_selects(db)
    assert len(log) == 3


def test_a_block_over_its_budget_fails_listing_every_statement(db: Session) -> None:
    with (
        pytest.raises(AssertionError) as failure,
        harness.count_queries(db, max=2),
    ):
        _three_selects(db)
    lines = str(failure.value).splitlines()
    assert lines[0] == "expected at most 2 queries, ran 3:"
    assert [line.split(" FROM ")[-1] for line in lines[1:]] == ["users", "teams", "users"]
    assert lines[1].startswith("  1. SELECT users.id")


def test_a_budget_of_zero_refuses_any_statement(db: Session) -> None:
    with harness.count_queries(db, max=0):
        pass
    with (
        pytest.raises(AssertionError, match=r"^expected at most 0 queries, ran 1:\n  1\. INSERT"),
        harness.count_queries(db, max=0),
    ):
        UserFactory()


def _two_selects(db: Session) -> None:
    db.execute(select(User)).all()
    db.execute(select(User)).all()


def test_a_budget_of_one_says_query(db: Session) -> None:
    with (
        pytest.raises(AssertionError, match=r"^expected at most 1 query, ran 2:"),
        harness.count_queries(db, max=1),
    ):
        _two_selects(db)


def test_the_fixture_takes_a_budget(db: Session, count_queries: harness.QueryCounter) -> None:
    with count_queries(max=2) as log:
        db.execute(select(User)).all()
    assert len(log) == 1
    with (
        pytest.raises(AssertionError, match=r"expected at most 1 query, ran 3"),
        count_queries(max=1),
    ):
        _three_selects(db)


def test_transaction_control_is_not_spent_from_the_budget(db: Session) -> None:
    with harness.count_queries(db, max=1) as log:
        with db.begin_nested():
            db.add(User(email="budget@example.com"))
        db.commit()
    assert [sql.split()[0] for sql in log.statements] == ["INSERT"]


def test_an_exact_count_and_a_budget_together_are_refused(db: Session) -> None:
    with (
        pytest.raises(TypeError, match="an exact count or a max, not both"),
        harness.count_queries(db, 2, max=3),
    ):
        pass
