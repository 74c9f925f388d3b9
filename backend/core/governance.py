"""The governance rules: the maturity guard, proposals, feedback and episodes.

Every function takes the caller's Session, writes through it and flushes, and
never commits: the caller owns the transaction (`with session_scope() as s:`).
A move the rules refuse raises a `GovernanceError` before anything is written.

The rules, in one place:
- Routing by maturity: student -> blocked, training proposal; intern ->
  blocked, action proposal awaiting approval; supervised -> an execution
  whose `triggered_by` reads `supervision:<source>`; autonomous -> an
  execution with `triggered_by` `execution:<source>`; paused or deprecated
  -> refused.
- Proposals move along `PROPOSAL_MOVES` only. A terminal move (executed,
  rejected, cancelled) resolves the proposal's open blocked triggers, each
  exactly once, with an outcome saying which. Of two sessions deciding the
  same proposal, the first to commit wins; the other gets `ProposalConflict`.
- Confidence moves a fifth of the way towards the feedback's target
  (`next_confidence`), so it stays in [0, 1] and crosses at most one band
  per feedback; an agent graduates one level when it reaches the next band.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.database import utc_now
from core.models import (
    MATURITY_THRESHOLDS,
    AccessType,
    AgentExecution,
    AgentFeedback,
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    BlockedTriggerContext,
    Episode,
    EpisodeAccessLog,
    EpisodeSegment,
    EpisodeStatus,
    ExecutionStatus,
    FeedbackStatus,
    ProposalStatus,
    ProposalType,
    RoutingDecision,
    TriggerSource,
    User,
)

GUARD = "maturity-guard"  # `proposed_by` of the proposals the guard writes

# The levels an agent climbs, lowest first; paused and deprecated are off it.
MATURITY_LADDER: tuple[AgentStatus, ...] = tuple(MATURITY_THRESHOLDS)

ROUTING: Mapping[AgentStatus, RoutingDecision] = {
    AgentStatus.STUDENT: RoutingDecision.TRAINING,
    AgentStatus.INTERN: RoutingDecision.PROPOSAL,
    AgentStatus.SUPERVISED: RoutingDecision.SUPERVISION,
    AgentStatus.AUTONOMOUS: RoutingDecision.EXECUTION,
}

PROPOSAL_MOVES: Mapping[ProposalStatus, frozenset[ProposalStatus]] = {
    ProposalStatus.PROPOSED: frozenset(
        {ProposalStatus.APPROVED, ProposalStatus.REJECTED, ProposalStatus.CANCELLED}
    ),
    ProposalStatus.APPROVED: frozenset({ProposalStatus.EXECUTED, ProposalStatus.CANCELLED}),
    ProposalStatus.REJECTED: frozenset(),
    ProposalStatus.EXECUTED: frozenset(),
    ProposalStatus.CANCELLED: frozenset(),
}

EXECUTION_MOVES: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    ExecutionStatus.RUNNING: frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED}),
    ExecutionStatus.COMPLETED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
    ExecutionStatus.CANCELLED: frozenset(),
}

SQLITE_LOST_RACE = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"})

# How far one feedback moves confidence towards its target. Below 0.25, one
# feedback can never jump a band: the narrowest band is 0.2 wide and the
# largest possible move is LEARNING_RATE * 1.
LEARNING_RATE = 0.2


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class GovernanceError(Exception):
    """A move the governance rules refuse; raised before anything is written."""


class AgentNotRunnable(GovernanceError):
    """The agent is paused or deprecated: it takes no triggers and runs nothing."""

    def __init__(self, agent: AgentRegistry, attempted: str) -> None:
        super().__init__(
            f"agent {agent.name!r} ({agent.id}) is {agent.status}: cannot {attempted}; "
            f"only {', '.join(MATURITY_LADDER)} agents can"
        )
        self.agent_id = agent.id


class InvalidTransition(GovernanceError):
    """A status change that is not one of the allowed moves."""

    def __init__(self, what: str, current: str, requested: str, allowed: frozenset[Any]) -> None:
        current, requested = str(current), str(requested)
        choices = ", ".join(sorted(str(status) for status in allowed)) or "none, it is final"
        super().__init__(
            f"cannot move {what} from {current!r} to {requested!r} "
            f"(allowed from {current!r}: {choices})"
        )
        self.current = current
        self.requested = requested


class ProposalConflict(GovernanceError):
    """A concurrent session won the race to change the proposal.

    On every backend that is a proposal whose version moved on since it was
    loaded. On SQLite, which admits one writer at a time, it is also any
    other write committed while this transaction was open. Unlike the other
    refusals, this one is found by the database at flush: the caller's
    transaction is spoilt and must be rolled back.
    """

    def __init__(self, proposal_id: str, requested: ProposalStatus) -> None:
        super().__init__(
            f"proposal {proposal_id} was changed by another session before this one could "
            f"mark it {str(requested)!r}; roll back, reload it and decide again"
        )
        self.proposal_id = proposal_id
        self.requested = requested


# --------------------------------------------------------------------------
# The maturity guard
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutedTrigger:
    """What the maturity guard did with one trigger."""

    decision: RoutingDecision
    execution: AgentExecution | None = None
    blocked: BlockedTriggerContext | None = None
    proposal: AgentProposal | None = None


def is_supervised(execution: AgentExecution) -> bool:
    """Whether the guard ran this execution under supervision (`supervision:<source>`)."""
    return execution.triggered_by.startswith(f"{RoutingDecision.SUPERVISION}:")


def route_trigger(
    session: Session,
    agent: AgentRegistry,
    source: TriggerSource | str,
    trigger_type: str,
    payload: Mapping[str, Any],
) -> RoutedTrigger:
    """Let `agent` act on a trigger only as far as its maturity allows."""
    source = TriggerSource(source)
    decision = ROUTING.get(agent.status)
    if decision is None:
        raise AgentNotRunnable(agent, f"take the {source} trigger {trigger_type!r}")

    if decision in (RoutingDecision.SUPERVISION, RoutingDecision.EXECUTION):
        execution = AgentExecution(
            workspace_id=agent.workspace_id,
            triggered_by=f"{decision}:{source}",
            input_summary=_describe(trigger_type, payload),
        )
        execution.agent = agent
        session.add(execution)
        session.flush()
        return RoutedTrigger(decision, execution=execution)

    # Both objects are fully built before either is linked or added: a value
    # a column rejects leaves nothing behind, not even in the agent's lists.
    proposal = _guard_proposal(agent, decision, source, trigger_type, payload)
    blocked = BlockedTriggerContext(
        agent_name=agent.name,
        agent_maturity_at_block=agent.status,
        confidence_score_at_block=agent.confidence_score,
        trigger_source=source,
        trigger_type=trigger_type,
        trigger_context=dict(payload),
        routing_decision=decision,
        block_reason=(
            f"{agent.status} agents may not act on triggers "
            f"(confidence {agent.confidence_score:.2f}); routed to {decision}"
        ),
    )
    blocked.proposal = proposal
    proposal.agent = agent
    blocked.agent = agent
    session.add_all((proposal, blocked))
    session.flush()
    return RoutedTrigger(decision, blocked=blocked, proposal=proposal)


def _guard_proposal(
    agent: AgentRegistry,
    decision: RoutingDecision,
    source: TriggerSource,
    trigger_type: str,
    payload: Mapping[str, Any],
) -> AgentProposal:
    if decision is RoutingDecision.TRAINING:
        return AgentProposal(
            agent_name=agent.name,
            proposal_type=ProposalType.TRAINING,
            title=f"Train {agent.name} on {trigger_type}",
            description=(
                f"{agent.name} is a student and may not act on {trigger_type!r} yet; "
                "it should practise on this kind of trigger first."
            ),
            learning_objectives=[f"handle {trigger_type!r} triggers from {source}"],
            proposed_by=GUARD,
        )
    return AgentProposal(
        agent_name=agent.name,
        proposal_type=ProposalType.ACTION,
        title=f"{agent.name}: act on {trigger_type}",
        description=f"{agent.name} is an intern: a person approves before it acts.",
        proposed_action={"trigger_type": trigger_type, "source": source, "payload": dict(payload)},
        proposed_by=GUARD,
    )


def _describe(trigger_type: str, payload: Mapping[str, Any]) -> str:
    return f"{trigger_type} {json.dumps(dict(payload), sort_keys=True, default=str)}"


def complete_execution(
    session: Session, execution: AgentExecution, output: str, *, succeeded: bool = True
) -> AgentExecution:
    """Finish a running execution, as completed or failed."""
    requested = ExecutionStatus.COMPLETED if succeeded else ExecutionStatus.FAILED
    current = ExecutionStatus(execution.status)
    if requested not in EXECUTION_MOVES[current]:
        raise InvalidTransition(
            f"execution {execution.id}", current, requested, EXECUTION_MOVES[current]
        )
    now = utc_now()
    execution.status = requested
    execution.completed_at = now
    execution.duration_seconds = max(0.0, (now - execution.started_at).total_seconds())
    if succeeded:
        execution.output_summary = output
    else:
        execution.error_message = output
    session.flush()
    return execution


# --------------------------------------------------------------------------
# Proposal lifecycle
# --------------------------------------------------------------------------


def approve_proposal(
    session: Session,
    proposal: AgentProposal,
    approver: User,
    *,
    modifications: Mapping[str, Any] | None = None,
) -> AgentProposal:
    """A person approves: records who and when."""
    _check_move(proposal, ProposalStatus.APPROVED)
    proposal.status = ProposalStatus.APPROVED
    proposal.approver = approver
    proposal.approved_at = utc_now()
    if modifications:
        proposal.modifications = dict(modifications)
    _flush_decision(session, proposal, ProposalStatus.APPROVED)
    return proposal


def reject_proposal(
    session: Session, proposal: AgentProposal, reviewer: User, reason: str
) -> AgentProposal:
    """A person says no; the blocked triggers are closed with the reason."""
    _check_move(proposal, ProposalStatus.REJECTED)
    _finish(proposal, ProposalStatus.REJECTED, f"rejected by {reviewer.email}: {reason}")
    _flush_decision(session, proposal, ProposalStatus.REJECTED)
    return proposal


def cancel_proposal(session: Session, proposal: AgentProposal, reason: str) -> AgentProposal:
    """Withdraw a proposal that is not yet decided or not yet executed."""
    _check_move(proposal, ProposalStatus.CANCELLED)
    _finish(proposal, ProposalStatus.CANCELLED, f"cancelled: {reason}")
    _flush_decision(session, proposal, ProposalStatus.CANCELLED)
    return proposal


def execute_proposal(
    session: Session, proposal: AgentProposal, outcome: str
) -> AgentExecution | None:
    """Carry out an approved proposal and resolve its blocked triggers.

    An action proposal is a run of the agent and is recorded as a completed
    `AgentExecution` (returned, so people can rate it); a training proposal
    records only its outcome.
    """
    _check_move(proposal, ProposalStatus.EXECUTED)
    agent = proposal.agent
    if agent.status not in MATURITY_LADDER:
        raise AgentNotRunnable(agent, f"execute proposal {proposal.id}")
    execution = None
    if proposal.proposal_type == ProposalType.ACTION:
        now = utc_now()
        execution = AgentExecution(
            workspace_id=agent.workspace_id,
            triggered_by="proposal",
            status=ExecutionStatus.COMPLETED,
            input_summary=json.dumps(proposal.proposed_action, sort_keys=True, default=str),
            output_summary=outcome,
            started_at=now,
            completed_at=now,
        )
    _finish(proposal, ProposalStatus.EXECUTED, f"executed: {outcome}")
    if execution is not None:
        execution.agent = agent
        session.add(execution)
    proposal.execution_result = {
        "outcome": outcome,
        "execution_id": execution.id if execution is not None else None,
    }
    _flush_decision(session, proposal, ProposalStatus.EXECUTED)
    return execution


def _check_move(proposal: AgentProposal, requested: ProposalStatus) -> None:
    current = ProposalStatus(proposal.status)
    if requested not in PROPOSAL_MOVES[current]:
        raise InvalidTransition(
            f"proposal {proposal.id}", current, requested, PROPOSAL_MOVES[current]
        )


def _finish(proposal: AgentProposal, status: ProposalStatus, outcome: str) -> None:
    # Load the triggers before changing the proposal: the lazy load may
    # autoflush, and an UPDATE flushed early would bump the version twice and
    # dodge `_flush_decision`.
    open_triggers = [trigger for trigger in proposal.blocked_triggers if not trigger.resolved]
    now = utc_now()
    proposal.status = status
    proposal.completed_at = now
    for trigger in open_triggers:
        trigger.resolved = True
        trigger.resolved_at = now
        trigger.resolution_outcome = outcome


def _flush_decision(session: Session, proposal: AgentProposal, requested: ProposalStatus) -> None:
    proposal_id = proposal.id
    try:
        session.flush()
    except StaleDataError as error:
        raise ProposalConflict(proposal_id, requested) from error
    except OperationalError as error:
        # SQLite has one writer at a time: a transaction that has read cannot
        # write while another holds the write lock (SQLITE_BUSY, at once: its
        # snapshot is about to go stale) or once another has committed since
        # (SQLITE_BUSY_SNAPSHOT). The same lost race, found before the version
        # check could run.
        if getattr(error.orig, "sqlite_errorname", None) in SQLITE_LOST_RACE:
            raise ProposalConflict(proposal_id, requested) from error
        raise


# --------------------------------------------------------------------------
# Feedback and graduation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackOutcome:
    """A feedback row and what it did to its agent."""

    feedback: AgentFeedback
    confidence_before: float
    confidence_after: float
    maturity_before: AgentStatus
    maturity_after: AgentStatus

    @property
    def graduated(self) -> bool:
        return self.maturity_after != self.maturity_before


def feedback_target(*, rating: int | None = None, thumbs_up: bool | None = None) -> float:
    """The confidence a feedback points to: 1 star -> 0.0 ... 5 stars -> 1.0,
    thumbs up -> 1.0, thumbs down -> 0.0. A rating wins over thumbs."""
    if rating is not None:
        return (rating - 1) / 4
    if thumbs_up is not None:
        return 1.0 if thumbs_up else 0.0
    raise GovernanceError("feedback needs a rating (1 to 5) or a thumbs up/down")


def next_confidence(confidence: float, target: float) -> float:
    """Move a fifth of the way towards `target`.

    A weighted mean of two values in [0, 1] stays in [0, 1]; the clamp only
    absorbs floating-point rounding.
    """
    return min(1.0, max(0.0, confidence + LEARNING_RATE * (target - confidence)))


def graduate(agent: AgentRegistry) -> AgentStatus:
    """Promote `agent` one level if its confidence reached the next band.

    Never more than one level at a time, and never a paused or deprecated
    agent. A drop in confidence demotes nobody: that is a person's decision.
    """
    status = AgentStatus(agent.status)
    if status not in MATURITY_LADDER or status is MATURITY_LADDER[-1]:
        return status
    following = MATURITY_LADDER[MATURITY_LADDER.index(status) + 1]
    if agent.confidence_score >= MATURITY_THRESHOLDS[following]:
        agent.status = following
    return AgentStatus(agent.status)


def record_feedback(
    session: Session,
    execution: AgentExecution,
    user: User,
    *,
    rating: int | None = None,
    thumbs_up: bool | None = None,
    correction: str = "",
) -> FeedbackOutcome:
    """Record a person's verdict on a finished run; move confidence and maybe graduate."""
    if execution.status == ExecutionStatus.RUNNING:
        raise GovernanceError(f"execution {execution.id} is still running: rate it once finished")
    target = feedback_target(rating=rating, thumbs_up=thumbs_up)
    agent = execution.agent
    feedback = AgentFeedback(
        original_output=execution.output_summary or execution.error_message or "",
        user_correction=correction,
        feedback_type="rating" if rating is not None else "thumbs",
        rating=rating,
        thumbs_up_down=thumbs_up,
        status=FeedbackStatus.ACCEPTED,
        adjudicated_at=utc_now(),
    )
    confidence_before, maturity_before = agent.confidence_score, AgentStatus(agent.status)
    feedback.agent, feedback.execution, feedback.user = agent, execution, user
    session.add(feedback)
    agent.confidence_score = next_confidence(confidence_before, target)
    maturity_after = graduate(agent)
    session.flush()
    return FeedbackOutcome(
        feedback, confidence_before, agent.confidence_score, maturity_before, maturity_after
    )


# --------------------------------------------------------------------------
# Episodic memory
# --------------------------------------------------------------------------


def record_episode(
    session: Session,
    agent: AgentRegistry,
    executions: Sequence[AgentExecution],
    *,
    title: str,
    user: User | None = None,
) -> Episode:
    """Remember a run of `agent`'s executions: one segment each, in start order."""
    if not executions:
        raise GovernanceError("an episode needs at least one execution")
    strangers = [run.id for run in executions if run.agent_id != agent.id]
    if strangers:
        raise GovernanceError(f"executions {strangers} are not runs of agent {agent.id}")
    workspace_id = agent.workspace_id or next(
        (run.workspace_id for run in executions if run.workspace_id), None
    )
    if workspace_id is None:
        raise GovernanceError(f"agent {agent.id} and its executions belong to no workspace")

    runs = sorted(executions, key=lambda run: run.started_at)
    feedback = [item for run in runs for item in run.feedback]
    episode = Episode(
        title=title,
        workspace_id=workspace_id,
        user_id=user.id if user is not None else None,
        execution_ids=[run.id for run in runs],
        feedback_ids=[item.id for item in feedback],
        aggregate_feedback_score=_feedback_score(feedback),
        maturity_at_time=agent.status,
        started_at=runs[0].started_at,
        ended_at=max(run.completed_at or run.started_at for run in runs),
        status=EpisodeStatus.COMPLETED,
    )
    episode.segments = [
        EpisodeSegment(
            segment_type="execution",
            sequence_order=order,
            content=run.output_summary or run.error_message or run.input_summary or "",
            content_summary=f"{run.triggered_by}: {run.status}",
            source_type="agent_execution",
            source_id=run.id,
        )
        for order, run in enumerate(runs)
    ]
    episode.agent = agent
    session.add(episode)
    session.flush()
    return episode


def _feedback_score(feedback: Sequence[AgentFeedback]) -> float | None:
    # Targets live in [0, 1]; the episode's score is on [-1, 1].
    targets = [
        feedback_target(rating=item.rating, thumbs_up=item.thumbs_up_down)
        for item in feedback
        if item.rating is not None or item.thumbs_up_down is not None
    ]
    return None if not targets else 2 * sum(targets) / len(targets) - 1


def read_episode(
    session: Session,
    episode: Episode,
    *,
    user: User | None = None,
    agent: AgentRegistry | None = None,
    access_type: AccessType | str = AccessType.RETRIEVAL,
    query: str | None = None,
) -> list[EpisodeSegment]:
    """An episode's segments, in order; every read leaves an access log."""
    segments = list(episode.segments)
    log = EpisodeAccessLog(
        accessed_by=user.id if user is not None else None,
        accessed_by_agent=agent.id if agent is not None else None,
        access_type=access_type,
        retrieval_query=query,
        agent_maturity_at_access=str(agent.status) if agent is not None else None,
        results_count=len(segments),
    )
    log.episode = episode
    session.add(log)
    episode.access_count += 1
    session.flush()
    return segments
