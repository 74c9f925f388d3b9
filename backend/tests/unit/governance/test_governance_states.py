"""Random sequences of governance moves, checked against the invariants.

Each hypothesis example is one machine with its own connection and rolled
back transaction, so examples never see each other's rows. How many machines
run follows the hypothesis profile (`tests.profiles.machine_examples`): a few
in `make test`, many more with `HYPOTHESIS_PROFILE=ci`.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session

from core import governance
from core.governance import (
    MATURITY_THRESHOLDS,
    AgentNotRunnable,
    GovernanceError,
    InvalidTransition,
    maturity_for_confidence,
)
from core.models import (
    AccessType,
    AgentExecution,
    AgentFeedback,
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    BlockedTriggerContext,
    Episode,
    EpisodeSegment,
    ExecutionStatus,
    TriggerSource,
)
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    UserFactory,
    WorkspaceFactory,
    bind_session,
)
from tests.harness import isolated_session, tables_with_rows
from tests.profiles import machine_examples

# Written out here rather than read from the module under test.
ALLOWED_EDGES = {
    ("proposed", "approved"),
    ("proposed", "rejected"),
    ("proposed", "cancelled"),
    ("approved", "executed"),
    ("approved", "cancelled"),
}
TERMINAL = {"rejected", "executed", "cancelled"}
MOVES = TERMINAL | {"approved"}
LADDER = ["student", "intern", "supervised", "autonomous"]
STOPPED = {"paused", "deprecated"}

# Picks count back from the newest object, so that several moves in a row
# tend to land on the same proposal or run.
PICK = st.integers(min_value=0, max_value=6)
CHOICE = st.integers(min_value=0, max_value=3)
T = TypeVar("T")


def _recent(items: list[T], pick: int) -> T:
    return items[-1 - pick % len(items)]


class GovernanceMachine(RuleBasedStateMachine):
    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._stack = ExitStack()
        connection = self._stack.enter_context(engine.connect())
        self.db: Session = self._stack.enter_context(isolated_session(connection))
        self._stack.enter_context(bind_session(self.db))
        self.workspace = WorkspaceFactory()
        self.reviewer = UserFactory()
        self.agents: list[AgentRegistry] = []
        self.proposals: list[AgentProposal] = []
        self.executions: list[AgentExecution] = []
        # What the invariants compare the database against, step after step.
        self.seen_status: dict[str, str] = {}
        self.resolved_at: dict[str, datetime] = {}
        self.peak_confidence: dict[str, float] = {}

    def teardown(self) -> None:
        self._stack.close()

    # -- rules --------------------------------------------------------------

    @initialize()
    def first_agent(self) -> None:
        self._add_agent(AgentStatus.INTERN, 0.6)

    @rule(
        confidence=st.floats(min_value=0.0, max_value=1.0),
        stopped=st.sampled_from([None, None, None, AgentStatus.PAUSED, AgentStatus.DEPRECATED]),
    )
    def add_agent(self, confidence: float, stopped: AgentStatus | None) -> None:
        self._add_agent(stopped or maturity_for_confidence(confidence), confidence)

    def _add_agent(self, status: AgentStatus, confidence: float) -> None:
        agent = AgentFactory(status=status, confidence_score=confidence, workspace=self.workspace)
        self.agents.append(agent)
        self.peak_confidence[agent.id] = confidence

    @rule(pick=PICK, source=st.sampled_from(TriggerSource))
    def trigger(self, pick: int, source: TriggerSource) -> None:
        agent = _recent(self.agents, pick)
        if agent.status in STOPPED:
            before = tables_with_rows(self.db.connection())
            try:
                governance.route_trigger(self.db, agent, source, "event", {"n": pick})
            except AgentNotRunnable:
                assert tables_with_rows(self.db.connection()) == before
                return
            raise AssertionError(f"a {agent.status} agent took a trigger")
        routed = governance.route_trigger(self.db, agent, source, "event", {"n": pick})
        if routed.proposal is not None:
            self.proposals.append(routed.proposal)
        if routed.execution is not None:
            self.executions.append(routed.execution)

    @rule(pick=PICK, succeeded=st.booleans())
    def practise(self, pick: int, succeeded: bool) -> None:
        # A finished run outside the guard (a training exercise, say), so that
        # students and stopped agents get rated too.
        agent = _recent(self.agents, pick)
        run = AgentExecutionFactory(agent=agent, completed=succeeded, failed=not succeeded)
        self.executions.append(run)

    @precondition(lambda self: self.proposals)
    @rule(pick=PICK, choice=CHOICE)
    def decide(self, pick: int, choice: int) -> None:
        proposal = _recent(self.proposals, pick)
        current = str(proposal.status)
        legal = sorted(to for start, to in ALLOWED_EDGES if start == current)
        if not legal:
            return
        move = legal[choice % len(legal)]
        if move == "executed" and proposal.agent.status in STOPPED:
            with pytest.raises(AgentNotRunnable):
                self._move(proposal, move)
            assert proposal.status == current
            return
        made = self._move(proposal, move)
        assert proposal.status == move
        if isinstance(made, AgentExecution):
            self.executions.append(made)
        # A decision is a unit of work: commit it (only the savepoint, here).
        # Every object is expired, so later steps read versions back.
        self.db.commit()

    @precondition(lambda self: self.proposals)
    @rule(pick=PICK, choice=CHOICE)
    def attempt_a_refused_move(self, pick: int, choice: int) -> None:
        proposal = _recent(self.proposals, pick)
        current = str(proposal.status)
        refused = sorted(MOVES - {to for start, to in ALLOWED_EDGES if start == current})
        move = refused[choice % len(refused)]
        with pytest.raises(InvalidTransition) as error:
            self._move(proposal, move)
        assert (error.value.current, error.value.requested) == (current, move)
        assert proposal.status == current
        assert not self.db.dirty
        assert not self.db.new

    def _move(self, proposal: AgentProposal, move: str) -> Any:
        if move == "approved":
            return governance.approve_proposal(self.db, proposal, self.reviewer)
        if move == "rejected":
            return governance.reject_proposal(self.db, proposal, self.reviewer, "no")
        if move == "cancelled":
            return governance.cancel_proposal(self.db, proposal, "moot")
        return governance.execute_proposal(self.db, proposal, "done")

    @precondition(lambda self: self.executions)
    @rule(pick=PICK, succeeded=st.booleans())
    def finish(self, pick: int, succeeded: bool) -> None:
        execution = _recent(self.executions, pick)
        running = execution.status == ExecutionStatus.RUNNING
        try:
            governance.complete_execution(self.db, execution, "out", succeeded=succeeded)
        except InvalidTransition:
            assert not running
            return
        assert running

    @precondition(lambda self: self.executions)
    @rule(pick=PICK, rating=st.integers(min_value=1, max_value=5))
    def rate(self, pick: int, rating: int) -> None:
        execution = _recent(self.executions, pick)
        agent = execution.agent
        before = agent.confidence_score
        try:
            outcome = governance.record_feedback(self.db, execution, self.reviewer, rating=rating)
        except GovernanceError:
            assert execution.status == ExecutionStatus.RUNNING
            assert agent.confidence_score == before
            return
        assert outcome.confidence_after == governance.next_confidence(before, (rating - 1) / 4)
        self.peak_confidence[agent.id] = max(self.peak_confidence[agent.id], agent.confidence_score)

    @precondition(lambda self: self.executions)
    @rule(pick=PICK, access_type=st.sampled_from(AccessType))
    def remember(self, pick: int, access_type: AccessType) -> None:
        agent = _recent(self.executions, pick).agent
        runs = [run for run in self.executions if run.agent_id == agent.id]
        episode = governance.record_episode(self.db, agent, runs, title="episode")
        segments = governance.read_episode(
            self.db, episode, user=self.reviewer, access_type=access_type
        )
        assert [segment.sequence_order for segment in segments] == list(range(len(runs)))
        assert episode.access_count == 1

    # -- invariants ---------------------------------------------------------

    @invariant()
    def confidence_and_maturity_agree_with_the_bands(self) -> None:
        rows = self.db.execute(
            select(AgentRegistry.id, AgentRegistry.status, AgentRegistry.confidence_score)
        )
        for agent_id, status, confidence in rows:
            assert 0.0 <= confidence <= 1.0
            if status in STOPPED:
                continue
            # Never behind its band (graduation keeps up, one band a step)...
            assert LADDER.index(status) >= LADDER.index(maturity_for_confidence(confidence))
            # ...and never a level its confidence has not reached.
            assert MATURITY_THRESHOLDS[status] <= self.peak_confidence[agent_id]

    @invariant()
    def proposals_move_along_allowed_edges_only(self) -> None:
        for proposal_id, status in self.db.execute(select(AgentProposal.id, AgentProposal.status)):
            previous = self.seen_status.get(proposal_id, "proposed")
            assert previous == status or (previous, status) in ALLOWED_EDGES
            self.seen_status[proposal_id] = status

    @invariant()
    def a_blocked_trigger_is_resolved_once_when_its_proposal_ends(self) -> None:
        rows = self.db.execute(
            select(
                BlockedTriggerContext.id,
                BlockedTriggerContext.resolved,
                BlockedTriggerContext.resolved_at,
                AgentProposal.status,
            ).join(AgentProposal, BlockedTriggerContext.proposal_id == AgentProposal.id)
        )
        for trigger_id, resolved, resolved_at, proposal_status in rows:
            assert resolved == (resolved_at is not None) == (proposal_status in TERMINAL)
            if resolved_at is not None:
                assert self.resolved_at.setdefault(trigger_id, resolved_at) == resolved_at

    @invariant()
    def no_orphan_rows(self) -> None:
        orphans = (
            select(func.count()).where(BlockedTriggerContext.proposal_id.is_(None)),
            select(func.count(AgentProposal.id)).where(
                ~exists().where(BlockedTriggerContext.proposal_id == AgentProposal.id)
            ),
            select(func.count()).where(AgentFeedback.agent_execution_id.is_(None)),
            select(func.count(Episode.id)).where(
                ~exists().where(EpisodeSegment.episode_id == Episode.id)
            ),
        )
        # One round trip: every count as a column of a single row.
        counts = self.db.execute(select(*(query.scalar_subquery() for query in orphans))).one()
        assert tuple(counts) == (0, 0, 0, 0), counts


def test_random_governance_sequences_keep_the_invariants(engine: Engine) -> None:
    class Machine(GovernanceMachine):
        def __init__(self) -> None:
            super().__init__(engine)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=machine_examples(),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
