"""The harness's helpers from async tests: factories and count_queries."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.models import (
    AgentRegistry,
    AgentStatus,
    Team,
    User,
    Workspace,
)
from tests import harness
from tests.factories import (
    AgentFactory,
    TeamFactory,
    UserFactory,
    async_create,
    async_create_batch,
)

# --------------------------------------------------------------------------
# Factories: `await async_create(XFactory, ...)`
# --------------------------------------------------------------------------


async def test_async_create_flushes_into_async_db_and_returns_the_object(
    async_db: AsyncSession,
) -> None:
    agent = await async_create(AgentFactory, name="Invoice reconciler", status="intern")

    assert isinstance(agent, AgentRegistry)
    assert agent in async_db
    stored = await async_db.scalar(select(AgentRegistry.name).where(AgentRegistry.id == agent.id))
    assert stored == "Invoice reconciler"
    assert agent.status == AgentStatus.INTERN


async def test_parents_and_traits_work_as_in_sync_tests(async_db: AsyncSession) -> None:
    team = await async_create(TeamFactory)
    owned = await async_create(AgentFactory, with_owner=True)

    # The parent was created in the same session, flushed with its child.
    workspace = await async_db.get_one(Workspace, team.workspace_id)
    assert await workspace.awaitable_attrs.teams == [team]
    assert owned.user_id is not None
    assert await async_db.get(User, owned.user_id) is not None


async def test_a_parent_given_by_key_is_used_not_duplicated(async_db: AsyncSession) -> None:
    first = await async_create(TeamFactory)
    await async_create(TeamFactory, workspace_id=first.workspace_id)

    assert await async_db.scalar(select(func.count()).select_from(Workspace)) == 1
    assert await async_db.scalar(select(func.count()).select_from(Team)) == 2


async def test_async_create_batch_makes_distinct_rows(async_db: AsyncSession) -> None:
    made = await async_create_batch(UserFactory, 3, first_name="Ada")

    assert len({user.email for user in made}) == 3
    names = await async_db.scalars(select(User.first_name))
    assert list(names) == ["Ada"] * 3


async def test_an_explicit_session_wins(async_engine: AsyncEngine) -> None:
    async with (
        async_engine.connect() as connection,
        harness.async_isolated_session(connection) as session,
    ):
        user = await async_create(UserFactory, _session=session, email="own@example.com")
        assert user in session
        assert await session.scalar(select(User.email)) == "own@example.com"


async def test_a_sync_factory_call_in_an_async_test_says_what_to_do(
    async_db: AsyncSession,
) -> None:
    with pytest.raises(RuntimeError) as refused:
        UserFactory()
    message = str(refused.value)
    assert "This test's session is an AsyncSession (`async_db`)" in message
    assert "await async_create(XFactory, **fields)" in message
    assert await async_db.scalar(select(func.count()).select_from(User)) == 0


async def test_async_create_without_async_db_names_the_fixture() -> None:
    with pytest.raises(RuntimeError, match=r"request the `async_db` fixture"):
        await async_create(UserFactory)


# --------------------------------------------------------------------------
# count_queries on an AsyncSession
# --------------------------------------------------------------------------


async def test_count_queries_fixture_counts_on_async_db(
    async_db: AsyncSession, count_queries: harness.QueryCounter
) -> None:
    with count_queries(2) as log:
        (await async_db.execute(select(User))).all()
        (await async_db.execute(select(Team))).all()
    assert log.statements[0].startswith("SELECT users.id")


async def test_count_queries_on_an_async_session_fails_listing_the_statements(
    async_db: AsyncSession,
) -> None:
    async def insert_then_select() -> None:
        with harness.count_queries(async_db, 1):
            await async_create(UserFactory, email="counted@example.com")
            await async_db.execute(select(User.email))

    with pytest.raises(AssertionError) as failure:
        await insert_then_select()
    message = str(failure.value)
    assert message.startswith("expected 1 query, ran 2:\n")
    assert "  1. INSERT INTO users" in message
    assert "  2. SELECT users.email FROM users" in message


async def test_count_queries_ignores_the_async_sessions_savepoints(
    async_db: AsyncSession,
) -> None:
    with harness.count_queries(async_db, 1) as log:
        async with async_db.begin_nested():
            async_db.add(User(email="nested@example.com"))
        await async_db.commit()
    assert [sql.split()[0] for sql in log.statements] == ["INSERT"]


async def test_count_queries_accepts_an_async_engine_and_connection(
    async_engine: AsyncEngine,
) -> None:
    async with async_engine.connect() as connection:
        with harness.count_queries(async_engine, 1):
            await connection.execute(text("SELECT 1"))
        with harness.count_queries(connection, 2):
            await connection.execute(text("SELECT 1"))
            await connection.execute(text("SELECT 2"))
        await connection.rollback()


async def test_count_queries_refuses_a_session_it_cannot_hear_without_await(
    async_engine: AsyncEngine,
) -> None:
    async with AsyncSession(async_engine) as session:
        with (
            pytest.raises(TypeError, match=r"pass `await session.connection\(\)`"),
            harness.count_queries(session),
        ):
            pass
        with harness.count_queries(await session.connection(), 1):
            await session.execute(text("SELECT 1"))
