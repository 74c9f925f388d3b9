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
- Concurrent sessions lose no update: every value computed from what a
  session read (confidence, maturity, an execution's status, an episode's
  access count, a proposal's status) is written with the row locked, as an
  atomic SQL expression, or under a version check; each place says why that
  one. A race that cannot be won by waiting raises `ConcurrentUpdate`:
  roll back and retry the unit of work (`run_unit_of_work` does both).
- Decisions (a proposal proposed, approved, rejected, cancelled, executed; an
  agent graduated) are announced to subscribers (`subscribe`) once they are
  committed, never for a decision that is rolled back (`core.transactions`).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from core.models import (
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
from core.schema import (
    Base,
    utc_now,
)
from core.transactions import on_commit, run_all

GUARD = "maturity-guard"  # `proposed_by` of the proposals the guard writes

# Lower bounds of the maturity bands, by confidence score.
MATURITY_THRESHOLDS: dict[AgentStatus, float] = {
    AgentStatus.STUDENT: 0.0,
    AgentStatus.INTERN: 0.5,
    AgentStatus.SUPERVISED: 0.7,
    AgentStatus.AUTONOMOUS: 0.9,
}


def maturity_for_confidence(confidence: float) -> AgentStatus:
    """The maturity band a confidence score falls in."""
    band = AgentStatus.STUDENT
    for status, threshold in MATURITY_THRESHOLDS.items():
        if confidence >= threshold:
            band = status
    return band


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

# Database errors that mean a concurrent transaction got in the way, so that
# the same unit of work, started again, can succeed: SQLite's error names and
# PostgreSQL's SQLSTATEs, with what each one means.
LOST_RACES: Mapping[str, str] = {
    "SQLITE_BUSY": "another session held the SQLite database's write lock (SQLITE_BUSY)",
    "SQLITE_BUSY_SNAPSHOT": (
        "another session committed after this transaction's first read, so SQLite refused "
        "to let it write on what may be stale reads (SQLITE_BUSY_SNAPSHOT)"
    ),
    "40001": "PostgreSQL could not serialize this transaction with a concurrent one (40001)",
    "40P01": "PostgreSQL aborted this transaction to break a deadlock with another (40P01)",
    "55P03": "a concurrent transaction held a row lock past the lock timeout (55P03)",
    # MariaDB's error numbers (PyMySQL), read before its SQLSTATE: its
    # deadlock shares 40001 with PostgreSQL's serialization failure.
    "mariadb 1213": "MariaDB aborted this transaction to break a deadlock with another (1213)",
    "mariadb 1205": (
        "a concurrent transaction held a row lock past MariaDB's lock wait timeout (1205)"
    ),
}

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


class ConcurrentUpdate(GovernanceError):
    """A concurrent session got in the way; the unit of work may be retried.

    Unlike the other refusals, this one is found by the database, mid-write:
    the caller's transaction is spoilt and must be rolled back, and the whole
    unit of work (load, decide, write) run again in a new one, which reads
    what the other session committed. `run_unit_of_work` does both. `what`
    names the object and the move that failed, `reason` what happened.
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}; roll back and retry the unit of work")
        self.what = what
        self.reason = reason


class ProposalConflict(ConcurrentUpdate):
    """Another session decided (changed) the proposal after this one loaded it.

    A `ConcurrentUpdate`, so one retry loop serves every race: the retry
    reloads the proposal and decides again, which succeeds or meets the
    other session's decision as an `InvalidTransition`. Raised only when the
    proposal's version really moved on, never for a merely busy database.
    """

    def __init__(self, proposal_id: str, requested: ProposalStatus) -> None:
        super().__init__(
            f"proposal {proposal_id} was changed by another session before this one could "
            f"mark it {str(requested)!r}",
            "its version moved on since this session loaded it",
        )
        self.proposal_id = proposal_id
        self.requested = requested


def lost_race(error: BaseException) -> str | None:
    """What a database error says about a race this transaction lost, or None
    when it is another kind of error (a constraint, a lost connection)."""
    if not isinstance(error, DBAPIError):
        return None
    original = error.orig
    args: tuple[Any, ...] = getattr(original, "args", ())
    number = args[0] if args else None
    code = (
        getattr(original, "sqlite_errorname", None)
        or (f"mariadb {number}" if isinstance(number, int) else None)  # PyMySQL
        or getattr(original, "sqlstate", None)  # psycopg 3
        or getattr(original, "pgcode", None)  # psycopg2
    )
    return LOST_RACES.get(str(code))


_NAMES: Mapping[type[Base], str] = {
    AgentExecution: "execution",
    AgentProposal: "proposal",
    AgentRegistry: "agent",
    Episode: "episode",
}


@contextmanager
def _reported_as_concurrent_update(subject: Base | None, failed: str) -> Iterator[None]:
    """Turn a database error that lost a race into `ConcurrentUpdate`, saying
    that `subject` (None: the unit of work) `failed`; any other error passes
    through untouched."""
    try:
        yield
    except DBAPIError as error:
        reason = lost_race(error)
        if reason is None:
            raise
        raise ConcurrentUpdate(f"{_name(subject)} {failed}", reason) from error


def _name(subject: Base | None) -> str:
    if subject is None:
        return "the unit of work"
    # From the identity map, not the object's attributes: reading those could
    # query a session whose transaction just failed.
    state = inspect(subject)
    key = state.identity[0] if state.identity else state.dict.get("id")
    return f"{_NAMES[type(subject)]} {key}"


ModelT = TypeVar("ModelT", bound=Base)


def _locked(session: Session, model: type[ModelT], key: str) -> ModelT:
    """The row of `model` with primary key `key`, locked until this transaction
    ends, loaded into the session's object for it (refreshed if it was loaded).

    PostgreSQL: `FOR NO KEY UPDATE`, which makes other writers of the row wait
    but lets rows that merely reference it (new feedback, new logs) be
    inserted meanwhile. MariaDB has no such mode: SQLAlchemy writes plain
    `FOR UPDATE` there, which serialises the writers just the same, but also
    holds up the insert of a row that references the locked one (InnoDB's
    foreign key check takes a shared lock on the parent) until this
    transaction ends. SQLite has no row locks: a file database's IMMEDIATE
    transaction already holds the write lock (see `core.database`), and the
    reload still brings the object up to date.
    """
    # Pending changes go to the row first: the reload overwrites the object.
    session.flush()
    return session.get_one(model, key, with_for_update={"key_share": True}, populate_existing=True)


# --------------------------------------------------------------------------
# Retrying a unit of work
# --------------------------------------------------------------------------

ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class UnitOfWork(Generic[ResultT]):
    """What `run_unit_of_work` returns: the work's result, and how many times
    it had to be run again after losing a race."""

    result: ResultT
    retries: int


def run_unit_of_work(
    sessions: Callable[[], Session],
    work: Callable[[Session], ResultT],
    *,
    attempts: int = 5,
    backoff: float = 0.01,
) -> UnitOfWork[ResultT]:
    """Run `work(session)` in a fresh session from `sessions` (a sessionmaker)
    and commit; when it loses a race, roll back and run it again.

    `work` must be the whole unit of work: load what it needs by id, decide,
    write. A retry runs it from the start in a new session (objects from the
    failed attempt are gone), so it decides on what the winner committed.
    Retried: `ConcurrentUpdate` (so `ProposalConflict`) and the database
    errors it stands for, raised by the work or by the commit; anything else
    is rolled back and raised at once. After `attempts` runs in all, the
    last `ConcurrentUpdate` is raised. Between runs it sleeps a random time
    below `backoff` seconds, doubled at every retry, so that the losers of
    one race do not all collide again.

        sessions = sessionmaker(bind=engine)
        done = run_unit_of_work(sessions, lambda s: read_episode(s, s.get_one(Episode, key)))
        done.result, done.retries  # the segments, and how many runs lost a race
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    retries = 0
    while True:
        try:
            return UnitOfWork(_run_and_commit(sessions, work), retries)
        except ConcurrentUpdate as error:
            retries += 1
            if retries == attempts:
                error.add_note(f"run_unit_of_work gave up after {attempts} attempts")
                raise
        if backoff > 0:
            time.sleep(random.uniform(0, backoff * 2 ** (retries - 1)))


def _run_and_commit(sessions: Callable[[], Session], work: Callable[[Session], ResultT]) -> ResultT:
    # Leaving the session's `with` closes it, rolling back what was not committed.
    with sessions() as session, _reported_as_concurrent_update(None, "could not finish"):
        result = work(session)
        session.commit()
        return result


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
    # Only new rows are written: nothing read is computed back into its row,
    # so no lock is needed. A write can still meet a busy database.
    with _reported_as_concurrent_update(agent, f"could not take the trigger {trigger_type!r}"):
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
        block_reason = (
            f"{agent.status} agents may not act on triggers "
            f"(confidence {agent.confidence_score:.2f}); routed to {decision}"
        )
        blocked = BlockedTriggerContext(
            agent_name=agent.name,
            agent_maturity_at_block=agent.status,
            confidence_score_at_block=agent.confidence_score,
            trigger_source=source,
            trigger_type=trigger_type,
            trigger_context=dict(payload),
            routing_decision=decision,
            block_reason=block_reason,
        )
        blocked.proposal = proposal
        proposal.agent = agent
        blocked.agent = agent
        session.add_all((proposal, blocked))
        session.flush()
        _announce_proposal(
            session, proposal, ProposalStatus.PROPOSED, f"by the maturity guard ({block_reason})"
        )
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
    """Finish a running execution, as completed or failed.

    Of two sessions finishing the same run, the second waits for the first
    and is then refused (`InvalidTransition`, naming the first's outcome).
    """
    requested = ExecutionStatus.COMPLETED if succeeded else ExecutionStatus.FAILED
    with _reported_as_concurrent_update(execution, f"could not be marked {str(requested)!r}"):
        # A row lock, not an atomic UPDATE: whether the move is allowed depends
        # on the status, and the loser must learn the winner's outcome, which a
        # conditional UPDATE matching no row would not tell. Nor a version
        # check: a run has one outcome, so waiting and refusing is the answer,
        # and there is nothing a retry could do differently.
        _locked(session, AgentExecution, execution.id)
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
    with _decision(session, proposal, ProposalStatus.APPROVED, f"by {approver.email}"):
        proposal.status = ProposalStatus.APPROVED
        proposal.approver = approver
        proposal.approved_at = utc_now()
        if modifications:
            proposal.modifications = dict(modifications)
    return proposal


def reject_proposal(
    session: Session, proposal: AgentProposal, reviewer: User, reason: str
) -> AgentProposal:
    """A person says no; the blocked triggers are closed with the reason."""
    with _decision(session, proposal, ProposalStatus.REJECTED, f"by {reviewer.email}: {reason}"):
        _finish(proposal, ProposalStatus.REJECTED, f"rejected by {reviewer.email}: {reason}")
    return proposal


def cancel_proposal(session: Session, proposal: AgentProposal, reason: str) -> AgentProposal:
    """Withdraw a proposal that is not yet decided or not yet executed."""
    with _decision(session, proposal, ProposalStatus.CANCELLED, f"({reason})"):
        _finish(proposal, ProposalStatus.CANCELLED, f"cancelled: {reason}")
    return proposal


def execute_proposal(
    session: Session, proposal: AgentProposal, outcome: str
) -> AgentExecution | None:
    """Carry out an approved proposal and resolve its blocked triggers.

    An action proposal is a run of the agent and is recorded as a completed
    `AgentExecution` (returned, so people can rate it); a training proposal
    records only its outcome.
    """
    with _decision(session, proposal, ProposalStatus.EXECUTED, f"({outcome})"):
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
    return execution


@contextmanager
def _decision(
    session: Session, proposal: AgentProposal, requested: ProposalStatus, detail: str
) -> Iterator[None]:
    """Check the move, let the block make it, flush it under the version check,
    and announce it (`detail` says by whom or why) once it is committed.

    An optimistic version check, not a row lock: a decision is a person's
    judgement on the proposal as they saw it, maybe in an earlier request.
    If another session changed it since, the decision must be made again on
    what is there now, not applied on top of it, and only the version knows
    that the object is out of date. The UPDATE matches `version` as loaded:
    no row matched means someone else's change came first (`ProposalConflict`).
    """
    with _reported_as_concurrent_update(proposal, f"could not be marked {str(requested)!r}"):
        proposal_id = proposal.id
        _check_move(proposal, requested)
        yield
        try:
            session.flush()
        except StaleDataError as error:
            raise ProposalConflict(proposal_id, requested) from error
    _announce_proposal(session, proposal, requested, detail)


def _check_move(proposal: AgentProposal, requested: ProposalStatus) -> None:
    current = ProposalStatus(proposal.status)
    if requested not in PROPOSAL_MOVES[current]:
        raise InvalidTransition(
            f"proposal {proposal.id}", current, requested, PROPOSAL_MOVES[current]
        )


def _finish(proposal: AgentProposal, status: ProposalStatus, outcome: str) -> None:
    # Load the triggers before changing the proposal: the lazy load may
    # autoflush, and an UPDATE flushed early would bump the version twice and
    # dodge the version check in `_decision`.
    open_triggers = [trigger for trigger in proposal.blocked_triggers if not trigger.resolved]
    now = utc_now()
    proposal.status = status
    proposal.completed_at = now
    for trigger in open_triggers:
        trigger.resolved = True
        trigger.resolved_at = now
        trigger.resolution_outcome = outcome


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
    """Record a person's verdict on a finished run; move confidence and maybe graduate.

    Of two sessions rating runs of the same agent, the second waits for the
    first to commit and moves the confidence the first left behind.
    """
    if execution.status == ExecutionStatus.RUNNING:
        raise GovernanceError(f"execution {execution.id} is still running: rate it once finished")
    target = feedback_target(rating=rating, thumbs_up=thumbs_up)
    feedback = AgentFeedback(
        original_output=execution.output_summary or execution.error_message or "",
        user_correction=correction,
        feedback_type="rating" if rating is not None else "thumbs",
        rating=rating,
        thumbs_up_down=thumbs_up,
        status=FeedbackStatus.ACCEPTED,
        adjudicated_at=utc_now(),
    )
    with _reported_as_concurrent_update(execution, "could not be rated"):
        # A row lock, not an atomic UPDATE: the new confidence and maturity
        # come from the old ones through `next_confidence` and `graduate`,
        # which would have to be rewritten in SQL (and PostgreSQL would do the
        # arithmetic on 0.2 as NUMERIC, not as the float Python uses, so the
        # result would differ). Nor a version check: ratings do not conflict,
        # each must count, so the second waits for the first and builds on it.
        # Taken before the feedback row is written: on PostgreSQL, inserting
        # it share-locks the agent's key, and two raters holding that would
        # deadlock when each then asked to update the agent.
        agent = _locked(session, AgentRegistry, execution.agent_id)
        confidence_before, maturity_before = agent.confidence_score, AgentStatus(agent.status)
        feedback.agent, feedback.execution, feedback.user = agent, execution, user
        session.add(feedback)
        agent.confidence_score = next_confidence(confidence_before, target)
        maturity_after = graduate(agent)
        session.flush()
    if maturity_after != maturity_before:
        announce(
            session,
            Announcement(
                Announced.GRADUATED,
                agent.id,
                None,
                f"agent {agent.name!r} graduated {maturity_before} -> {maturity_after} "
                f"(confidence {agent.confidence_score:.2f})",
            ),
        )
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
    # Only new rows are written: nothing read is computed back into its row.
    with _reported_as_concurrent_update(agent, f"could not record the episode {title!r}"):
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
        _load_feedback(session, runs)
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


def _load_feedback(session: Session, runs: Sequence[AgentExecution]) -> None:
    """Load the feedback of every run whose feedback is not loaded yet, in one
    SELECT (selectinload), instead of one lazy load per run (an N+1)."""
    unloaded = [run.id for run in runs if "feedback" in inspect(run).unloaded]
    if unloaded:
        session.scalars(
            select(AgentExecution)
            .where(AgentExecution.id.in_(unloaded))
            .options(selectinload(AgentExecution.feedback))
        ).all()


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
    """An episode's segments, in order; every read leaves an access log and
    counts in `access_count` (read back from the database when next used)."""
    with _reported_as_concurrent_update(episode, "could not be read"):
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
        # An atomic UPDATE (`SET access_count = access_count + 1`), not a
        # lock: one more read does not depend on the count this session saw,
        # so the database adds one to whatever the row holds when the UPDATE
        # runs, and no reader waits for another's decision.
        episode.access_count = Episode.access_count + 1
        session.flush()
    return segments


# --------------------------------------------------------------------------
# Announcements: decisions told to subscribers once committed
# --------------------------------------------------------------------------


class Announced(StrEnum):
    """What an announcement tells."""

    PROPOSED = "proposal.proposed"
    APPROVED = "proposal.approved"
    REJECTED = "proposal.rejected"
    CANCELLED = "proposal.cancelled"
    EXECUTED = "proposal.executed"
    GRADUATED = "agent.graduated"


@dataclass(frozen=True)
class Announcement:
    """A committed governance decision, in plain values: the session that made
    it may be closed by the time a subscriber reads it."""

    kind: Announced
    agent_id: str
    proposal_id: str | None
    summary: str


Subscriber = Callable[[Announcement], object]

_subscribers: list[Subscriber] = []
_subscribers_lock = threading.Lock()  # decisions commit in many threads at once


@contextmanager
def subscribed(subscriber: Subscriber) -> Iterator[Subscriber]:
    """`subscriber(announcement)` is called for every decision committed while
    the block runs, in any thread, after the commit and in the committing
    thread. A subscriber that raises does not stop the others; its error is
    raised from the `commit()` that announced (the decision stays committed).
    """
    with _subscribers_lock:
        _subscribers.append(subscriber)
    try:
        yield subscriber
    finally:
        with _subscribers_lock:
            _subscribers.remove(subscriber)


def announce(session: Session, announcement: Announcement) -> None:
    """Tell the subscribers about `announcement` once `session` has committed it."""
    on_commit(session, partial(_deliver, announcement))


def _deliver(announcement: Announcement) -> None:
    with _subscribers_lock:
        subscribers = list(_subscribers)
    run_all(partial(subscriber, announcement) for subscriber in subscribers)


def _announce_proposal(
    session: Session, proposal: AgentProposal, status: ProposalStatus, detail: str
) -> None:
    announce(
        session,
        Announcement(
            Announced(f"proposal.{status}"),
            proposal.agent_id,
            proposal.id,
            f"{proposal.proposal_type} proposal {proposal.title!r} {status} {detail}",
        ),
    )
