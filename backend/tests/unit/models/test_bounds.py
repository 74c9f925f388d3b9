"""Bounded number columns (`info=bounds(...)`): the bound itself accepted, a
value beyond it refused on assignment, naming the field, and by the
database's CHECK for raw SQL. (An agent's confidence, a feedback's rating
and an episode's scores are tested with their models in
`test_models_orm.py`.)"""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AgentExecution,
    BlockedTriggerContext,
    EpisodeSegment,
    ValidationError,
)
from tests.factories import AgentExecutionFactory, AgentProposalFactory
from tests.unit.readback import assert_bound_holds, new_step, table_of


def test_duration_cannot_be_negative(db: Session) -> None:
    execution = AgentExecutionFactory(duration_seconds=0.0)

    with pytest.raises(ValidationError, match=r"duration_seconds.*>= 0"):
        execution.duration_seconds = -1.0
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(
            update(table_of(AgentExecution)).values(duration_seconds=-1.0),
        )


def test_order_and_duration_cannot_be_negative() -> None:
    with pytest.raises(ValidationError, match=r"sequence_order.*>= 0"):
        new_step(sequence_order=-1)
    with pytest.raises(ValidationError, match=r"duration_ms.*>= 0"):
        new_step(sequence_order=0, duration_ms=-5)


def test_sequence_order_cannot_be_negative() -> None:
    with pytest.raises(ValidationError, match=r"EpisodeSegment.sequence_order.*>= 0"):
        EpisodeSegment(segment_type="action", sequence_order=-1, content="x")


def test_confidence_at_block_is_bounded() -> None:
    with pytest.raises(ValidationError, match=r"confidence_score_at_block.*<= 1"):
        BlockedTriggerContext(confidence_score_at_block=1.2)


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("hours_per_day_limit", 24.0, 24.01),
        ("hours_per_day_limit", 0.01, 0.0),
        ("estimated_duration_hours", 0.5, 0.0),
        ("user_override_duration_hours", 1.0, -1.0),
        ("duration_estimation_confidence", 0.0, 1.01),
    ],
)
def test_the_proposals_scheduling_ranges(db: Session, field: str, good: float, bad: float) -> None:
    assert_bound_holds(db, AgentProposalFactory(**{field: good}), field, good, bad)
