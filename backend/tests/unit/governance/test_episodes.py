"""Episodes: a run of executions remembered as ordered segments, and every
read of it logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import governance
from core.governance import GovernanceError
from core.models import EpisodeAccessLog
from tests.factories import AgentExecutionFactory, AgentFactory, UserFactory, WorkspaceFactory
from tests.unit.governance.common import count, row_counts


def test_an_episode_holds_its_runs_as_ordered_segments(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    late, early, middle = (
        AgentExecutionFactory(
            agent=agent, completed=True, started_at=start + timedelta(minutes=m), output_summary=s
        )
        for m, s in ((20, "third"), (0, "first"), (10, "second"))
    )
    governance.record_feedback(db, early, UserFactory(), rating=5)
    governance.record_feedback(db, late, UserFactory(), rating=1)

    episode = governance.record_episode(db, agent, [late, early, middle], title="Morning")

    db.expire_all()
    assert [s.content for s in episode.segments] == ["first", "second", "third"]
    assert [s.sequence_order for s in episode.segments] == [0, 1, 2]
    assert [s.source_id for s in episode.segments] == [early.id, middle.id, late.id]
    assert episode.execution_ids == [early.id, middle.id, late.id]
    assert len(episode.feedback_ids or []) == 2
    assert episode.aggregate_feedback_score == 0.0
    assert episode.started_at == start
    assert episode.workspace_id == agent.workspace_id
    assert episode.maturity_at_time == "autonomous"
    assert episode.status == "completed"


def test_an_episode_takes_the_workspace_of_its_runs_when_the_agent_has_none(
    db: Session,
) -> None:
    agent = AgentFactory(autonomous=True)
    workspace = WorkspaceFactory()
    execution = AgentExecutionFactory(agent=agent, workspace_id=workspace.id)

    episode = governance.record_episode(db, agent, [execution], title="Orphaned agent")

    assert episode.workspace_id == workspace.id
    assert episode.aggregate_feedback_score is None


def test_an_episode_is_refused_without_runs_foreign_runs_or_a_workspace(db: Session) -> None:
    agent = AgentFactory(autonomous=True)
    other = AgentExecutionFactory()
    own = AgentExecutionFactory(agent=agent)
    before = row_counts(db)

    with pytest.raises(GovernanceError, match="at least one execution"):
        governance.record_episode(db, agent, [], title="Empty")
    with pytest.raises(GovernanceError, match="are not runs of agent"):
        governance.record_episode(db, agent, [own, other], title="Mixed")
    with pytest.raises(GovernanceError, match="belong to no workspace"):
        governance.record_episode(db, agent, [own], title="Nowhere")

    assert row_counts(db) == before


def test_reading_an_episode_writes_an_access_log(db: Session) -> None:
    agent = AgentFactory(autonomous=True, with_workspace=True)
    runs = [AgentExecutionFactory(agent=agent, completed=True) for _ in range(2)]
    episode = governance.record_episode(db, agent, runs, title="Two runs")
    reader = UserFactory()

    segments = governance.read_episode(
        db, episode, user=reader, agent=agent, access_type="semantic", query="refunds"
    )

    assert [s.sequence_order for s in segments] == [0, 1]
    db.expire_all()
    log = db.scalars(select(EpisodeAccessLog)).one()
    assert (log.episode_id, log.accessed_by, log.accessed_by_agent) == (
        episode.id,
        reader.id,
        agent.id,
    )
    assert (log.access_type, log.retrieval_query, log.results_count) == ("semantic", "refunds", 2)
    assert log.agent_maturity_at_access == "autonomous"
    assert episode.access_count == 1

    governance.read_episode(db, episode)
    assert count(db, EpisodeAccessLog) == 2
    assert episode.access_count == 2
    assert sorted(db.scalars(select(EpisodeAccessLog.access_type))) == ["retrieval", "semantic"]
