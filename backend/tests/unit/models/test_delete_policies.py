"""What deleting a row does to the rows that point at it: CASCADE, SET NULL
(in the database and on the loaded objects) and RESTRICT, one case per
foreign key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AgentRegistry,
    EpisodeAccessLog,
    EpisodeSegment,
    Team,
    TeamMessage,
    User,
    Workspace,
    user_workspaces,
)
from core.schema import Base
from tests.factories import (
    AgentExecutionFactory,
    AgentFactory,
    AgentFeedbackFactory,
    AgentProposalFactory,
    BlockedTriggerContextFactory,
    CanvasAuditFactory,
    EpisodeAccessLogFactory,
    EpisodeFactory,
    EpisodeSegmentFactory,
    TeamFactory,
    TeamMessageFactory,
    UserFactory,
    WorkflowExecutionFactory,
    WorkspaceFactory,
)
from tests.harness import QueryCounter
from tests.unit.readback import (
    FOREIGN_KEY_VIOLATION,
    Reload,
    count_rows,
    primary_key,
    stored,
    table_of,
)


def test_agent_without_history_can_be_deleted(db: Session) -> None:
    agent = AgentFactory()
    db.commit()

    db.delete(agent)
    db.commit()

    assert count_rows(db, table_of(AgentRegistry)) == 0


def test_deleting_an_episode_deletes_its_segments_and_access_logs(
    db: Session, commit_and_expire: Reload
) -> None:
    episode = EpisodeFactory(completed=True)
    EpisodeAccessLogFactory(episode=episode)
    other = EpisodeSegmentFactory()
    commit_and_expire()
    assert len(episode.segments) == 3

    db.delete(episode)
    db.commit()

    segments, logs = table_of(EpisodeSegment), table_of(EpisodeAccessLog)
    assert count_rows(db, segments, segments.c.episode_id == episode.id) == 0
    assert count_rows(db, logs) == 0
    assert count_rows(db, segments) == 1
    assert stored(db, EpisodeSegment, "id", other.id) == other.id


def test_deleting_a_workspace_deletes_its_teams_and_their_messages(
    db: Session, commit_and_expire: Reload
) -> None:
    workspace = WorkspaceFactory()
    team = TeamFactory(workspace=workspace)
    TeamMessageFactory(team=team)
    kept = TeamFactory()
    commit_and_expire()

    db.delete(workspace)
    db.commit()

    assert count_rows(db, table_of(Team)) == 1
    assert stored(db, Team, "id", kept.id) == kept.id
    assert count_rows(db, table_of(TeamMessage)) == 0


def test_deleting_a_user_removes_memberships_not_workspaces(
    db: Session, commit_and_expire: Reload
) -> None:
    user, workspace = UserFactory(), WorkspaceFactory()
    user.workspaces.append(workspace)
    commit_and_expire()

    db.delete(user)
    db.commit()

    assert count_rows(db, user_workspaces) == 0
    assert count_rows(db, table_of(Workspace)) == 1
    assert workspace.users == []


def test_deleting_a_team_deletes_its_messages(db: Session, commit_and_expire: Reload) -> None:
    team = TeamFactory()
    sender = UserFactory()
    for _ in range(2):
        TeamMessageFactory(team=team, sender=sender)
    commit_and_expire()
    assert team.team_type == "general"
    assert [message.sender for message in team.messages] == [sender, sender]

    db.delete(team)
    db.commit()

    assert count_rows(db, table_of(TeamMessage)) == 0
    assert count_rows(db, table_of(User)) == 1


@dataclass(frozen=True)
class KeyCase:
    """A child row pointing at a parent through `key` (`table.column`)."""

    key: str
    build: Callable[[], tuple[Base, Base]]  # (child, parent)
    relationship: str | None = None  # many-to-one through the key, if any

    @property
    def attribute(self) -> str:
        return self.key.split(".")[1]

    def arrange(self) -> tuple[Base, Base, Any, Any]:
        """(child, parent, child's primary key, parent's primary key): the keys
        are read now, before a commit expires the objects."""
        child, parent = self.build()
        return child, parent, primary_key(child), primary_key(parent)


def _feedback_on_execution() -> tuple[Base, Base]:
    execution = AgentExecutionFactory()
    return AgentFeedbackFactory(agent=execution.agent, execution=execution), execution


def _canvas_on_execution() -> tuple[Base, Base]:
    execution = AgentExecutionFactory()
    return CanvasAuditFactory(execution=execution), execution


def _trigger_with_proposal() -> tuple[Base, Base]:
    proposal = AgentProposalFactory()
    return BlockedTriggerContextFactory(agent=proposal.agent, proposal=proposal), proposal


def _through(
    key: str,
    parent_factory: Callable[[], Base],
    child_factory: Callable[..., Base],
    relationship: str,
) -> KeyCase:
    """A child given its parent through `relationship`, the many-to-one over `key`."""

    def build() -> tuple[Base, Base]:
        parent = parent_factory()
        return child_factory(**{relationship: parent}), parent

    return KeyCase(key, build, relationship)


def _by_key(
    key: str, parent_factory: Callable[[], Base], child_factory: Callable[..., Base]
) -> KeyCase:
    """A child given its parent's primary key in the column of `key`, no relationship."""
    column = key.split(".")[1]

    def build() -> tuple[Base, Base]:
        parent = parent_factory()
        return child_factory(**{column: primary_key(parent)}), parent

    return KeyCase(key, build)


def _child_of(child_factory: Callable[[], Base], relationship: str) -> Callable[[], Any]:
    def build() -> tuple[Base, Base]:
        child = child_factory()
        return child, getattr(child, relationship)

    return build


SET_NULL_CASES = [
    _through("agent_registry.user_id", UserFactory, AgentFactory, "owner"),
    _by_key("agent_executions.workspace_id", WorkspaceFactory, AgentExecutionFactory),
    KeyCase("agent_feedback.agent_execution_id", _feedback_on_execution, "execution"),
    _through("agent_feedback.episode_id", EpisodeFactory, AgentFeedbackFactory, "episode"),
    _through("workflow_executions.user_id", UserFactory, WorkflowExecutionFactory, "user"),
    _by_key("episodes.user_id", UserFactory, EpisodeFactory),
    _by_key("episodes.supervisor_id", UserFactory, EpisodeFactory),
    _through("episodes.proposal_id", AgentProposalFactory, EpisodeFactory, "proposal"),
    _by_key("episodes.consolidated_into", EpisodeFactory, EpisodeFactory),
    _by_key("episode_access_logs.accessed_by", UserFactory, EpisodeAccessLogFactory),
    _by_key("episode_access_logs.accessed_by_agent", AgentFactory, EpisodeAccessLogFactory),
    _by_key("canvas_audit.workspace_id", WorkspaceFactory, CanvasAuditFactory),
    _through("canvas_audit.agent_id", AgentFactory, CanvasAuditFactory, "agent"),
    KeyCase("canvas_audit.agent_execution_id", _canvas_on_execution, "execution"),
    _through("canvas_audit.episode_id", EpisodeFactory, CanvasAuditFactory, "episode"),
    KeyCase("blocked_triggers.proposal_id", _trigger_with_proposal, "proposal"),
    _through("agent_proposals.approved_by", UserFactory, AgentProposalFactory, "approver"),
]


RESTRICT_CASES = [
    KeyCase("team_messages.user_id", _child_of(TeamMessageFactory, "sender")),
    KeyCase("agent_executions.agent_id", _child_of(AgentExecutionFactory, "agent")),
    KeyCase("agent_feedback.agent_id", _child_of(AgentFeedbackFactory, "agent")),
    KeyCase("agent_feedback.user_id", _child_of(AgentFeedbackFactory, "user")),
    KeyCase("episodes.agent_id", _child_of(EpisodeFactory, "agent")),
    KeyCase("canvas_audit.user_id", _child_of(CanvasAuditFactory, "user")),
    KeyCase("blocked_triggers.agent_id", _child_of(BlockedTriggerContextFactory, "agent")),
    KeyCase("agent_proposals.agent_id", _child_of(AgentProposalFactory, "agent")),
]


def foreign_keys_with(*rules: str | None) -> set[str]:
    return {
        f"{table.name}.{foreign_key.parent.name}"
        for table in Base.metadata.sorted_tables
        for foreign_key in table.foreign_keys
        if foreign_key.ondelete in rules
    }


def test_the_set_null_cases_cover_every_set_null_key() -> None:
    assert {case.key for case in SET_NULL_CASES} == foreign_keys_with("SET NULL")


def test_the_restrict_cases_cover_every_restrict_key() -> None:
    assert {case.key for case in RESTRICT_CASES} == foreign_keys_with("RESTRICT", None)


@pytest.mark.parametrize("case", SET_NULL_CASES, ids=lambda c: c.key)
def test_set_null_reaches_the_database_and_loaded_objects(
    db: Session, commit_and_expire: Reload, case: KeyCase
) -> None:
    child, parent, child_key, parent_key = case.arrange()
    commit_and_expire()
    assert getattr(child, case.attribute) == parent_key
    if case.relationship:
        assert getattr(child, case.relationship) is parent

    db.delete(parent)
    db.flush()

    assert getattr(child, case.attribute) is None
    if case.relationship:
        assert getattr(child, case.relationship) is None
    assert stored(db, type(child), case.attribute, child_key) is None
    db.commit()
    assert stored(db, type(child), case.attribute, child_key) is None


@pytest.mark.parametrize("case", RESTRICT_CASES, ids=lambda c: c.key)
def test_restrict_refuses_the_delete_and_nulls_nothing(
    db: Session, count_queries: QueryCounter, case: KeyCase
) -> None:
    child, parent, child_key, parent_key = case.arrange()
    db.commit()

    db.delete(parent)
    with count_queries() as log, pytest.raises(IntegrityError) as error:
        db.flush()
    db.rollback()

    assert FOREIGN_KEY_VIOLATION in str(error.value).lower()
    assert not [sql for sql in log.statements if sql.upper().startswith("UPDATE")]
    assert stored(db, type(child), case.attribute, child_key) == parent_key
    assert getattr(child, case.attribute) == parent_key
    parent_table = table_of(type(parent))
    (parent_column,) = parent_table.primary_key.columns
    assert count_rows(db, parent_table, parent_column == parent_key) == 1  # still there


def test_an_unloaded_owner_is_nulled_in_the_database(db: Session) -> None:
    owner = UserFactory()
    owner_id, agent_id = owner.id, AgentFactory(owner=owner).id
    db.commit()
    db.expunge_all()  # no agent is loaded: only the database can null the key

    db.delete(db.get_one(User, owner_id))
    db.commit()

    assert stored(db, AgentRegistry, "user_id", agent_id) is None
