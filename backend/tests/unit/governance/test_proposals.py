"""The governance rules, one test per rule and per refused move."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core import governance
from core.governance import (
    MATURITY_THRESHOLDS,
    AgentNotRunnable,
    ConcurrentUpdate,
    GovernanceError,
    InvalidTransition,
    ProposalConflict,
    maturity_for_confidence,
)
from core.models import (
    AgentExecution,
    AgentProposal,
    AgentStatus,
    BlockedTriggerContext,
    EpisodeAccessLog,
    ProposalStatus,
    ProposalType,
    RoutingDecision,
    TriggerSource,
    ValidationError,
    Workspace,
)
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentProposalFactory,
    BlockedTriggerContextFactory,
    UserFactory,
    WorkspaceFactory,
)
from tests.harness import tables_with_rows

PAYLOAD = {"ticket": 42, "priority": "high"}


def row_counts(db: Session) -> dict[str, int]:
    db.flush()
    return tables_with_rows(db.connection())


def count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


# --------------------------------------------------------------------------
# The maturity guard
# --------------------------------------------------------------------------


def test_a_student_is_blocked_and_routed_to_training(db: Session) -> None:
    agent = AgentFactory(student=True)

    routed = governance.route_trigger(db, agent, "data_sync", "crm.ticket_created", PAYLOAD)

    assert routed.decision == RoutingDecision.TRAINING
    assert routed.execution is None
    blocked, proposal = routed.blocked, routed.proposal
    assert blocked is not None

    assert proposal is not None
    db.expire_all()
    assert blocked.routing_decision == "training"
    assert blocked.agent_maturity_at_block == "student"
    assert blocked.confidence_score_at_block == 0.3
    assert (blocked.trigger_source, blocked.trigger_type) == ("data_sync", "crm.ticket_created")
    assert blocked.trigger_context == PAYLOAD
    assert blocked.resolved is False
    assert blocked.proposal_id == proposal.id
    assert proposal.proposal_type == "training"
    assert proposal.status == "proposed"
    assert proposal.agent_id == agent.id
    assert proposal.proposed_by == governance.GUARD
    assert proposal.learning_objectives
    assert count(db, AgentExecution) == 0


def test_an_intern_is_blocked_with_an_action_proposal_awaiting_approval(db: Session) -> None:
    agent = AgentFactory(intern=True)

    routed = governance.route_trigger(
        db, agent, TriggerSource.AI_COORDINATOR, "ticket.reply_needed", PAYLOAD
    )

    assert routed.decision == RoutingDecision.PROPOSAL
    assert routed.blocked is not None

    assert routed.proposal is not None
    db.expire_all()
    assert routed.blocked.routing_decision == "proposal"
    assert routed.proposal.proposal_type == "action"
    assert routed.proposal.status == "proposed"
    assert routed.proposal.approved_by is None
    assert routed.proposal.proposed_action == {
        "trigger_type": "ticket.reply_needed",
        "source": "ai_coordinator",
        "payload": PAYLOAD,
    }
    assert agent.blocked_triggers == [routed.blocked]
    assert count(db, AgentExecution) == 0


def test_a_supervised_agent_runs_under_supervision(db: Session) -> None:
    agent = AgentFactory(supervised=True, with_workspace=True)

    routed = governance.route_trigger(db, agent, "workflow_engine", "refund.requested", PAYLOAD)

    assert routed.decision == RoutingDecision.SUPERVISION
    execution = routed.execution
    assert execution is not None
    db.expire_all()
    assert execution.triggered_by == "supervision:workflow_engine"
    assert governance.is_supervised(execution)
    assert execution.status == "running"
    assert execution.workspace_id == agent.workspace_id
    assert execution.input_summary is not None

    assert "refund.requested" in execution.input_summary
    assert count(db, BlockedTriggerContext) == count(db, AgentProposal) == 0


def test_an_autonomous_agent_runs_unsupervised(db: Session) -> None:
    agent = AgentFactory(autonomous=True)

    routed = governance.route_trigger(db, agent, "manual", "status.changed", PAYLOAD)

    assert routed.decision == RoutingDecision.EXECUTION
    assert routed.execution is not None
    assert routed.execution.triggered_by == "execution:manual"
    assert not governance.is_supervised(routed.execution)
    assert count(db, BlockedTriggerContext) == 0


@pytest.mark.parametrize("status", [AgentStatus.PAUSED, AgentStatus.DEPRECATED])
def test_a_paused_or_deprecated_agent_is_refused_and_nothing_written(
    db: Session, status: AgentStatus
) -> None:
    agent = AgentFactory(status=status)
    before = row_counts(db)

    with pytest.raises(AgentNotRunnable, match=f"is {status}: cannot take"):
        governance.route_trigger(db, agent, "manual", "status.changed", PAYLOAD)

    assert row_counts(db) == before
    assert not agent.executions
    assert not agent.blocked_triggers
    assert not agent.proposals


def test_an_unknown_trigger_source_is_refused_and_nothing_written(db: Session) -> None:
    agent = AgentFactory(student=True)
    before = row_counts(db)

    with pytest.raises(ValueError, match="'carrier_pigeon' is not a valid TriggerSource"):
        governance.route_trigger(db, agent, "carrier_pigeon", "crm.ticket_created", PAYLOAD)

    assert row_counts(db) == before


def test_a_trigger_type_the_column_rejects_leaves_nothing_behind(db: Session) -> None:
    agent = AgentFactory(student=True)
    before = row_counts(db)

    with pytest.raises(ValidationError, match="trigger_type: at most 100 characters"):
        governance.route_trigger(db, agent, "manual", "x" * 101, PAYLOAD)

    assert row_counts(db) == before
    assert not agent.proposals
    assert not agent.blocked_triggers
    assert not db.new


# --------------------------------------------------------------------------
# Executions
# --------------------------------------------------------------------------


def test_completing_an_execution_records_output_end_and_duration(db: Session) -> None:
    execution = AgentExecutionFactory(started_at=datetime.now(UTC) - timedelta(seconds=3))

    governance.complete_execution(db, execution, "reply sent")

    db.expire_all()
    assert execution.status == "completed"
    assert execution.output_summary == "reply sent"
    assert execution.completed_at is not None
    assert execution.duration_seconds >= 3


def test_a_failed_execution_keeps_its_error(db: Session) -> None:
    execution = AgentExecutionFactory()

    governance.complete_execution(db, execution, "CRM timed out", succeeded=False)

    assert execution.status == "failed"
    assert execution.error_message == "CRM timed out"
    assert execution.output_summary is None


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_execution_cannot_finish_again(db: Session, status: str) -> None:
    execution = AgentExecutionFactory(status=status)

    with pytest.raises(InvalidTransition, match=f"from '{status}' to 'completed'"):
        governance.complete_execution(db, execution, "again")

    db.expire_all()
    assert execution.status == status
    assert execution.completed_at is None


# --------------------------------------------------------------------------
# Proposal lifecycle
# --------------------------------------------------------------------------

Move = Callable[[Session, AgentProposal], object]


def _moves(reviewer: Any) -> dict[ProposalStatus, Move]:
    return {
        ProposalStatus.APPROVED: lambda db, p: governance.approve_proposal(db, p, reviewer),
        ProposalStatus.REJECTED: lambda db, p: governance.reject_proposal(db, p, reviewer, "no"),
        ProposalStatus.CANCELLED: lambda db, p: governance.cancel_proposal(db, p, "moot"),
        ProposalStatus.EXECUTED: lambda db, p: governance.execute_proposal(db, p, "done"),
    }


ALLOWED = {
    (ProposalStatus.PROPOSED, ProposalStatus.APPROVED),
    (ProposalStatus.PROPOSED, ProposalStatus.REJECTED),
    (ProposalStatus.PROPOSED, ProposalStatus.CANCELLED),
    (ProposalStatus.APPROVED, ProposalStatus.EXECUTED),
    (ProposalStatus.APPROVED, ProposalStatus.CANCELLED),
}
EVERY_MOVE = [
    (current, requested)
    for current in ProposalStatus
    for requested in ProposalStatus
    if requested != ProposalStatus.PROPOSED
]


def test_the_allowed_moves_are_exactly_the_documented_edges() -> None:
    edges = {
        (current, requested)
        for current, targets in governance.PROPOSAL_MOVES.items()
        for requested in targets
    }
    assert edges == ALLOWED


@pytest.mark.parametrize(("current", "requested"), sorted(set(EVERY_MOVE) - ALLOWED))
def test_a_move_off_the_edges_is_refused_and_writes_nothing(
    db: Session, current: ProposalStatus, requested: ProposalStatus
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True), status=current)
    reviewer = UserFactory()
    db.commit()
    before = row_counts(db)

    with pytest.raises(InvalidTransition) as refused:
        _moves(reviewer)[requested](db, proposal)

    assert f"from '{current}' to '{requested}'" in str(refused.value)
    assert proposal.id in str(refused.value)
    assert (refused.value.current, refused.value.requested) == (current, requested)
    assert not db.dirty
    assert not db.new
    db.expire_all()
    assert proposal.status == current
    assert proposal.version == 1
    assert row_counts(db) == before


@pytest.mark.parametrize(("current", "requested"), sorted(ALLOWED))
def test_a_move_along_an_edge_is_made_and_bumps_the_version(
    db: Session, current: ProposalStatus, requested: ProposalStatus
) -> None:
    proposal = AgentProposalFactory(
        agent=AgentFactory(intern=True), proposal_type=ProposalType.ACTION, status=current
    )

    _moves(UserFactory())[requested](db, proposal)

    db.expire_all()
    assert proposal.status == requested
    assert proposal.version == 2


def test_approval_records_who_and_when(db: Session) -> None:
    proposal = AgentProposalFactory()
    approver = UserFactory(team_lead=True)
    before = datetime.now(UTC)

    governance.approve_proposal(db, proposal, approver, modifications={"tone": "formal"})

    db.expire_all()
    assert proposal.approved_by == approver.id
    assert proposal.approved_at is not None
    assert before <= proposal.approved_at <= datetime.now(UTC)
    assert proposal.modifications == {"tone": "formal"}
    assert proposal.completed_at is None


def test_executing_an_action_proposal_records_a_run_and_resolves_its_triggers(
    db: Session,
) -> None:
    agent = AgentFactory(intern=True, with_workspace=True)
    routed = governance.route_trigger(db, agent, "data_sync", "ticket.reply_needed", PAYLOAD)
    assert routed.proposal is not None

    assert routed.blocked is not None
    governance.approve_proposal(db, routed.proposal, UserFactory())

    execution = governance.execute_proposal(db, routed.proposal, "reply sent")

    assert execution is not None
    db.expire_all()
    assert routed.proposal.status == "executed"
    assert routed.proposal.completed_at is not None
    assert routed.proposal.execution_result == {
        "outcome": "reply sent",
        "execution_id": execution.id,
    }
    assert (execution.agent_id, execution.workspace_id) == (agent.id, agent.workspace_id)
    assert execution.status == "completed"
    assert execution.triggered_by == "proposal"
    assert routed.blocked.resolved is True
    assert routed.blocked.resolved_at is not None
    assert routed.blocked.resolution_outcome == "executed: reply sent"


def test_executing_a_training_proposal_records_no_run(db: Session) -> None:
    agent = AgentFactory(student=True)
    routed = governance.route_trigger(db, agent, "data_sync", "crm.ticket_created", PAYLOAD)
    assert routed.proposal is not None

    assert routed.blocked is not None
    governance.approve_proposal(db, routed.proposal, UserFactory())

    assert governance.execute_proposal(db, routed.proposal, "trained") is None

    assert routed.blocked.resolved is True
    assert count(db, AgentExecution) == 0


@pytest.mark.parametrize("requested", [ProposalStatus.REJECTED, ProposalStatus.CANCELLED])
def test_rejecting_or_cancelling_closes_the_triggers_with_the_reason(
    db: Session, requested: ProposalStatus
) -> None:
    agent = AgentFactory(intern=True)
    routed = governance.route_trigger(db, agent, "data_sync", "ticket.reply_needed", PAYLOAD)
    assert routed.proposal is not None

    assert routed.blocked is not None
    reviewer = UserFactory(email="lead@example.com")

    _moves(reviewer)[requested](db, routed.proposal)

    expected = {
        ProposalStatus.REJECTED: "rejected by lead@example.com: no",
        ProposalStatus.CANCELLED: "cancelled: moot",
    }[requested]
    assert routed.blocked.resolved is True
    assert routed.blocked.resolution_outcome == expected
    assert routed.proposal.approved_by is None


def test_a_trigger_already_resolved_is_not_resolved_again(db: Session) -> None:
    proposal = AgentProposalFactory(approved=True)
    earlier = datetime(2020, 1, 1, tzinfo=UTC)
    done = BlockedTriggerContextFactory(
        agent=proposal.agent, proposal=proposal, resolved_trigger=True, resolved_at=earlier
    )
    open_one = BlockedTriggerContextFactory(agent=proposal.agent, proposal=proposal)

    governance.execute_proposal(db, proposal, "done")

    db.expire_all()
    assert (done.resolved_at, done.resolution_outcome) == (earlier, "handled after training")
    assert open_one.resolved is True
    assert open_one.resolution_outcome == "executed: done"


@pytest.mark.parametrize("status", [AgentStatus.PAUSED, AgentStatus.DEPRECATED])
def test_an_approved_proposal_of_a_stopped_agent_is_not_executed(
    db: Session, status: AgentStatus
) -> None:
    proposal = AgentProposalFactory(
        agent=AgentFactory(status=status), approved=True, proposal_type=ProposalType.ACTION
    )
    before = row_counts(db)

    with pytest.raises(AgentNotRunnable, match=f"is {status}: cannot execute proposal"):
        governance.execute_proposal(db, proposal, "done")

    assert row_counts(db) == before
    db.expire_all()
    assert proposal.status == "approved"
    # Cancelling is still possible: it asks nothing of the agent.
    governance.cancel_proposal(db, proposal, "agent retired")
    assert proposal.status == "cancelled"


def test_a_decision_on_a_stale_proposal_is_a_conflict(db: Session) -> None:
    proposal = AgentProposalFactory()
    db.commit()
    assert proposal.version == 1  # loaded again after the commit
    # Another session's decision, as the database sees it: the version moved
    # on, while the object loaded here still holds version 1.
    db.execute(
        update(AgentProposal)
        .where(AgentProposal.id == proposal.id)
        .values(version=2)
        .execution_options(synchronize_session=False)
    )

    with pytest.raises(ProposalConflict, match=f"proposal {proposal.id} was changed by another"):
        governance.approve_proposal(db, proposal, UserFactory())

    db.rollback()
    assert (proposal.status, proposal.approved_by, proposal.version) == ("proposed", None, 1)


# --------------------------------------------------------------------------
# Feedback, confidence and graduation
# --------------------------------------------------------------------------


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


def test_the_bands_are_the_domain_thresholds() -> None:
    assert tuple(MATURITY_THRESHOLDS) == governance.MATURITY_LADDER
    assert [maturity_for_confidence(t) for t in MATURITY_THRESHOLDS.values()] == list(
        governance.MATURITY_LADDER
    )


# --------------------------------------------------------------------------
# Episodes
# --------------------------------------------------------------------------


def test_an_episode_holds_its_runs_as_ordered_segments(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    late, early, middle = (
        AgentExecutionFactory(
            agent=agent, completed=True, started_at=start + timedelta(minutes=m), output_summary=s
        )
        for m, s in ((20, "third"), (0, "first"), (10, "second"))
    )
    governance.record_feedback(db, early, UserFactory(), rating=5)
    governance.record_feedback(db, late, UserFactory(), rating=1)

    episode = governance.record_episode(db, agent, [late, early, middle], title="Morning")

    db.expire_all()
    assert [s.content for s in episode.segments] == ["first", "second", "third"]
    assert [s.sequence_order for s in episode.segments] == [0, 1, 2]
    assert [s.source_id for s in episode.segments] == [early.id, middle.id, late.id]
    assert episode.execution_ids == [early.id, middle.id, late.id]
    assert len(episode.feedback_ids or []) == 2
    assert episode.aggregate_feedback_score == 0.0
    assert episode.started_at == start
    assert episode.workspace_id == agent.workspace_id
    assert episode.maturity_at_time == "autonomous"
    assert episode.status == "completed"


def test_an_episode_takes_the_workspace_of_its_runs_when_the_agent_has_none(
    db: Session,
) -> None:
    agent = AgentFactory(autonomous=True)
    workspace = WorkspaceFactory()
    execution = AgentExecutionFactory(agent=agent, workspace_id=workspace.id)

    episode = governance.record_episode(db, agent, [execution], title="Orphaned agent")

    assert episode.workspace_id == workspace.id
    assert episode.aggregate_feedback_score is None


def test_an_episode_is_refused_without_runs_foreign_runs_or_a_workspace(db: Session) -> None:
    agent = AgentFactory(autonomous=True)
    other = AgentExecutionFactory()
    own = AgentExecutionFactory(agent=agent)
    before = row_counts(db)

    with pytest.raises(GovernanceError, match="at least one execution"):
        governance.record_episode(db, agent, [], title="Empty")
    with pytest.raises(GovernanceError, match="are not runs of agent"):
        governance.record_episode(db, agent, [own, other], title="Mixed")
    with pytest.raises(GovernanceError, match="belong to no workspace"):
        governance.record_episode(db, agent, [own], title="Nowhere")

    assert row_counts(db) == before


def test_reading_an_episode_writes_an_access_log(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    runs = [AgentExecutionFactory(agent=agent, completed=True) for _ in range(2)]
    episode = governance.record_episode(db, agent, runs, title="Two runs")
    reader = UserFactory()

    segments = governance.read_episode(
        db, episode, user=reader, agent=agent, access_type="semantic", query="refunds"
    )

    assert [s.sequence_order for s in segments] == [0, 1]
    db.expire_all()
    log = db.scalars(select(EpisodeAccessLog)).one()
    assert (log.episode_id, log.accessed_by, log.accessed_by_agent) == (
        episode.id,
        reader.id,
        agent.id,
    )
    assert (log.access_type, log.retrieval_query, log.results_count) == ("semantic", "refunds", 2)
    assert log.agent_maturity_at_access == "autonomous"
    assert episode.access_count == 1

    governance.read_episode(db, episode)
    assert count(db, EpisodeAccessLog) == 2
    assert episode.access_count == 2
    assert sorted(db.scalars(select(EpisodeAccessLog.access_type))) == ["retrieval", "semantic"]


# --------------------------------------------------------------------------
# Lost races: the retryable error and the retry helper
# --------------------------------------------------------------------------


def test_a_concurrent_update_says_what_failed_why_and_what_to_do() -> None:
    error = ConcurrentUpdate("episode e1 could not be read", "the write lock was busy")

    assert isinstance(error, GovernanceError)
    assert str(error) == (
        "episode e1 could not be read: the write lock was busy; "
        "roll back and retry the unit of work"
    )
    assert (error.what, error.reason) == ("episode e1 could not be read", "the write lock was busy")


def test_a_proposal_conflict_is_the_retryable_error_naming_the_proposal() -> None:
    conflict = ProposalConflict("p1", ProposalStatus.REJECTED)

    assert isinstance(conflict, ConcurrentUpdate)
    assert (conflict.proposal_id, conflict.requested) == ("p1", ProposalStatus.REJECTED)
    assert str(conflict) == (
        "proposal p1 was changed by another session before this one could mark it 'rejected': "
        "its version moved on since this session loaded it; roll back and retry the unit of work"
    )


def _sqlite_error(tmp_path: Path, name: str) -> DBAPIError:
    """A real SQLite error, as SQLAlchemy raises it: SQLITE_BUSY (the write
    lock is held), SQLITE_BUSY_SNAPSHOT (someone committed since this
    transaction's first read) or a constraint."""
    path = tmp_path / "lock.db"
    holder = sqlite3.connect(path, isolation_level=None)
    loser = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x INTEGER UNIQUE)")
    loser.execute("BEGIN")
    loser.execute("SELECT * FROM t").fetchall()
    if name == "SQLITE_BUSY":
        holder.execute("BEGIN IMMEDIATE")
    elif name == "SQLITE_BUSY_SNAPSHOT":
        holder.execute("INSERT INTO t VALUES (1)")
    else:
        loser.execute("INSERT INTO t VALUES (1)")
    try:
        with pytest.raises(sqlite3.Error) as caught:
            loser.execute("INSERT INTO t VALUES (1)")
    finally:
        holder.close()
        loser.close()
    assert caught.value.sqlite_errorname == name
    return DBAPIError("INSERT", None, caught.value)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("SQLITE_BUSY", "write lock (SQLITE_BUSY)"),
     ("SQLITE_BUSY_SNAPSHOT", "may be stale reads (SQLITE_BUSY_SNAPSHOT)"),
     ("SQLITE_CONSTRAINT_UNIQUE", None)],
)  # fmt: skip
def test_sqlite_lost_races_are_told_apart_from_other_errors(
    tmp_path: Path, name: str, reason: str | None
) -> None:
    found = governance.lost_race(_sqlite_error(tmp_path, name))

    assert found is None if reason is None else reason in str(found)


@pytest.mark.parametrize(
    ("error", "code"),
    [(psycopg.errors.SerializationFailure, "40001"), (psycopg.errors.DeadlockDetected, "40P01"),
     (psycopg.errors.LockNotAvailable, "55P03"), (psycopg.errors.UniqueViolation, None)],
)  # fmt: skip
def test_postgresql_lost_races_are_told_apart_by_sqlstate(
    error: type[psycopg.Error], code: str | None
) -> None:
    wrapped = DBAPIError("UPDATE", None, error("from the server"))

    found = governance.lost_race(wrapped)

    assert found is None if code is None else f"({code})" in str(found)


def test_only_database_errors_can_be_lost_races() -> None:
    assert governance.lost_race(ValueError("SQLITE_BUSY")) is None


class Sessions:
    """A sessionmaker for `run_unit_of_work` on the test's own transaction:
    each session commits into a savepoint, so the test still undoes it all.
    Counts the sessions made and the commits."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.made = 0
        self.commits = 0

    def __call__(self) -> Session:
        session = Session(bind=self.db.connection(), join_transaction_mode="create_savepoint")
        event.listen(session, "after_commit", self._count_commit)
        self.made += 1
        return session

    def _count_commit(self, _session: Session) -> None:
        self.commits += 1


def _losing(times: int, error: Exception) -> Callable[[Session], str]:
    """Work that writes a workspace, then loses `times` times with `error`."""
    calls: list[int] = []

    def work(session: Session) -> str:
        calls.append(1)
        workspace = WorkspaceFactory(_session=session)
        if len(calls) <= times:
            raise error
        return workspace.name

    return work


def test_a_unit_of_work_that_loses_a_race_is_run_again_and_committed_once(db: Session) -> None:
    sessions = Sessions(db)
    lost = ConcurrentUpdate("agent a1 could not be rated", "busy")

    done = governance.run_unit_of_work(sessions, _losing(2, lost), backoff=0)

    assert (done.retries, sessions.made, sessions.commits) == (2, 3, 1)
    assert db.scalars(select(Workspace.name)).all() == [done.result]  # the lost runs left nothing


def test_a_raw_lost_race_from_the_database_is_retried_too(db: Session, tmp_path: Path) -> None:
    sessions = Sessions(db)

    done = governance.run_unit_of_work(
        sessions, _losing(1, _sqlite_error(tmp_path, "SQLITE_BUSY")), backoff=0
    )

    assert (done.retries, sessions.commits) == (1, 1)


def test_retrying_gives_up_after_the_last_attempt(db: Session) -> None:
    sessions = Sessions(db)
    lost = ConcurrentUpdate("episode e1 could not be read", "busy")

    with pytest.raises(ConcurrentUpdate) as error:
        governance.run_unit_of_work(sessions, _losing(5, lost), attempts=3, backoff=0)

    assert error.value is lost
    assert error.value.__notes__ == ["run_unit_of_work gave up after 3 attempts"]
    assert (sessions.made, sessions.commits) == (3, 0)
    assert count(db, Workspace) == 0


@pytest.mark.parametrize(
    "refusal",
    [InvalidTransition("proposal p1", "approved", "rejected", frozenset()),
     ValueError("not a race"), DBAPIError("INSERT", None, psycopg.errors.UniqueViolation())],
    ids=["governance", "python", "database"],
)  # fmt: skip
def test_other_errors_are_not_retried(db: Session, refusal: Exception) -> None:
    sessions = Sessions(db)

    with pytest.raises(type(refusal)):
        governance.run_unit_of_work(sessions, _losing(1, refusal), backoff=0)

    assert (sessions.made, sessions.commits) == (1, 0)
    assert count(db, Workspace) == 0


def test_retries_pause_a_random_time_below_a_doubling_bound(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("time.sleep", pauses.append)
    lost = ConcurrentUpdate("execution x1 could not be rated", "busy")

    governance.run_unit_of_work(Sessions(db), _losing(3, lost), backoff=0.5)

    assert len(pauses) == 3
    assert all(0 <= pause <= 0.5 * 2**retry for retry, pause in enumerate(pauses))


def test_a_unit_of_work_needs_at_least_one_attempt(db: Session) -> None:
    with pytest.raises(ValueError, match=r"^attempts must be at least 1, got 0$"):
        governance.run_unit_of_work(Sessions(db), _losing(0, ValueError()), attempts=0)
