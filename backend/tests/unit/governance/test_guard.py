"""The maturity guard (`route_trigger`) and the runs it starts (`complete_execution`):
one test per rule and per refused move."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core import governance
from core.governance import AgentNotRunnable, InvalidTransition
from core.models import (
    AgentExecution,
    AgentProposal,
    AgentStatus,
    BlockedTriggerContext,
    ExecutionStatus,
    RoutingDecision,
    TriggerSource,
    ValidationError,
)
from tests.factories import AgentExecutionFactory, AgentFactory
from tests.unit.governance.common import PAYLOAD, count, row_counts, stored_row

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


@pytest.mark.parametrize(
    ("maturity", "source", "trigger_type", "blocked", "proposal"),
    [
        pytest.param(
            "student",
            "data_sync",
            "crm.ticket_created",
            {
                "agent_name": "Scout",
                "routing_decision": "training",
                "block_reason": "student agents may not act on triggers (confidence 0.30); "
                "routed to training",
            },
            {
                "agent_name": "Scout",
                "proposal_type": "training",
                "title": "Train Scout on crm.ticket_created",
                "description": "Scout is a student and may not act on 'crm.ticket_created' yet; "
                "it should practise on this kind of trigger first.",
                "learning_objectives": ["handle 'crm.ticket_created' triggers from data_sync"],
                "proposed_action": None,
                "proposed_by": "maturity-guard",
                "status": "proposed",
                "approved_by": None,
                "completed_at": None,
            },
            id="student-training",
        ),
        pytest.param(
            "intern",
            "manual",
            "ticket.reply_needed",
            {
                "agent_name": "Scout",
                "agent_maturity_at_block": "intern",
                "confidence_score_at_block": 0.6,
                "routing_decision": "proposal",
                "block_reason": "intern agents may not act on triggers (confidence 0.60); "
                "routed to proposal",
                "resolved_at": None,
                "resolution_outcome": None,
            },
            {
                "agent_name": "Scout",
                "proposal_type": "action",
                "title": "Scout: act on ticket.reply_needed",
                "description": "Scout is an intern: a person approves before it acts.",
                "learning_objectives": None,
                "proposed_by": "maturity-guard",
            },
            id="intern-action",
        ),
    ],
)
def test_a_blocked_agent_leaves_a_proposal_and_says_why(
    db: Session,
    maturity: str,
    source: str,
    trigger_type: str,
    blocked: dict[str, object],
    proposal: dict[str, object],
) -> None:
    """The rows as stored, each with the blocked agent's id besides the columns given."""
    agent = AgentFactory(name="Scout", **{maturity: True})

    routed = governance.route_trigger(db, agent, source, trigger_type, PAYLOAD)

    assert routed.blocked is not None
    assert routed.proposal is not None
    blocked_row = {"agent_id": agent.id, **blocked}
    assert stored_row(db, BlockedTriggerContext, routed.blocked.id, *blocked_row) == blocked_row
    proposal_row = {"agent_id": agent.id, **proposal}
    assert stored_row(db, AgentProposal, routed.proposal.id, *proposal_row) == proposal_row


@pytest.mark.parametrize(
    ("maturity", "triggered_by"),
    [("supervised", "supervision:workflow_engine"), ("autonomous", "execution:workflow_engine")],
)
def test_a_run_the_guard_lets_through_records_the_trigger_it_answers(
    db: Session, maturity: str, triggered_by: str
) -> None:
    """The trigger type, then the payload as JSON with sorted keys; a value JSON
    cannot hold (a date) is written as its text."""
    agent = AgentFactory(with_workspace=True, **{maturity: True})
    payload = {"ticket": 42, "priority": "high", "due": date(2026, 3, 2)}

    routed = governance.route_trigger(db, agent, "workflow_engine", "refund.requested", payload)

    assert routed.execution is not None
    run = {
        "agent_id": agent.id,
        "workspace_id": agent.workspace_id,
        "triggered_by": triggered_by,
        "status": "running",
        "input_summary": 'refund.requested {"due": "2026-03-02", "priority": "high", "ticket": 42}',
        "output_summary": None,
        "completed_at": None,
    }
    assert stored_row(db, AgentExecution, routed.execution.id, *run) == run


def test_a_stopped_agent_is_told_which_trigger_it_cannot_take_and_who_can(db: Session) -> None:
    agent = AgentFactory(deprecated=True, name="Scout")

    with pytest.raises(AgentNotRunnable) as refused:
        governance.route_trigger(db, agent, "manual", "status.changed", PAYLOAD)

    assert str(refused.value) == (
        f"agent 'Scout' ({agent.id}) is deprecated: cannot take the manual trigger "
        "'status.changed'; only student, intern, supervised, autonomous agents can"
    )
    assert refused.value.agent_id == agent.id


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


def test_a_finished_run_records_when_it_ended_and_how_long_it_took(
    db: Session, now: datetime
) -> None:
    execution = AgentExecutionFactory(started_at=now - timedelta(seconds=3, microseconds=500))

    governance.complete_execution(db, execution, "reply sent")

    expected = {
        "status": "completed",
        "output_summary": "reply sent",
        "error_message": None,
        "completed_at": now,
        "duration_seconds": 3.0005,
    }
    assert stored_row(db, AgentExecution, execution.id, *expected) == expected


def test_a_failed_run_records_its_error_when_it_ended_and_how_long_it_took(
    db: Session, now: datetime
) -> None:
    execution = AgentExecutionFactory(started_at=now - timedelta(seconds=2))

    governance.complete_execution(db, execution, "CRM timed out", succeeded=False)

    expected = {
        "status": "failed",
        "output_summary": None,
        "error_message": "CRM timed out",
        "completed_at": now,
        "duration_seconds": 2.0,
    }
    assert stored_row(db, AgentExecution, execution.id, *expected) == expected


@pytest.mark.parametrize("started", [timedelta(0), timedelta(seconds=5)], ids=["now", "later"])
def test_a_run_ending_when_it_started_or_before_took_no_time(
    db: Session, now: datetime, started: timedelta
) -> None:
    """A clock that stepped back (the start written by another host, say)
    gives no negative duration."""
    execution = AgentExecutionFactory(started_at=now + started)

    governance.complete_execution(db, execution, "done")

    assert stored_row(db, AgentExecution, execution.id, "duration_seconds") == {
        "duration_seconds": 0.0
    }


def test_finishing_a_finished_run_names_its_outcome_as_final(db: Session) -> None:
    execution = AgentExecutionFactory(status="failed")

    with pytest.raises(InvalidTransition) as refused:
        governance.complete_execution(db, execution, "again")

    assert str(refused.value) == (
        f"cannot move execution {execution.id} from 'failed' to 'completed' "
        "(allowed from 'failed': none, it is final)"
    )
    assert (refused.value.current, refused.value.requested) == ("failed", "completed")


def test_a_running_run_may_complete_or_fail_and_says_so_when_refused() -> None:
    refused = InvalidTransition(
        "execution x1", "running", "cancelled", governance.EXECUTION_MOVES[ExecutionStatus.RUNNING]
    )

    assert str(refused) == (
        "cannot move execution x1 from 'running' to 'cancelled' "
        "(allowed from 'running': completed, failed)"
    )
