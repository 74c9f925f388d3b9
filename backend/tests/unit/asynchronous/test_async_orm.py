"""The ORM's promises, kept in async code: relationships, cascades, SET NULL,
JSON changed in place, timestamps.

Each test reads the database back with a fresh statement, never trusting the
identity map, and shows the async way to reach what a sync test reads by
attribute: `selectinload` in the query or `await obj.awaitable_attrs.x`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.models import (
    AgentExecution,
    AgentRegistry,
    Episode,
    EpisodeAccessLog,
    EpisodeSegment,
    Team,
    TeamMessage,
    User,
    WorkflowExecution,
    Workspace,
)
from core.schema import Base
from tests import factories, harness
from tests.factories import async_create


async def count_rows(session: AsyncSession, model: type[Base], *where: ColumnElement[bool]) -> int:
    """A fresh SELECT count(*): the database's answer, not the identity map's."""
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def stored(session: AsyncSession, column: Any, key_column: Any, key: str) -> Any:
    """The value a row holds in the database, read with a fresh SELECT."""
    return await session.scalar(select(column).where(key_column == key))


def is_utc(value: Any) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


# --------------------------------------------------------------------------
# Relationships
# --------------------------------------------------------------------------


async def test_owner_and_agents_are_two_sides_of_one_key(async_db: AsyncSession) -> None:
    owner = await async_create(factories.UserFactory)
    agent = await async_create(factories.AgentFactory, owner=owner)
    await async_db.commit()
    async_db.expunge_all()

    loaded = await async_db.scalar(
        select(User).where(User.id == owner.id).options(selectinload(User.agents))
    )
    assert loaded is not None
    assert [each.id for each in loaded.agents] == [agent.id]
    assert (await loaded.agents[0].awaitable_attrs.owner) is loaded


async def test_an_ordered_collection_is_ordered_by_the_database(async_db: AsyncSession) -> None:
    run = await async_create(factories.WorkflowExecutionFactory)
    for order in (3, 1, 2):
        await async_create(
            factories.WorkflowStepExecutionFactory, execution=run, sequence_order=order
        )
    await async_db.commit()
    async_db.expunge_all()

    with harness.count_queries(async_db) as log:
        loaded = await async_db.scalar(
            select(WorkflowExecution).options(selectinload(WorkflowExecution.step_executions))
        )
    assert loaded is not None
    assert [step.sequence_order for step in loaded.step_executions] == [1, 2, 3]
    assert any("ORDER BY workflow_step_executions.sequence_order" in sql for sql in log.statements)


@pytest.mark.strict_loading(False, reason="awaits each side's collection, one by one")
async def test_many_to_many_through_awaitable_attrs(async_db: AsyncSession) -> None:
    ada, bob = await async_create(factories.UserFactory), await async_create(factories.UserFactory)
    acme = await async_create(factories.WorkspaceFactory)
    (await ada.awaitable_attrs.workspaces).append(acme)
    (await bob.awaitable_attrs.workspaces).append(acme)
    await async_db.commit()
    async_db.expire_all()

    members = await acme.awaitable_attrs.users
    assert {user.id for user in members} == {ada.id, bob.id}


# --------------------------------------------------------------------------
# Cascades and ON DELETE
# --------------------------------------------------------------------------


async def test_deleting_a_workspace_deletes_its_teams_and_their_messages(
    async_db: AsyncSession,
) -> None:
    workspace = await async_create(factories.WorkspaceFactory)
    team = await async_create(factories.TeamFactory, workspace=workspace)
    await async_create(factories.TeamMessageFactory, team=team)
    kept = (await async_create(factories.TeamFactory)).id
    await async_db.commit()
    async_db.expire_all()  # the teams are not loaded: the database cascades

    await async_db.delete(workspace)
    await async_db.commit()

    assert await count_rows(async_db, Team) == 1
    assert await stored(async_db, Team.id, Team.id, kept) == kept
    assert await count_rows(async_db, TeamMessage) == 0


async def test_deleting_an_episode_deletes_its_segments_and_access_logs(
    async_db: AsyncSession,
) -> None:
    episode = await async_create(factories.EpisodeFactory, completed=True)
    await async_create(factories.EpisodeAccessLogFactory, episode=episode)
    other = await async_create(factories.EpisodeSegmentFactory)
    await async_db.commit()

    await async_db.delete(episode)
    await async_db.commit()

    assert await count_rows(async_db, EpisodeSegment, EpisodeSegment.episode_id == episode.id) == 0
    assert await count_rows(async_db, EpisodeAccessLog) == 0
    assert await count_rows(async_db, EpisodeSegment) == 1
    assert await stored(async_db, EpisodeSegment.id, EpisodeSegment.id, other.id) == other.id


async def test_an_agent_with_executions_cannot_be_deleted(async_db: AsyncSession) -> None:
    execution = await async_create(factories.AgentExecutionFactory)
    agent = execution.agent
    keys = execution.id, agent.id  # the rollback below expires both objects
    await async_db.commit()

    await async_db.delete(agent)
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        await async_db.flush()
    await async_db.rollback()

    assert await count_rows(async_db, AgentRegistry) == 1
    assert await stored(async_db, AgentExecution.agent_id, AgentExecution.id, keys[0]) == keys[1]


async def test_deleting_a_user_nulls_the_loaded_references_to_it(async_db: AsyncSession) -> None:
    owner = await async_create(factories.UserFactory)
    agent = await async_create(factories.AgentFactory, owner=owner)
    unrelated = await async_create(factories.AgentFactory, with_owner=True)

    await async_db.delete(owner)
    await async_db.flush()

    # Set by the SET NULL hook, not expired: reading it needs no query, which
    # in async code would be an implicit load.
    with harness.count_queries(async_db, 0):
        assert agent.user_id is None
        assert unrelated.user_id is not None
    assert await stored(async_db, AgentRegistry.user_id, AgentRegistry.id, agent.id) is None


# --------------------------------------------------------------------------
# JSON changed in place
# --------------------------------------------------------------------------


async def test_json_mutated_in_place_is_persisted(async_db: AsyncSession) -> None:
    agent = await async_create(factories.AgentFactory)
    episode = await async_create(factories.EpisodeFactory)
    await async_db.commit()

    assert agent.configuration is not None
    assert episode.topics is not None
    agent.configuration["model"] = "small"
    episode.topics.append("billing")
    await async_db.commit()
    await async_db.refresh(agent)
    await async_db.refresh(episode)

    assert agent.configuration == {"model": "small"}
    assert episode.topics == ["billing"]
    assert await stored(async_db, AgentRegistry.configuration, AgentRegistry.id, agent.id) == {
        "model": "small"
    }


# --------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------


async def test_created_at_is_readable_right_after_flush_and_utc(async_db: AsyncSession) -> None:
    workspace = Workspace(name="Acme")
    async_db.add(workspace)
    await async_db.flush()

    with harness.count_queries(async_db, 0):
        created_at = workspace.created_at
    assert is_utc(created_at)
    assert await stored(async_db, Workspace.created_at, Workspace.id, workspace.id) == created_at


async def test_updated_at_is_null_on_insert_and_set_on_update(async_db: AsyncSession) -> None:
    team = await async_create(factories.TeamFactory)
    await async_db.commit()
    assert team.updated_at is None

    team.description = "renamed"
    await async_db.flush()

    assert is_utc(team.updated_at)
    assert await stored(async_db, Team.updated_at, Team.id, team.id) == team.updated_at


async def test_the_database_sets_created_at_for_raw_inserts(async_db: AsyncSession) -> None:
    key = str(uuid.uuid4())
    await async_db.execute(
        text("INSERT INTO workspaces (id, name) VALUES (:id, 'Raw')"), {"id": key}
    )

    workspace = await async_db.get_one(Workspace, key)
    assert is_utc(workspace.created_at)
    assert workspace.updated_at is None
    assert (workspace.status, workspace.plan_tier) == ("active", "standard")


async def test_episode_timestamps_round_trip_as_aware_utc(async_db: AsyncSession) -> None:
    episode = await async_create(factories.EpisodeFactory, completed=True)
    await async_db.commit()
    async_db.expunge_all()

    loaded = await async_db.get_one(Episode, episode.id)
    assert is_utc(loaded.started_at)
    assert loaded.started_at == episode.started_at
