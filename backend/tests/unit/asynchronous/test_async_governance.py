"""The governance rules from async code: one implementation, run through
`await session.run_sync(rule, ...)`.

`core.governance` is written once, for a sync `Session`; `run_sync` hands it
the AsyncSession's own sync session inside the greenlet where its queries
and flushes can await the driver. Nothing here re-implements a rule: each
test checks that the rule's outcome and its refusals arrive intact.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core import governance
from core.database import ImplicitLoadError
from core.governance import AgentNotRunnable, InvalidTransition, RoutedTrigger
from core.models import (
    AgentExecution,
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    BlockedTriggerContext,
    EpisodeAccessLog,
    ProposalStatus,
    RoutingDecision,
)
from tests.factories import AgentExecutionFactory, AgentFactory, UserFactory, async_create

PAYLOAD = {"ticket": 42}


async def count(session: AsyncSession, model: type[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def route(session: AsyncSession, agent: AgentRegistry, trigger: str) -> RoutedTrigger:
    return await session.run_sync(governance.route_trigger, agent, "manual", trigger, PAYLOAD)


@pytest.mark.parametrize(
    ("maturity", "decision", "executions", "proposals"),
    [
        ("student", RoutingDecision.TRAINING, 0, 1),
        ("intern", RoutingDecision.PROPOSAL, 0, 1),
        ("supervised", RoutingDecision.SUPERVISION, 1, 0),
        ("autonomous", RoutingDecision.EXECUTION, 1, 0),
    ],
)
async def test_the_maturity_guard_routes_each_level_through_run_sync(
    async_db: AsyncSession,
    maturity: str,
    decision: RoutingDecision,
    executions: int,
    proposals: int,
) -> None:
    trait: dict[str, Any] = {maturity: True}
    agent = await async_create(AgentFactory, **trait)

    routed = await route(async_db, agent, "ticket.created")

    assert routed.decision == decision
    assert await count(async_db, AgentExecution) == executions
    assert await count(async_db, AgentProposal) == proposals
    assert await count(async_db, BlockedTriggerContext) == proposals
    if routed.execution is not None:
        assert routed.execution.triggered_by == f"{decision}:manual"


@pytest.mark.parametrize("status", [AgentStatus.PAUSED, AgentStatus.DEPRECATED])
async def test_a_refusal_arrives_through_await_and_nothing_is_written(
    async_db: AsyncSession, status: AgentStatus
) -> None:
    agent = await async_create(AgentFactory, status=status)

    with pytest.raises(AgentNotRunnable, match=f"is {status}: cannot take"):
        await route(async_db, agent, "status.changed")

    assert await count(async_db, AgentExecution) == 0
    assert await count(async_db, BlockedTriggerContext) == 0


async def test_an_intern_proposal_from_trigger_to_graduation(async_db: AsyncSession) -> None:
    agent = await async_create(AgentFactory, intern=True, with_workspace=True)
    agent.confidence_score = 0.65
    reviewer = await async_create(UserFactory)
    routed = await route(async_db, agent, "ticket.reply_needed")
    assert routed.proposal is not None
    await async_db.commit()

    approved = await async_db.run_sync(governance.approve_proposal, routed.proposal, reviewer)
    run = await async_db.run_sync(governance.execute_proposal, approved, "replied")
    await async_db.commit()
    assert run is not None
    outcome = await async_db.run_sync(governance.record_feedback, run, reviewer, rating=5)
    await async_db.commit()

    assert (approved.status, approved.approved_by, approved.version) == (
        ProposalStatus.EXECUTED,
        reviewer.id,
        3,
    )
    assert outcome.graduated
    stored = await async_db.scalar(select(AgentRegistry.status).where(AgentRegistry.id == agent.id))
    assert stored == "supervised"
    resolved = await async_db.scalar(select(BlockedTriggerContext.resolved))
    assert resolved is True


async def test_a_move_off_the_edges_is_refused_through_run_sync(async_db: AsyncSession) -> None:
    agent = await async_create(AgentFactory, intern=True)
    routed = await route(async_db, agent, "ticket.reply_needed")
    assert routed.proposal is not None
    await async_db.commit()

    with pytest.raises(InvalidTransition, match=r"proposed.*executed"):
        await async_db.run_sync(governance.execute_proposal, routed.proposal, "too early")
    await async_db.rollback()

    assert await async_db.scalar(select(AgentProposal.status)) == "proposed"
    assert await count(async_db, AgentExecution) == 0


async def test_a_whole_unit_of_work_can_run_in_one_run_sync(async_db: AsyncSession) -> None:
    agent = await async_create(AgentFactory, autonomous=True, with_workspace=True)
    runs = [await async_create(AgentExecutionFactory, agent=agent, completed=True) for _ in "ab"]

    def remember_and_read(session: Session) -> list[int]:
        episode = governance.record_episode(session, agent, runs, title="Two runs")
        segments = governance.read_episode(session, episode, agent=agent, query="refunds")
        return [segment.sequence_order for segment in segments]

    assert await async_db.run_sync(remember_and_read) == [0, 1]
    assert await count(async_db, EpisodeAccessLog) == 1


async def test_a_counter_updated_in_sql_is_read_back_with_an_await(
    async_db: AsyncSession,
) -> None:
    # read_episode counts with `access_count = access_count + 1`, so the
    # loaded value is expired: async code awaits it, and a plain read says so.
    agent = await async_create(AgentFactory, autonomous=True, with_workspace=True)
    run = await async_create(AgentExecutionFactory, agent=agent, completed=True)
    episode = await async_db.run_sync(governance.record_episode, agent, [run], title="One run")

    await async_db.run_sync(governance.read_episode, episode)

    with pytest.raises(ImplicitLoadError, match=r"access_count"):
        _ = episode.access_count
    assert await episode.awaitable_attrs.access_count == 1
