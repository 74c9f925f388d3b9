"""The proposal lifecycle: the allowed moves, who decided and when, the blocked
triggers a decision resolves, and a decision on a stale proposal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from core import governance
from core.governance import AgentNotRunnable, InvalidTransition, ProposalConflict
from core.models import (
    AgentExecution,
    AgentProposal,
    AgentStatus,
    BlockedTriggerContext,
    ProposalStatus,
    ProposalType,
)
from tests.factories import (
    AgentFactory,
    AgentProposalFactory,
    BlockedTriggerContextFactory,
    UserFactory,
)
from tests.unit.governance.common import PAYLOAD, count, row_counts, stored_row

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

    key = proposal.id

    with pytest.raises(ProposalConflict, match=f"proposal {key} was changed by another") as lost:
        governance.approve_proposal(db, proposal, UserFactory())

    assert (lost.value.proposal_id, lost.value.requested) == (key, "approved")
    db.rollback()
    assert (proposal.status, proposal.approved_by, proposal.version) == ("proposed", None, 1)


# --------------------------------------------------------------------------
# What each decision writes, exactly (the clock frozen at `now`)
# --------------------------------------------------------------------------

TRIGGER_COLUMNS = ("resolved", "resolved_at", "resolution_outcome")


def _open_trigger(proposal: AgentProposal) -> BlockedTriggerContext:
    return BlockedTriggerContextFactory(agent=proposal.agent, proposal=proposal)


def _trigger(db: Session, trigger: BlockedTriggerContext) -> tuple[Any, ...]:
    """The trigger's (resolved, resolved_at, resolution_outcome), as stored."""
    return tuple(stored_row(db, BlockedTriggerContext, trigger.id, *TRIGGER_COLUMNS).values())


def test_an_approval_records_the_approver_and_the_time_and_resolves_nothing(
    db: Session, now: datetime
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True))
    trigger = _open_trigger(proposal)
    approver = UserFactory()

    governance.approve_proposal(db, proposal, approver, modifications={})

    expected = {
        "status": "approved",
        "approved_by": approver.id,
        "approved_at": now,
        "modifications": None,  # none asked for
        "completed_at": None,
        "execution_result": None,
    }
    assert stored_row(db, AgentProposal, proposal.id, *expected) == expected
    assert _trigger(db, trigger) == (False, None, None)


@pytest.mark.parametrize(
    ("requested", "outcome"),
    [(ProposalStatus.REJECTED, "rejected by lead@example.com: too risky"),
     (ProposalStatus.CANCELLED, "cancelled: moot")],
)  # fmt: skip
def test_a_rejection_or_cancellation_ends_the_proposal_and_its_triggers_at_once(
    db: Session, now: datetime, requested: ProposalStatus, outcome: str
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True))
    trigger = _open_trigger(proposal)
    reviewer = UserFactory(email="lead@example.com")

    if requested == ProposalStatus.REJECTED:
        governance.reject_proposal(db, proposal, reviewer, "too risky")
    else:
        governance.cancel_proposal(db, proposal, "moot")

    expected = {
        "status": requested,
        "completed_at": now,
        "approved_by": None,
        "approved_at": None,
        "execution_result": None,
    }
    assert stored_row(db, AgentProposal, proposal.id, *expected) == expected
    assert _trigger(db, trigger) == (True, now, outcome)


def test_an_executed_action_proposal_is_recorded_as_a_finished_run_of_its_agent(
    db: Session, now: datetime
) -> None:
    agent = AgentFactory(intern=True, with_workspace=True)
    action = {"trigger_type": "ticket.reply_needed", "source": "data_sync", "payload": PAYLOAD}
    proposal = AgentProposalFactory(
        agent=agent, approved=True, proposal_type=ProposalType.ACTION, proposed_action=action
    )
    trigger = _open_trigger(proposal)

    execution = governance.execute_proposal(db, proposal, "reply sent")

    assert execution is not None
    run = {
        "agent_id": agent.id,
        "workspace_id": agent.workspace_id,
        "triggered_by": "proposal",
        "status": "completed",
        # The proposed action, as JSON with its keys sorted.
        "input_summary": '{"payload": {"priority": "high", "ticket": 42}, '
        '"source": "data_sync", "trigger_type": "ticket.reply_needed"}',
        "output_summary": "reply sent",
        "error_message": None,
        "started_at": now,
        "completed_at": now,
        "duration_seconds": 0.0,
    }
    assert stored_row(db, AgentExecution, execution.id, *run) == run
    expected = {
        "status": "executed",
        "completed_at": now,
        "execution_result": {"outcome": "reply sent", "execution_id": execution.id},
    }
    assert stored_row(db, AgentProposal, proposal.id, *expected) == expected
    assert _trigger(db, trigger) == (True, now, "executed: reply sent")


def test_an_executed_training_proposal_records_its_outcome_and_no_run(
    db: Session, now: datetime
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(student=True), approved=True)
    trigger = _open_trigger(proposal)

    assert governance.execute_proposal(db, proposal, "trained") is None

    assert count(db, AgentExecution) == 0
    expected = {
        "status": "executed",
        "completed_at": now,
        "execution_result": {"outcome": "trained", "execution_id": None},
    }
    assert stored_row(db, AgentProposal, proposal.id, *expected) == expected
    assert _trigger(db, trigger) == (True, now, "executed: trained")


# --------------------------------------------------------------------------
# What a refusal says
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "requested", "allowed"),
    [(ProposalStatus.REJECTED, ProposalStatus.APPROVED, "none, it is final"),
     (ProposalStatus.PROPOSED, ProposalStatus.EXECUTED, "approved, cancelled, rejected"),
     (ProposalStatus.APPROVED, ProposalStatus.APPROVED, "cancelled, executed")],
)  # fmt: skip
def test_a_refused_move_names_the_moves_allowed_from_where_the_proposal_is(
    db: Session, current: ProposalStatus, requested: ProposalStatus, allowed: str
) -> None:
    proposal = AgentProposalFactory(agent=AgentFactory(intern=True), status=current)

    with pytest.raises(InvalidTransition) as refused:
        _moves(UserFactory())[requested](db, proposal)

    assert str(refused.value) == (
        f"cannot move proposal {proposal.id} from '{current}' to '{requested}' "
        f"(allowed from '{current}': {allowed})"
    )


def test_a_proposal_of_a_stopped_agent_names_the_agent_and_who_can_act(db: Session) -> None:
    agent = AgentFactory(status=AgentStatus.PAUSED, name="Scout")
    proposal = AgentProposalFactory(agent=agent, approved=True)

    with pytest.raises(AgentNotRunnable) as refused:
        governance.execute_proposal(db, proposal, "done")

    assert str(refused.value) == (
        f"agent 'Scout' ({agent.id}) is paused: cannot execute proposal {proposal.id}; "
        "only student, intern, supervised, autonomous agents can"
    )
    assert refused.value.agent_id == agent.id
