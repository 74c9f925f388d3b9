"""Feedback, confidence and graduation: the verdict's target, the confidence
rule, the maturity bands, and who graduates (never more than one level)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from core import governance
from core.governance import MATURITY_THRESHOLDS, GovernanceError, maturity_for_confidence
from core.models import (
    AgentStatus,
    ValidationError,
)
from tests.factories import AgentExecutionFactory, AgentFactory, UserFactory
from tests.unit.governance.common import row_counts


@pytest.mark.parametrize(
    ("rating", "thumbs_up", "target"),
    [(1, None, 0.0), (2, None, 0.25), (3, None, 0.5), (5, None, 1.0), (None, True, 1.0),
     (None, False, 0.0), (1, True, 0.0)],
)  # fmt: skip
def test_feedback_targets(rating: int | None, thumbs_up: bool | None, target: float) -> None:
    assert governance.feedback_target(rating=rating, thumbs_up=thumbs_up) == target


def test_feedback_without_a_verdict_is_refused() -> None:
    with pytest.raises(GovernanceError, match="needs a rating"):
        governance.feedback_target()


@pytest.mark.parametrize(
    ("confidence", "target", "expected"),
    [(0.5, 1.0, 0.6), (0.5, 0.0, 0.4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.65, 1.0, 0.72)],
)
def test_confidence_moves_a_fifth_of_the_way_to_the_target(
    confidence: float, target: float, expected: float
) -> None:
    assert governance.next_confidence(confidence, target) == pytest.approx(expected)


unit = st.floats(min_value=0.0, max_value=1.0)


@given(confidence=unit, target=unit)
def test_confidence_stays_in_the_unit_interval_and_crosses_at_most_one_band(
    confidence: float, target: float
) -> None:
    moved = governance.next_confidence(confidence, target)
    assert 0.0 <= moved <= 1.0
    ladder = governance.MATURITY_LADDER
    before = ladder.index(maturity_for_confidence(confidence))
    after = ladder.index(maturity_for_confidence(moved))
    assert abs(after - before) <= 1


def test_good_feedback_graduates_an_intern_reaching_the_next_band(db: Session) -> None:
    agent = AgentFactory(status=AgentStatus.INTERN, confidence_score=0.65)
    execution = AgentExecutionFactory(agent=agent, completed=True)
    rater = UserFactory()

    outcome = governance.record_feedback(db, execution, rater, rating=5, correction="fine")

    assert outcome.confidence_before == 0.65
    assert outcome.confidence_after == pytest.approx(0.72)
    assert (outcome.maturity_before, outcome.maturity_after) == ("intern", "supervised")
    assert outcome.graduated
    db.expire_all()
    assert agent.status == "supervised"
    assert agent.confidence_score == pytest.approx(0.72)
    feedback = outcome.feedback
    assert (feedback.agent_id, feedback.agent_execution_id, feedback.user_id) == (
        agent.id,
        execution.id,
        rater.id,
    )
    assert (feedback.rating, feedback.status, feedback.user_correction) == (5, "accepted", "fine")
    assert feedback.original_output == "done"


def test_feedback_below_the_next_band_does_not_graduate(db: Session) -> None:
    agent = AgentFactory(status=AgentStatus.INTERN, confidence_score=0.6)
    execution = AgentExecutionFactory(agent=agent, completed=True)

    outcome = governance.record_feedback(db, execution, UserFactory(), thumbs_up=True)

    assert outcome.confidence_after == pytest.approx(0.68)
    assert not outcome.graduated
    assert agent.status == "intern"
    assert outcome.feedback.feedback_type == "thumbs"


def test_graduation_never_skips_a_level(db: Session) -> None:
    # Confidence already in the autonomous band: one feedback, one level.
    agent = AgentFactory(status=AgentStatus.STUDENT, confidence_score=0.95)
    execution = AgentExecutionFactory(agent=agent, completed=True)

    outcome = governance.record_feedback(db, execution, UserFactory(), rating=5)

    assert (outcome.maturity_before, outcome.maturity_after) == ("student", "intern")
    outcome = governance.record_feedback(db, execution, UserFactory(), rating=5)
    assert outcome.maturity_after == "supervised"


def test_an_autonomous_agent_stays_autonomous(db: Session) -> None:
    agent = AgentFactory(autonomous=True)
    execution = AgentExecutionFactory(agent=agent, completed=True)

    outcome = governance.record_feedback(db, execution, UserFactory(), rating=5)

    assert outcome.maturity_after == "autonomous"
    assert not outcome.graduated


def test_bad_feedback_lowers_confidence_but_demotes_nobody(db: Session) -> None:
    agent = AgentFactory(status=AgentStatus.SUPERVISED, confidence_score=0.7)
    execution = AgentExecutionFactory(agent=agent, failed=True)

    outcome = governance.record_feedback(db, execution, UserFactory(), rating=1)

    assert outcome.confidence_after == pytest.approx(0.56)
    assert agent.status == "supervised"
    assert outcome.feedback.original_output == "agent raised an error"


@pytest.mark.parametrize("status", [AgentStatus.PAUSED, AgentStatus.DEPRECATED])
def test_a_paused_or_deprecated_agent_never_graduates(db: Session, status: AgentStatus) -> None:
    agent = AgentFactory(status=status, confidence_score=0.95)
    execution = AgentExecutionFactory(agent=agent, completed=True)

    outcome = governance.record_feedback(db, execution, UserFactory(), rating=5)

    assert outcome.confidence_after > 0.95
    assert agent.status == status
    assert not outcome.graduated


def test_a_running_execution_cannot_be_rated(db: Session) -> None:
    agent = AgentFactory(intern=True)
    execution = AgentExecutionFactory(agent=agent)
    rater = UserFactory()
    before = row_counts(db)

    with pytest.raises(GovernanceError, match="still running"):
        governance.record_feedback(db, execution, rater, rating=5)

    assert row_counts(db) == before
    assert agent.confidence_score == 0.6


@pytest.mark.parametrize(("rating", "thumbs_up"), [(6, None), (0, None), (None, None)])
def test_an_invalid_verdict_writes_nothing_and_leaves_confidence_alone(
    db: Session, rating: int | None, thumbs_up: bool | None
) -> None:
    agent = AgentFactory(intern=True)
    execution = AgentExecutionFactory(agent=agent, completed=True)
    rater = UserFactory()
    before = row_counts(db)

    with pytest.raises((ValidationError, GovernanceError)):
        governance.record_feedback(db, execution, rater, rating=rating, thumbs_up=thumbs_up)

    assert row_counts(db) == before
    assert agent.confidence_score == 0.6
    assert agent.feedback == execution.feedback == []


@pytest.mark.parametrize(
    ("confidence", "band"),
    [
        (0.0, AgentStatus.STUDENT),
        (0.49, AgentStatus.STUDENT),
        (0.5, AgentStatus.INTERN),
        (0.69, AgentStatus.INTERN),
        (0.7, AgentStatus.SUPERVISED),
        (0.89, AgentStatus.SUPERVISED),
        (0.9, AgentStatus.AUTONOMOUS),
        (1.0, AgentStatus.AUTONOMOUS),
    ],
)
def test_maturity_bands_follow_confidence(confidence: float, band: AgentStatus) -> None:
    assert maturity_for_confidence(confidence) is band


def test_the_bands_are_the_domain_thresholds() -> None:
    assert tuple(MATURITY_THRESHOLDS) == governance.MATURITY_LADDER
    assert [maturity_for_confidence(t) for t in MATURITY_THRESHOLDS.values()] == list(
        governance.MATURITY_LADDER
    )
