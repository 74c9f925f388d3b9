"""Two AsyncSessions deciding the same proposal at once: exactly one wins.

The async twin of `test_proposal_concurrency.py`: two coroutines on one
event loop, each with an engine (a pool, a connection) of its own, on a
database that really commits (`async_race_url`, on the run's backend: a
SQLite file through aiosqlite, a scratch PostgreSQL database through psycopg
and through asyncpg, a scratch MariaDB database through aiomysql). The rule
runs once, as written for a sync Session, through `run_sync`; its optimistic
version check must hold when the two UPDATEs meet on the server (PostgreSQL,
MariaDB: the second waits for the first's row lock, then matches no row) or
at the write lock (SQLite: the second BEGIN IMMEDIATE waits in aiosqlite's
thread while the loop runs the first).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from core import governance
from core.database import (
    make_async_engine,
    make_async_session_factory,
)
from core.governance import ProposalConflict
from core.models import (
    AgentProposal,
    ProposalStatus,
    User,
)
from tests.factories import AgentFactory, AgentProposalFactory, UserFactory, async_create
from tests.integration.races import check_one_decision_won

Decision = Callable[[Session, AgentProposal, User], object]
SECONDS = 60  # a hung race fails instead of hanging the run


@pytest.fixture(scope="module")
async def engines(async_race_url: URL) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    first, second = make_async_engine(async_race_url), make_async_engine(async_race_url)
    yield first, second
    await second.dispose()
    await first.dispose()


async def seed(engine: AsyncEngine) -> tuple[str, str, str]:
    """A proposal awaiting a decision and two people who may decide it."""
    async with make_async_session_factory(engine)() as session:
        agent = await async_create(AgentFactory, _session=session)
        proposal = await async_create(AgentProposalFactory, _session=session, agent=agent)
        alice = await async_create(UserFactory, _session=session)
        bob = await async_create(UserFactory, _session=session)
        await session.commit()
        return proposal.id, alice.id, bob.id


def approve(session: Session, proposal: AgentProposal, user: User) -> object:
    return governance.approve_proposal(session, proposal, user)


def reject(session: Session, proposal: AgentProposal, user: User) -> object:
    return governance.reject_proposal(session, proposal, user, "not now")


async def decide(
    engine: AsyncEngine,
    proposal_id: str,
    user_id: str,
    decision: Decision,
    both_loaded: asyncio.Barrier,
) -> str | ProposalConflict:
    """Load the proposal in a transaction that ends, wait until the other
    decider has loaded it too, then decide and commit."""
    async with make_async_session_factory(engine)() as session:
        proposal = await session.get_one(AgentProposal, proposal_id)
        user = await session.get_one(User, user_id)
        await session.commit()  # the objects keep what they read (expire_on_commit=False)
        await both_loaded.wait()
        try:
            await session.run_sync(decision, proposal, user)
            await session.commit()
        except ProposalConflict as conflict:
            await session.rollback()
            return conflict
        return user_id


async def reload(engine: AsyncEngine, proposal_id: str) -> AgentProposal:
    async with make_async_session_factory(engine)() as session:
        return await session.get_one(AgentProposal, proposal_id)


@pytest.mark.parametrize("second", [approve, reject], ids=["approve", "reject"])
async def test_of_two_concurrent_async_decisions_exactly_one_wins(
    engines: tuple[AsyncEngine, AsyncEngine], second: Decision
) -> None:
    proposal_id, alice, bob = await seed(engines[0])
    both_loaded = asyncio.Barrier(2)

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            decide(engines[0], proposal_id, alice, approve, both_loaded),
            decide(engines[1], proposal_id, bob, second, both_loaded),
        ),
        SECONDS,
    )

    final = await reload(engines[1], proposal_id)
    check_one_decision_won(outcomes, final, first=alice, second_approves=second is approve)


async def test_an_async_decision_on_a_proposal_loaded_before_anothers_commit_is_refused(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    proposal_id, alice, bob = await seed(engines[0])
    first_sessions, second_sessions = (make_async_session_factory(e) for e in engines)
    async with first_sessions() as first, second_sessions() as second:
        theirs = await second.get_one(AgentProposal, proposal_id)
        reviewer = await second.get_one(User, bob)
        await second.commit()  # ends the read transaction, which would hold up `first` on SQLite
        mine = await first.get_one(AgentProposal, proposal_id)

        await first.run_sync(approve, mine, await first.get_one(User, alice))
        await first.commit()
        with pytest.raises(ProposalConflict) as conflict:
            await second.run_sync(governance.reject_proposal, theirs, reviewer, "too late")
        await second.rollback()

    assert conflict.value.requested == ProposalStatus.REJECTED
    final = await reload(engines[1], proposal_id)
    assert (final.status, final.approved_by, final.version) == ("approved", alice, 2)
