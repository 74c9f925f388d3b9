"""The maturity guard (`route_trigger`) and the runs it starts (`complete_execution`):
one test per rule and per refused move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core import governance
from core.governance import AgentNotRunnable, InvalidTransition
from core.models import (
    AgentExecution,
    AgentProposal,
    AgentStatus,
    BlockedTriggerContext,
    RoutingDecision,
    TriggerSource,
    ValidationError,
)
from tests.factories import AgentExecutionFactory, AgentFactory
from tests.unit.governance.common import PAYLOAD, count, row_counts

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
