"""`harness.db_examples`: every example of a property test on `db` runs in a
savepoint of its own, and a plain `@given` test on `db` is refused.

The tests take `db` (and a list that outlives the examples) the way every
property test does, so what they observe is what the suite relies on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AgentRegistry,
    Workspace,
)
from tests import harness
from tests.factories import AgentFactory, WorkspaceFactory
from tests.harness import db_examples
from tests.property_tests.strategies import TEXT_ALPHABET


def workspace_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Workspace)) or 0


@pytest.fixture
def earlier_ids() -> Iterator[list[str]]:
    """Ids written by earlier examples of the same test (fixture state outlives examples)."""
    ids: list[str] = []
    yield ids
    # Otherwise the test below would prove nothing: no example had a previous one.
    assert len(ids) > 1, "a single example ran"


@db_examples()
@given(
    commit=st.booleans(),
    names=st.lists(st.text(TEXT_ALPHABET, min_size=1, max_size=20), max_size=3),
)
def test_an_example_never_sees_rows_of_a_previous_example(
    db: Session, earlier_ids: list[str], commit: bool, names: list[str]
) -> None:
    assert workspace_count(db) == 0
    for earlier in earlier_ids:
        # Neither in the database nor in the identity map.
        assert db.get(Workspace, earlier) is None
    created = [WorkspaceFactory(name=name) for name in names] + [WorkspaceFactory()]
    if commit:
        db.commit()
    earlier_ids.extend(workspace.id for workspace in created)
    assert workspace_count(db) == len(created)


def test_without_the_savepoint_examples_do_see_each_other(db: Session) -> None:
    # The control for the test above: the same examples without the helper leak.
    counts: list[int] = []

    @settings(max_examples=5)
    @given(st.integers())
    def example(_: int) -> None:
        counts.append(workspace_count(db))
        WorkspaceFactory()
        db.commit()

    example()
    assert len(counts) > 1
    assert counts == list(range(len(counts)))


@pytest.fixture
def workspace(db: Session) -> Workspace:
    return WorkspaceFactory(name="Workspace written before the examples")


@db_examples()
@given(rename=st.booleans(), commit=st.booleans())
def test_rows_written_before_the_examples_are_seen_by_every_example(
    db: Session, workspace: Workspace, rename: bool, commit: bool
) -> None:
    assert db.get(Workspace, workspace.id) is workspace
    assert workspace.name == "Workspace written before the examples"
    if rename:
        workspace.name = "renamed inside one example"
    AgentFactory(workspace=workspace)
    if commit:
        db.commit()
    assert db.scalar(select(func.count()).select_from(AgentRegistry)) == 1
    assert workspace_count(db) == 1


@db_examples()
@given(fail=st.booleans())
def test_a_failed_flush_inside_an_example_does_not_leak(db: Session, fail: bool) -> None:
    assert workspace_count(db) == 0
    WorkspaceFactory()
    if fail:
        db.add(Workspace())  # name is NOT NULL
        with pytest.raises(IntegrityError):
            db.flush()
        db.rollback()
        assert workspace_count(db) == 0


# --------------------------------------------------------------------------
# Without the decorator: refused. Misplaced: refused too.
# --------------------------------------------------------------------------

PLAIN_AND_DECORATED = """
    from hypothesis import given, strategies as st

    from tests.factories import WorkspaceFactory
    from tests.harness import db_examples


    @given(st.integers())
    def test_plain_given_on_db(db, number):
        raise AssertionError("an example ran")


    @db_examples()
    @given(st.integers())
    def test_db_examples_on_db(db, number):
        WorkspaceFactory()
"""


def test_a_plain_given_test_that_takes_db_is_refused(pytester: pytest.Pytester) -> None:
    # Hypothesis's own health check, left on for every test but the decorated
    # ones: a test that forgets the decorator fails before any example runs.
    pytester.makepyfile(test_inner=textwrap.dedent(PLAIN_AND_DECORATED))
    result = pytester.runpytest(
        *harness.INNER_RUN,
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FailedHealthCheck: 'test_inner.py::test_plain_given_on_db' uses a "
            "function-scoped fixture 'db'.",
            "FAILED test_inner.py::test_plain_given_on_db - hypothesis.errors.FailedHealth*",
        ]
    )
    result.stdout.no_fnmatch_line("*an example ran*")


def test_the_decorator_goes_directly_above_given_on_a_test_that_takes_db() -> None:
    def no_given(db: Session) -> None:
        pass  # pragma: no cover - never run

    @given(st.integers())
    def no_db(number: int) -> None:
        pass  # pragma: no cover - never run

    with pytest.raises(TypeError, match=r"directly above @given\(...\): .*no_given is not"):
        db_examples()(no_given)
    with pytest.raises(TypeError, match=r"no_db takes no `db` fixture: @given alone will do"):
        db_examples()(no_db)


def test_db_examples_needs_a_session_on_a_connection() -> None:
    @db_examples(max_examples=1)
    @given(st.none())
    def example(db: Session, nothing: None) -> None:
        pass  # pragma: no cover - never entered

    with pytest.raises(TypeError, match="bound to a Connection"):
        example(db=Session())
