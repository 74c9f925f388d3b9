"""Each hypothesis example runs in its own savepoint (`harness.example_savepoint`).

The tests take `db` (and a list that outlives the examples) the way every
property test does, so what they observe is what the suite relies on.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import AgentRegistry, Workspace
from tests.factories import AgentFactory, WorkspaceFactory
from tests.harness import example_savepoint, shares_db_between_examples
from tests.property_tests.strategies import TEXT_ALPHABET


def workspace_count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Workspace)) or 0


@pytest.fixture
def earlier_ids() -> list[str]:
    """Ids written by earlier examples of the same test (fixture state outlives examples)."""
    return []


@shares_db_between_examples()
@given(
    commit=st.booleans(),
    names=st.lists(st.text(TEXT_ALPHABET, min_size=1, max_size=20), max_size=3),
)
def test_an_example_never_sees_rows_of_a_previous_example(
    db: Session, earlier_ids: list[str], commit: bool, names: list[str]
) -> None:
    with example_savepoint(db):
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


@shares_db_between_examples()
@given(rename=st.booleans(), commit=st.booleans())
def test_rows_written_before_the_examples_are_seen_by_every_example(
    db: Session, workspace: Workspace, rename: bool, commit: bool
) -> None:
    with example_savepoint(db):
        assert db.get(Workspace, workspace.id) is workspace
        assert workspace.name == "Workspace written before the examples"
        if rename:
            workspace.name = "renamed inside one example"
        AgentFactory(workspace=workspace)
        if commit:
            db.commit()
        assert db.scalar(select(func.count()).select_from(AgentRegistry)) == 1
        assert workspace_count(db) == 1


@shares_db_between_examples()
@given(fail=st.booleans())
def test_a_failed_flush_inside_an_example_does_not_leak(db: Session, fail: bool) -> None:
    with example_savepoint(db):
        assert workspace_count(db) == 0
        WorkspaceFactory()
        if fail:
            db.add(Workspace())  # name is NOT NULL
            with pytest.raises(IntegrityError):
                db.flush()
            db.rollback()
            assert workspace_count(db) == 0


def test_example_savepoint_needs_a_session_on_a_connection() -> None:
    with pytest.raises(TypeError, match="bound to a Connection"), example_savepoint(Session()):
        pass  # pragma: no cover - never entered
