"""Feedback, confidence and graduation: the verdict's target, the confidence
rule, the maturity bands, who graduates (never more than one level), and the
feedback row each verdict leaves."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from core import governance
from core.governance import (
    MATURITY_THRESHOLDS,
    Announced,
    Announcement,
    GovernanceError,
    maturity_for_confidence,
)
from core.models import (
    AgentFeedback,
    AgentRegistry,
    AgentStatus,
    ExecutionStatus,
    ValidationError,
)
from core.transactions import Callback
from tests.factories import AgentExecutionFactory, AgentFactory, UserFactory
from tests.unit.governance.common import row_counts, stored_row
from tests.unit.readback import new_agent

Capture = Callable[..., AbstractContextManager[list[Callback]]]


@pytest.mark.parametrize(
    ("rating", "thumbs_up", "target"),
    [(1, None, 0.0), (2, None, 0.25), (3, None, 0.5), (5, None, 1.0), (None, True, 1.0),
     (None, False, 0.0), (1, True, 0.0)],
)  # fmt: skip
def test_feedback_targets(rating: int | None, thumbs_up: bool | None, target: float) -> None:
    assert governance.feedback_target(rating=rating, thumbs_up=thumbs_up) == target


def test_feedback_without_a_verdict_is_refused() -> None:
    with pytest.raises(GovernanceError) as refused:
        governance.feedback_target()

    assert str(refused.value) == "feedback needs a rating (1 to 5) or a thumbs up/down"


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

    with pytest.raises(GovernanceError) as refused:
        governance.record_feedback(db, execution, rater, rating=5)

    assert str(refused.value) == (
        f"execution {execution.id} is still running: rate it once finished"
    )
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


# --------------------------------------------------------------------------
# Exactly on a threshold
# --------------------------------------------------------------------------

# Each band's lower bound, the band below it and the band itself: written out
# here rather than read from the module under test.
BAND_EDGES = [
    (0.5, AgentStatus.STUDENT, AgentStatus.INTERN),
    (0.7, AgentStatus.INTERN, AgentStatus.SUPERVISED),
    (0.9, AgentStatus.SUPERVISED, AgentStatus.AUTONOMOUS),
]


@pytest.mark.parametrize(("threshold", "below", "band"), BAND_EDGES)
def test_a_band_starts_exactly_at_its_threshold_and_not_a_float_before(
    threshold: float, below: AgentStatus, band: AgentStatus
) -> None:
    assert maturity_for_confidence(threshold) is band
    assert maturity_for_confidence(math.nextafter(threshold, 0)) is below


@pytest.mark.parametrize("confidence", [math.nextafter(0.0, -1), -1.0, math.nan])
def test_a_confidence_below_every_threshold_is_a_students(confidence: float) -> None:
    """Not a score the column holds, but the bands still have a floor."""
    assert maturity_for_confidence(confidence) is AgentStatus.STUDENT


@pytest.mark.parametrize(("threshold", "level", "next_level"), BAND_EDGES)
def test_an_agent_graduates_exactly_at_the_next_threshold_and_not_a_float_before(
    threshold: float, level: AgentStatus, next_level: AgentStatus
) -> None:
    at = new_agent(status=level, confidence_score=threshold)
    just_below = new_agent(status=level, confidence_score=math.nextafter(threshold, 0))

    assert (governance.graduate(at), at.status) == (next_level, next_level)
    assert (governance.graduate(just_below), just_below.status) == (level, level)


@pytest.mark.parametrize(
    ("level", "confidence", "next_level", "landed"),
    [(AgentStatus.STUDENT, 0.375, AgentStatus.INTERN, 0.5),
     (AgentStatus.INTERN, 0.625, AgentStatus.SUPERVISED, 0.7),
     (AgentStatus.SUPERVISED, 0.875, AgentStatus.AUTONOMOUS, 0.9)],
)  # fmt: skip
def test_a_rating_landing_exactly_on_the_next_threshold_graduates(
    db: Session,
    capture_on_commit: Capture,
    heard: list[Announcement],
    level: AgentStatus,
    confidence: float,
    next_level: AgentStatus,
    landed: float,
) -> None:
    """A fifth of the way to 1.0 lands on the threshold itself, in floats too."""
    agent = AgentFactory(status=level, confidence_score=confidence, name="Scout")
    execution = AgentExecutionFactory(agent=agent, completed=True)

    with capture_on_commit(execute=True):
        outcome = governance.record_feedback(db, execution, UserFactory(), rating=5)

    assert (outcome.confidence_before, outcome.confidence_after) == (confidence, landed)
    assert (outcome.maturity_before, outcome.maturity_after) == (level, next_level)
    assert outcome.graduated
    assert stored_row(db, AgentRegistry, agent.id, "status", "confidence_score") == {
        "status": next_level,
        "confidence_score": landed,
    }
    assert heard == [
        Announcement(
            Announced.GRADUATED,
            agent.id,
            None,
            f"agent 'Scout' graduated {level} -> {next_level} (confidence {landed:.2f})",
        )
    ]


# --------------------------------------------------------------------------
# The feedback row each verdict leaves
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "feedback_type", "rating", "thumbs"),
    [({"rating": 4}, "rating", 4, None),
     ({"thumbs_up": True}, "thumbs", None, True),
     ({"thumbs_up": False}, "thumbs", None, False),
     ({"rating": 2, "thumbs_up": True}, "rating", 2, True)],
    ids=["rating", "thumbs up", "thumbs down", "rating and thumbs"],
)  # fmt: skip
def test_a_verdict_is_stored_with_who_gave_it_on_what_and_when(
    db: Session,
    now: datetime,
    verdict: dict[str, Any],
    feedback_type: str,
    rating: int | None,
    thumbs: bool | None,
) -> None:
    agent = AgentFactory(intern=True)
    execution = AgentExecutionFactory(agent=agent, completed=True, output_summary="reply drafted")
    rater = UserFactory()

    outcome = governance.record_feedback(db, execution, rater, **verdict)

    expected = {
        "agent_id": agent.id,
        "agent_execution_id": execution.id,
        "user_id": rater.id,
        "episode_id": None,
        "original_output": "reply drafted",
        "user_correction": "",
        "feedback_type": feedback_type,
        "rating": rating,
        "thumbs_up_down": thumbs,
        "status": "accepted",
        "adjudicated_at": now,
        "input_context": None,
        "ai_reasoning": None,
    }
    assert stored_row(db, AgentFeedback, outcome.feedback.id, *expected) == expected


def test_a_correction_is_stored_as_given(db: Session) -> None:
    execution = AgentExecutionFactory(agent=AgentFactory(intern=True), completed=True)

    outcome = governance.record_feedback(
        db, execution, UserFactory(), thumbs_up=False, correction="cite the ticket number"
    )

    stored = stored_row(db, AgentFeedback, outcome.feedback.id, "user_correction")
    assert stored == {"user_correction": "cite the ticket number"}


@pytest.mark.parametrize(
    ("output", "error", "original"),
    [("reply drafted", "CRM timed out", "reply drafted"), (None, "CRM timed out", "CRM timed out"),
     (None, None, "")],
    ids=["output", "error", "neither"],
)  # fmt: skip
def test_the_output_rated_is_the_runs_output_else_its_error_else_empty(
    db: Session, output: str | None, error: str | None, original: str
) -> None:
    execution = AgentExecutionFactory(
        agent=AgentFactory(intern=True),
        status=ExecutionStatus.COMPLETED,
        output_summary=output,
        error_message=error,
    )

    outcome = governance.record_feedback(db, execution, UserFactory(), rating=3)

    stored = stored_row(db, AgentFeedback, outcome.feedback.id, "original_output")
    assert stored == {"original_output": original}


@pytest.mark.parametrize(
    ("verdict", "after"),
    [({"thumbs_up": True}, 0.68), ({"thumbs_up": False}, 0.48), ({"rating": 3}, 0.58)],
    ids=["thumbs up", "thumbs down", "rating"],
)  # fmt: skip
def test_the_outcome_tells_the_confidence_and_maturity_before_and_after(
    db: Session, verdict: dict[str, Any], after: float
) -> None:
    agent = AgentFactory(status=AgentStatus.INTERN, confidence_score=0.6)
    execution = AgentExecutionFactory(agent=agent, completed=True)

    outcome = governance.record_feedback(db, execution, UserFactory(), **verdict)

    assert outcome.confidence_before == 0.6
    assert outcome.confidence_after == pytest.approx(after)
    assert (outcome.maturity_before, outcome.maturity_after) == ("intern", "intern")
    assert not outcome.graduated
    stored = stored_row(db, AgentRegistry, agent.id, "confidence_score", "status")
    assert stored["confidence_score"] == outcome.confidence_after
    assert stored["status"] == "intern"
