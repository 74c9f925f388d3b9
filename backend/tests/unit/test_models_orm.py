"""The ORM suite: every model of `shared/DOMAIN.md`, checked against the database.

Each test asserts behaviour a caller relies on, and reads the database back
(a fresh SELECT, or an expired object) wherever the identity map could hide
the truth. The `db` fixture rolls back whatever a test writes, commits
included, so tests commit freely.
"""

from __future__ import annotations

import math
import uuid
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Table, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.database import Base
from core.models import (
    AccessType,
    AgentExecution,
    AgentFeedback,
    AgentProposal,
    AgentRegistry,
    AgentStatus,
    BlockedTriggerContext,
    CanvasAudit,
    Episode,
    EpisodeAccessLog,
    EpisodeSegment,
    EpisodeStatus,
    ExecutionStatus,
    FeedbackStatus,
    ProposalStatus,
    ProposalType,
    RoutingDecision,
    Team,
    TeamMessage,
    TriggerSource,
    User,
    UserRole,
    UserStatus,
    ValidationError,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowStepExecution,
    Workspace,
    WorkspaceStatus,
    maturity_for_confidence,
    team_members,
    user_workspaces,
)
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
    WorkflowStepExecutionFactory,
    WorkspaceFactory,
)
from tests.harness import QueryLog

QueryCounter = Callable[..., AbstractContextManager[QueryLog]]
FOREIGN_KEY_VIOLATION = "foreign key"  # in the error text of SQLite and PostgreSQL alike


# --------------------------------------------------------------------------
# Helpers: reading the database behind the ORM's back
# --------------------------------------------------------------------------


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def count_rows(db: Session, table: Table, *where: ColumnElement[bool]) -> int:
    """A fresh SELECT count(*): the database's answer, not the identity map's."""
    return int(db.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def stored(db: Session, model: type[Base], column: str, primary_key: str) -> Any:
    """The value a row holds in the database, read with a fresh SELECT."""
    table = table_of(model)
    (pk_column,) = table.primary_key.columns
    return db.scalar(select(table.c[column]).where(pk_column == primary_key))


def primary_key(obj: Base) -> Any:
    """The primary key of a persistent object, without loading anything."""
    identity = inspect(obj).identity
    assert identity is not None, f"{obj!r} is not persistent"
    return identity[0]


def naive_utcnow() -> datetime:
    """What existing callers write: a naive UTC `datetime.utcnow()`."""
    with warnings.catch_warnings():
        # Deprecated from Python 3.12 on; callers still use it, so must we.
        warnings.simplefilter("ignore", DeprecationWarning)
        return datetime.utcnow()


def is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def new_agent(**fields: Any) -> AgentRegistry:
    """An agent built by its constructor with only the required columns."""
    required = {
        "name": "Invoice reconciler",
        "category": "finance",
        "module_path": "agents.finance",
        "class_name": "InvoiceAgent",
    }
    return AgentRegistry(**(required | fields))


def new_step(**fields: Any) -> WorkflowStepExecution:
    required = {"step_id": "fetch", "step_name": "Fetch invoices", "step_type": "action"}
    return WorkflowStepExecution(**(required | fields))


def assert_ordered_load(log: QueryLog, table: str) -> None:
    """The collection's order is asked of the database, not left to an index.

    SQLite happens to return (parent, sequence_order)-indexed rows in order
    even without ORDER BY; other databases do not promise that.
    """
    (load,) = [sql for sql in log.statements if f"FROM {table}" in sql]
    assert f"ORDER BY {table}.sequence_order" in load


@pytest.fixture
def commit_and_expire(db: Session) -> Callable[[], None]:
    """Commit, then expire every object, so the next reads come from the database."""

    def commit_then_expire() -> None:
        db.commit()
        db.expire_all()

    return commit_then_expire


# ==========================================================================
# Agents
# ==========================================================================


class TestAgentRegistryModel:
    def test_constructor_defaults_are_readable_after_flush(self, db: Session) -> None:
        agent = new_agent()
        db.add(agent)
        db.flush()

        assert agent.status == AgentStatus.STUDENT
        assert agent.confidence_score == 0.5
        assert agent.required_role_for_autonomy == UserRole.TEAM_LEAD
        assert agent.version == "1.0.0"
        assert agent.configuration == {}
        assert agent.schedule_config == {}
        assert agent.user_id is None
        assert agent.workspace_id is None
        assert agent.updated_at is None
        assert stored(db, AgentRegistry, "status", agent.id) == "student"

    def test_id_is_a_uuid4_string_usable_before_flush(self, db: Session) -> None:
        agent = new_agent()
        explicit = new_agent(id="00000000-0000-4000-8000-000000000001")

        assert isinstance(agent.id, str)
        assert uuid.UUID(agent.id).version == 4
        assert explicit.id == "00000000-0000-4000-8000-000000000001"
        assert new_agent(id=None).id is not None

        db.add_all([agent, explicit])
        db.commit()
        assert stored(db, AgentRegistry, "id", agent.id) == agent.id

    @pytest.mark.parametrize("given", [AgentStatus.SUPERVISED, "supervised"])
    def test_status_takes_member_or_value_and_reloads_as_the_string(
        self, db: Session, commit_and_expire: Callable[[], None], given: Any
    ) -> None:
        agent = AgentFactory(_session=db, status=given)
        commit_and_expire()

        assert agent.status == "supervised"
        assert agent.status is AgentStatus.SUPERVISED
        assert db.scalar(select(AgentRegistry.id).where(AgentRegistry.status == "supervised")) == (
            agent.id
        )

    def test_confidence_score_must_lie_in_zero_to_one(self, db: Session) -> None:
        agent = AgentFactory(confidence_score=0.0)
        agent.confidence_score = 1.0
        db.flush()

        for bad in (-0.01, 1.01, math.nan):
            with pytest.raises(ValidationError, match=r"confidence_score.*>= 0 and <= 1") as error:
                agent.confidence_score = bad
            assert error.value.field == "AgentRegistry.confidence_score"
        assert agent.confidence_score == 1.0

    def test_configuration_mutated_in_place_is_persisted(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        agent = AgentFactory()
        commit_and_expire()

        assert agent.configuration is not None
        assert agent.schedule_config is not None
        agent.configuration["model"] = "small"
        agent.schedule_config["cron"] = "0 * * * *"
        commit_and_expire()

        assert agent.configuration == {"model": "small"}
        assert agent.schedule_config == {"cron": "0 * * * *"}

    def test_json_defaults_are_fresh_per_row(self, db: Session) -> None:
        first, second = AgentFactory(), AgentFactory()
        assert first.configuration is not None
        first.configuration["shared"] = True
        db.flush()

        assert first.configuration is not second.configuration
        assert second.configuration == {}
        assert stored(db, AgentRegistry, "configuration", second.id) == {}

    def test_owner_and_user_agents_are_two_sides_of_one_key(self, db: Session) -> None:
        owner = UserFactory(_session=db)
        agent = AgentFactory(_session=db, owner=owner)

        assert agent.user_id == owner.id
        assert owner.agents == [agent]

    def test_agent_with_executions_cannot_be_deleted(
        self, db: Session, count_queries: QueryCounter
    ) -> None:
        execution = AgentExecutionFactory()
        agent = execution.agent
        db.commit()

        db.delete(agent)
        with count_queries() as log, pytest.raises(IntegrityError) as error:
            db.flush()
        db.rollback()

        assert FOREIGN_KEY_VIOLATION in str(error.value).lower()
        assert not [sql for sql in log.statements if sql.upper().startswith("UPDATE")]
        assert stored(db, AgentExecution, "agent_id", execution.id) == agent.id
        assert count_rows(db, table_of(AgentRegistry)) == 1

    def test_agent_without_history_can_be_deleted(self, db: Session) -> None:
        agent = AgentFactory()
        db.commit()

        db.delete(agent)
        db.commit()

        assert count_rows(db, table_of(AgentRegistry)) == 0

    def test_repr_names_the_agent_and_its_status(self) -> None:
        agent = new_agent(status="intern")
        assert repr(agent) == f"<AgentRegistry {agent.id} 'Invoice reconciler' intern>"

    @pytest.mark.parametrize(
        ("confidence", "band"),
        [
            (0.0, AgentStatus.STUDENT),
            (0.49, AgentStatus.STUDENT),
            (0.5, AgentStatus.INTERN),
            (0.69, AgentStatus.INTERN),
            (0.7, AgentStatus.SUPERVISED),
            (0.89, AgentStatus.SUPERVISED),
            (0.9, AgentStatus.AUTONOMOUS),
            (1.0, AgentStatus.AUTONOMOUS),
        ],
    )
    def test_maturity_bands_follow_confidence(self, confidence: float, band: AgentStatus) -> None:
        assert maturity_for_confidence(confidence) is band


class TestAgentExecutionModel:
    def test_defaults(self, db: Session, commit_and_expire: Callable[[], None]) -> None:
        execution = AgentExecutionFactory()
        commit_and_expire()

        assert execution.status == ExecutionStatus.RUNNING
        assert execution.triggered_by == "manual"
        assert execution.duration_seconds == 0.0
        assert is_utc(execution.started_at)
        assert execution.completed_at is None

    def test_agent_relationship_and_reverse_collection(self, db: Session) -> None:
        agent = AgentFactory(_session=db)
        runs = [AgentExecutionFactory(_session=db, agent=agent) for _ in range(2)]
        by_key = AgentExecutionFactory(_session=db, agent_id=agent.id)
        db.expire_all()

        assert {run.id for run in agent.executions} == {runs[0].id, runs[1].id, by_key.id}
        assert by_key.agent is agent
        assert count_rows(db, table_of(AgentRegistry)) == 1

    def test_duration_cannot_be_negative(self, db: Session) -> None:
        execution = AgentExecutionFactory(duration_seconds=0.0)

        with pytest.raises(ValidationError, match=r"duration_seconds.*>= 0"):
            execution.duration_seconds = -1.0
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(
                update(table_of(AgentExecution)).values(duration_seconds=-1.0),
            )

    def test_unknown_agent_is_rejected_by_the_foreign_key(self, db: Session) -> None:
        db.add(AgentExecution(agent_id=str(uuid.uuid4())))
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            db.flush()

    def test_completion_fields_round_trip(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        finished = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        execution = AgentExecutionFactory(
            status=ExecutionStatus.COMPLETED,
            completed_at=finished,
            duration_seconds=2.5,
            output_summary="reconciled 12 invoices",
        )
        commit_and_expire()

        assert execution.status == "completed"
        assert (execution.completed_at, execution.duration_seconds) == (finished, 2.5)
        assert execution.output_summary == "reconciled 12 invoices"


class TestAgentFeedbackModel:
    def test_defaults_and_relationships(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        execution = AgentExecutionFactory(_session=db)
        episode = EpisodeFactory(_session=db, agent=execution.agent)
        feedback = AgentFeedbackFactory(
            _session=db, agent=execution.agent, execution=execution, episode=episode
        )
        commit_and_expire()

        assert feedback.status == FeedbackStatus.PENDING
        assert feedback.agent is execution.agent
        assert feedback.execution is execution
        assert feedback.episode is episode
        assert execution.feedback == [feedback]
        assert episode.feedback == [feedback]
        assert execution.agent.feedback == [feedback]
        assert feedback.user.id == feedback.user_id
        assert is_utc(feedback.created_at)

    def test_rating_must_lie_in_one_to_five(self, db: Session) -> None:
        feedback = AgentFeedbackFactory(rating=1)
        feedback.rating = 5
        db.flush()

        for bad in (0, 6):
            with pytest.raises(ValidationError, match=r"AgentFeedback.rating.*>= 1 and <= 5"):
                feedback.rating = bad
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(update(table_of(AgentFeedback)).values(rating=6))
        assert stored(db, AgentFeedback, "rating", feedback.id) == 5

    def test_missing_original_output_fails_at_flush(self, db: Session) -> None:
        agent, user = AgentFactory(), UserFactory()
        db.add(AgentFeedback(agent_id=agent.id, user_id=user.id, user_correction="better"))

        with pytest.raises(IntegrityError, match=r"(?i)original_output"):
            db.flush()

    def test_adjudication_status_accepts_member_or_value(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        accepted = AgentFeedbackFactory(status=FeedbackStatus.ACCEPTED)
        rejected = AgentFeedbackFactory(status="rejected")
        commit_and_expire()

        assert (accepted.status, rejected.status) == ("accepted", "rejected")


# ==========================================================================
# Workflows
# ==========================================================================


class TestWorkflowExecutionModel:
    def test_defaults_and_uuid_primary_key(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        run = WorkflowExecution(workflow_id="invoice-sync")
        db.add(run)
        commit_and_expire()

        assert uuid.UUID(run.execution_id).version == 4
        assert run.status == WorkflowExecutionStatus.PENDING
        assert run.status == "PENDING"
        assert run.version == 1
        assert run.input_data is None
        assert run.step_executions == []

    def test_status_values_are_upper_case(self, db: Session) -> None:
        run = WorkflowExecutionFactory(status="RUNNING")
        assert run.status is WorkflowExecutionStatus.RUNNING

        with pytest.raises(ValidationError, match=r"WorkflowExecution.status.*'running'"):
            run.status = "running"  # type: ignore[assignment]  # deliberately not a member

    def test_steps_come_back_ordered_by_sequence_order(
        self, db: Session, commit_and_expire: Callable[[], None], count_queries: QueryCounter
    ) -> None:
        run = WorkflowExecutionFactory(_session=db)
        for order in (2, 0, 1):
            db.add(new_step(execution=run, step_id=f"s{order}", sequence_order=order))
        commit_and_expire()

        with count_queries() as log:
            steps = list(run.step_executions)

        assert [step.sequence_order for step in steps] == [0, 1, 2]
        assert [step.step_id for step in steps] == ["s0", "s1", "s2"]
        assert_ordered_load(log, "workflow_step_executions")

    def test_outputs_mutated_in_place_are_persisted(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        run = WorkflowExecutionFactory(outputs={"rows": 1})
        commit_and_expire()

        assert run.outputs is not None
        run.outputs["rows"] = 2
        commit_and_expire()

        assert run.outputs == {"rows": 2}


class TestWorkflowStepExecutionModel:
    def test_workflow_id_is_copied_from_the_run(self, db: Session) -> None:
        run = WorkflowExecutionFactory(_session=db, workflow_id="quarter-close")
        through_relationship = new_step(execution=run, sequence_order=0)
        through_key_only = new_step(execution_id=run.execution_id, sequence_order=1)
        explicit = new_step(execution=run, sequence_order=2, workflow_id="kept-as-given")
        db.add_all([through_relationship, through_key_only, explicit])
        by_factory = WorkflowStepExecutionFactory(_session=db, execution_id=run.execution_id)

        assert through_relationship.workflow_id == "quarter-close"
        assert through_key_only.workflow_id == "quarter-close"
        assert by_factory.workflow_id == "quarter-close"
        assert explicit.workflow_id == "kept-as-given"
        assert stored(db, WorkflowStepExecution, "workflow_id", through_key_only.id) == (
            "quarter-close"
        )

    def test_a_retried_step_repeats_its_sequence_order(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        run = WorkflowExecutionFactory()
        first = WorkflowStepExecutionFactory(
            execution=run, sequence_order=0, status=WorkflowExecutionStatus.FAILED
        )
        retry = WorkflowStepExecutionFactory(
            execution=run, sequence_order=0, step_id=first.step_id, retry_count=1
        )
        commit_and_expire()

        assert [step.id for step in run.step_executions] in (
            [first.id, retry.id],
            [retry.id, first.id],
        )
        assert {step.retry_count for step in run.step_executions} == {0, 1}
        steps = table_of(WorkflowStepExecution)
        assert count_rows(db, steps, steps.c.sequence_order == 0) == 2

    def test_a_step_without_a_run_fails_at_flush(self, db: Session) -> None:
        db.add(new_step(sequence_order=0))
        with pytest.raises(IntegrityError):
            db.flush()

    def test_order_and_duration_cannot_be_negative(self) -> None:
        with pytest.raises(ValidationError, match=r"sequence_order.*>= 0"):
            new_step(sequence_order=-1)
        with pytest.raises(ValidationError, match=r"duration_ms.*>= 0"):
            new_step(sequence_order=0, duration_ms=-5)


# ==========================================================================
# Episodic memory
# ==========================================================================


class TestEpisodeModel:
    def test_defaults(self, db: Session, commit_and_expire: Callable[[], None]) -> None:
        episode = EpisodeFactory()
        commit_and_expire()

        assert episode.status == EpisodeStatus.ACTIVE
        assert episode.maturity_at_time == episode.agent.status
        assert (episode.importance_score, episode.decay_score) == (0.5, 1.0)
        assert (episode.canvas_action_count, episode.intervention_count) == (0, 0)
        assert (episode.human_intervention_count, episode.access_count) == (0, 0)
        for column in ("execution_ids", "canvas_ids", "feedback_ids", "topics", "entities"):
            assert getattr(episode, column) == [], column
        assert is_utc(episode.started_at)

    def test_list_columns_are_fresh_per_row_and_track_appends(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        first, second = EpisodeFactory(), EpisodeFactory()
        canvas_id = str(uuid.uuid4())
        commit_and_expire()

        assert first.canvas_ids is not None
        assert first.topics is not None
        first.canvas_ids.append(canvas_id)
        first.topics.extend(["billing", "refunds"])
        commit_and_expire()

        assert first.canvas_ids == [canvas_id]
        assert isinstance(first.canvas_ids[0], str)
        assert first.topics == ["billing", "refunds"]
        assert second.canvas_ids == []
        assert second.topics == []

    def test_segments_come_back_ordered_by_sequence_order(
        self, db: Session, commit_and_expire: Callable[[], None], count_queries: QueryCounter
    ) -> None:
        episode = EpisodeFactory(_session=db)
        for order in (3, 1, 2):
            EpisodeSegmentFactory(_session=db, episode=episode, sequence_order=order)
        commit_and_expire()

        with count_queries() as log:
            segments = list(episode.segments)

        assert [segment.sequence_order for segment in segments] == [1, 2, 3]
        assert_ordered_load(log, "episode_segments")

    def test_deleting_an_episode_deletes_its_segments_and_access_logs(
        self, db: Session, commit_and_expire: Callable[[], None]
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

    @pytest.mark.parametrize(
        ("field", "good", "bad"),
        [
            ("importance_score", 1.0, 1.5),
            ("decay_score", 0.0, -0.1),
            ("aggregate_feedback_score", -1.0, -1.1),
            ("supervisor_rating", 5, 6),
        ],
    )
    def test_scores_are_bounded(self, db: Session, field: str, good: float, bad: float) -> None:
        episode = EpisodeFactory(**{field: good})
        assert stored(db, Episode, field, episode.id) == good

        with pytest.raises(ValidationError, match=f"Episode.{field}"):
            setattr(episode, field, bad)
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(update(table_of(Episode)).values({field: bad}))

    def test_maturity_at_time_is_required(self, db: Session) -> None:
        agent, workspace = AgentFactory(), WorkspaceFactory()
        db.add(Episode(title="t", agent_id=agent.id, workspace_id=workspace.id))

        with pytest.raises(IntegrityError, match=r"(?i)maturity_at_time"):
            db.flush()

    def test_an_access_log_needs_only_its_episode_and_access_type(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        episode = EpisodeFactory()
        log = EpisodeAccessLog(episode_id=episode.id, access_type="retrieval")
        db.add(log)
        commit_and_expire()

        assert log.access_type is AccessType.RETRIEVAL
        assert log.governance_check_passed is True
        assert log.results_count == 0
        assert (log.accessed_by, log.accessed_by_agent) == (None, None)
        assert episode.access_logs == [log]


class TestEpisodeSegmentModel:
    def test_defaults_and_parent(self, db: Session, commit_and_expire: Callable[[], None]) -> None:
        segment = EpisodeSegmentFactory(_session=db, content_summary=None)
        commit_and_expire()

        assert segment.source_type == "manual"
        assert segment.episode.segments == [segment]
        assert is_utc(segment.created_at)
        assert stored(db, EpisodeSegment, "content_summary", segment.id) is None

    def test_content_is_required(self, db: Session) -> None:
        episode = EpisodeFactory()
        db.add(EpisodeSegment(episode=episode, segment_type="reflection", sequence_order=0))

        with pytest.raises(IntegrityError, match=r"(?i)content"):
            db.flush()

    def test_sequence_order_cannot_be_negative(self) -> None:
        with pytest.raises(ValidationError, match=r"EpisodeSegment.sequence_order.*>= 0"):
            EpisodeSegment(segment_type="action", sequence_order=-1, content="x")


# ==========================================================================
# Tenancy
# ==========================================================================


class TestUserModel:
    def test_email_is_stored_trimmed_and_lower_cased(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        user = User(email="  Ada.Lovelace@Example.COM ", password_hash="hash")
        assert user.email == "ada.lovelace@example.com"
        db.add(user)
        commit_and_expire()

        assert stored(db, User, "email", user.id) == "ada.lovelace@example.com"

    @pytest.mark.parametrize(
        "email", ["", "plain", "no-at.example.com", "a@b", "two@@example.com", "sp ace@example.com"]
    )
    def test_malformed_email_is_rejected(self, email: str) -> None:
        with pytest.raises(ValidationError, match="not a valid email address") as error:
            User(email=email)
        assert error.value.field == "User.email"

    def test_non_string_email_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="expected a string"):
            User(email=42)

    def test_email_is_unique_after_normalisation(self, db: Session) -> None:
        UserFactory(_session=db, email="grace@example.com")
        db.add(User(email="GRACE@example.com "))

        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            db.flush()

    def test_repr_never_shows_the_password_hash(self) -> None:
        user = User(email="kay@example.com", password_hash="s3cr3t-hash-value")

        assert "s3cr3t" not in repr(user)
        assert "s3cr3t" not in str(user)
        assert "kay@example.com" in repr(user)

    def test_missing_email_fails_at_flush_not_at_construction(self, db: Session) -> None:
        user = User(password_hash="hash")
        assert user.password_hash == "hash"
        db.add(user)

        with pytest.raises(IntegrityError, match=r"(?i)email"):
            db.flush()

    def test_defaults_and_sso_user(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        user = UserFactory(sso=True)
        commit_and_expire()

        assert user.password_hash is None
        assert user.role == UserRole.MEMBER
        assert user.status == UserStatus.ACTIVE
        assert user.email_verified is False
        assert user.preferences == {}
        assert user.last_login_at is None

    def test_database_rejects_an_unnormalised_email(self, db: Session) -> None:
        user = UserFactory()
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(update(table_of(User)).values(email="Upper@Example.com"))
        assert stored(db, User, "email", user.id) == user.email


class TestWorkspaceModel:
    def test_defaults(self, db: Session, commit_and_expire: Callable[[], None]) -> None:
        workspace = Workspace(name="Acme")
        db.add(workspace)
        commit_and_expire()

        assert workspace.status == WorkspaceStatus.ACTIVE
        assert workspace.plan_tier == "standard"
        assert workspace.is_startup is False
        assert workspace.learning_phase_completed is False
        assert workspace.metadata_json == {}
        assert repr(workspace) == f"<Workspace {workspace.id} 'Acme'>"

    def test_deleting_a_workspace_deletes_its_teams_and_their_messages(
        self, db: Session, commit_and_expire: Callable[[], None]
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

    @pytest.mark.strict_loading(False, reason="loads each side's collection, one by one")
    def test_users_and_workspaces_are_many_to_many(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        ada, bob = UserFactory(), UserFactory()
        acme, globex = WorkspaceFactory(), WorkspaceFactory()
        ada.workspaces.extend([acme, globex])
        bob.workspaces.append(acme)
        commit_and_expire()

        assert {user.id for user in acme.users} == {ada.id, bob.id}
        assert globex.users == [ada]
        assert {workspace.id for workspace in ada.workspaces} == {acme.id, globex.id}
        rows = db.execute(select(user_workspaces)).all()
        assert len(rows) == 3
        assert {row.role for row in rows} == {"member"}
        assert all(is_utc(row.joined_at) for row in rows)

    def test_deleting_a_user_removes_memberships_not_workspaces(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        user, workspace = UserFactory(), WorkspaceFactory()
        user.workspaces.append(workspace)
        commit_and_expire()

        db.delete(user)
        db.commit()

        assert count_rows(db, user_workspaces) == 0
        assert count_rows(db, table_of(Workspace)) == 1
        assert workspace.users == []


class TestTeamModel:
    def test_name_is_unique_within_a_workspace(self, db: Session) -> None:
        workspace = WorkspaceFactory(_session=db)
        TeamFactory(_session=db, workspace=workspace, name="Ops")
        TeamFactory(_session=db, name="Ops")  # another workspace: allowed
        db.add(Team(workspace_id=workspace.id, name="Ops"))

        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            db.flush()

    def test_members_are_many_to_many_with_membership_defaults(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        team = TeamFactory()
        lead, member = UserFactory(), UserFactory()
        team.members.extend([lead, member])
        commit_and_expire()

        assert {user.id for user in team.members} == {lead.id, member.id}
        assert lead.teams == [team]
        rows = db.execute(select(team_members).where(team_members.c.team_id == team.id)).all()
        assert [row.role for row in rows] == ["member", "member"]
        assert all(is_utc(row.joined_at) for row in rows)

    def test_deleting_a_team_deletes_its_messages(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
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

    def test_repr_names_the_team(self) -> None:
        team = Team(name="Platform")
        assert repr(team) == f"<Team {team.id} 'Platform'>"


# ==========================================================================
# Governance
# ==========================================================================


class TestCanvasAuditModel:
    def test_defaults_and_relationships(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        execution = AgentExecutionFactory()
        audit = CanvasAuditFactory(agent=execution.agent, execution=execution)
        commit_and_expire()

        assert audit.canvas_type == "generic"
        assert audit.audit_metadata == {}
        assert audit.governance_check_passed is None
        assert audit.agent is execution.agent
        assert execution.canvas_audits == [audit]
        assert audit.user.id == audit.user_id
        assert audit.episode is None

    def test_action_and_component_type_are_required(self, db: Session) -> None:
        user = UserFactory()
        db.add(CanvasAudit(user_id=user.id, component_type="chart"))

        with pytest.raises(IntegrityError, match=r"(?i)action"):
            db.flush()

    def test_audit_metadata_none_is_sql_null(self, db: Session) -> None:
        audit = CanvasAuditFactory(audit_metadata=None)
        is_null = db.scalar(
            text("SELECT audit_metadata IS NULL FROM canvas_audit WHERE id = :id"),
            {"id": audit.id},
        )
        assert bool(is_null) is True


class TestBlockedTriggerContextModel:
    def test_enums_defaults_and_agent_snapshot(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        agent = AgentFactory(_session=db, intern=True)
        trigger = BlockedTriggerContextFactory(
            _session=db,
            agent_id=agent.id,
            trigger_source="workflow_engine",
            routing_decision=RoutingDecision.SUPERVISION,
        )
        commit_and_expire()

        assert trigger.agent is agent
        assert (trigger.agent_name, trigger.agent_maturity_at_block) == (agent.name, "intern")
        assert trigger.confidence_score_at_block == agent.confidence_score
        assert trigger.trigger_source is TriggerSource.WORKFLOW_ENGINE
        assert trigger.routing_decision == "supervision"
        assert trigger.resolved is False
        assert trigger.trigger_context == {}
        assert agent.blocked_triggers == [trigger]

    def test_confidence_at_block_is_bounded(self) -> None:
        with pytest.raises(ValidationError, match=r"confidence_score_at_block.*<= 1"):
            BlockedTriggerContext(confidence_score_at_block=1.2)


class TestAgentProposalModel:
    @pytest.mark.parametrize(
        ("field", "good", "bad"),
        [
            ("hours_per_day_limit", 24.0, 24.01),
            ("hours_per_day_limit", 0.01, 0.0),
            ("estimated_duration_hours", 0.5, 0.0),
            ("user_override_duration_hours", 1.0, -1.0),
            ("duration_estimation_confidence", 0.0, 1.01),
        ],
    )
    def test_ranges(self, db: Session, field: str, good: float, bad: float) -> None:
        proposal = AgentProposalFactory(**{field: good})
        assert stored(db, AgentProposal, field, proposal.id) == good

        with pytest.raises(ValidationError, match=f"AgentProposal.{field}"):
            setattr(proposal, field, bad)
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(update(table_of(AgentProposal)).values({field: bad}))

    def test_defaults_lists_and_relationships(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        proposal = AgentProposalFactory(
            approved=True, capability_gaps=["escalation"], proposal_type="action"
        )
        trigger = BlockedTriggerContextFactory(agent=proposal.agent, proposal=proposal)
        episode = EpisodeFactory(agent=proposal.agent, proposal=proposal)
        commit_and_expire()

        assert proposal.status == ProposalStatus.APPROVED
        assert proposal.proposal_type is ProposalType.ACTION
        assert proposal.learning_objectives == ["follow the escalation policy"]
        assert proposal.capability_gaps == ["escalation"]
        assert proposal.approver is not None
        assert proposal.approved_by == proposal.approver.id
        assert proposal.blocked_triggers == [trigger]
        assert proposal.episodes == [episode]
        assert proposal.agent.proposals == [proposal]

    def test_default_status_is_proposed(self, db: Session) -> None:
        assert AgentProposalFactory().status == "proposed"


# ==========================================================================
# Cross-cutting behaviour
# ==========================================================================


@dataclass(frozen=True)
class UpdatedAtCase:
    factory: Callable[..., Base]
    field: str
    value: Any


UPDATED_AT_CASES = [
    UpdatedAtCase(WorkspaceFactory, "description", "renamed"),
    UpdatedAtCase(TeamFactory, "description", "renamed"),
    UpdatedAtCase(UserFactory, "first_name", "Renamed"),
    UpdatedAtCase(AgentFactory, "description", "renamed"),
    UpdatedAtCase(WorkflowExecutionFactory, "error", "renamed"),
    UpdatedAtCase(EpisodeFactory, "summary", "renamed"),
    UpdatedAtCase(AgentProposalFactory, "reasoning", "renamed"),
]
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


class TestLifecycleHooks:
    @pytest.mark.parametrize("case", UPDATED_AT_CASES, ids=lambda c: c.factory.__name__)
    def test_updated_at_is_null_on_insert_and_set_on_every_update(
        self, db: Session, commit_and_expire: Callable[[], None], case: UpdatedAtCase
    ) -> None:
        obj = case.factory()
        model = type(obj)
        key = primary_key(obj)
        commit_and_expire()
        assert obj.updated_at is None  # type: ignore[attr-defined]
        assert stored(db, model, "updated_at", key) is None

        setattr(obj, case.field, case.value)
        db.flush()
        first = obj.updated_at  # type: ignore[attr-defined]
        assert is_utc(first)
        assert stored(db, model, "updated_at", key) == first

        # Backdate it behind the ORM's back: the next UPDATE must overwrite it.
        (pk_column,) = table_of(model).primary_key.columns
        db.execute(update(table_of(model)).where(pk_column == key).values(updated_at=LONG_AGO))
        commit_and_expire()
        assert obj.updated_at == LONG_AGO  # type: ignore[attr-defined]

        setattr(obj, case.field, case.value + " again")
        db.flush()
        second = obj.updated_at  # type: ignore[attr-defined]
        assert second is not None
        assert second > LONG_AGO
        assert stored(db, model, "updated_at", key) == second

    def test_created_at_is_readable_right_after_flush_and_utc(
        self, db: Session, count_queries: QueryCounter
    ) -> None:
        agent = new_agent()
        db.add(agent)
        db.flush()

        with count_queries(0):
            created_at = agent.created_at
        assert is_utc(created_at)
        db.expire(agent)
        assert agent.created_at == created_at
        assert is_utc(agent.created_at)

    def test_the_database_sets_created_at_for_raw_inserts(self, db: Session) -> None:
        key = str(uuid.uuid4())
        db.execute(text("INSERT INTO workspaces (id, name) VALUES (:id, 'Raw')"), {"id": key})

        workspace = db.get_one(Workspace, key)
        assert is_utc(workspace.created_at)
        assert workspace.updated_at is None
        assert (workspace.status, workspace.plan_tier) == ("active", "standard")
        assert (workspace.is_startup, workspace.learning_phase_completed) == (False, False)

    def test_naive_datetime_is_taken_as_utc(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        naive = naive_utcnow()
        execution = AgentExecutionFactory(started_at=naive)
        assert execution.started_at == naive.replace(tzinfo=UTC)
        commit_and_expire()

        assert is_utc(execution.started_at)
        assert execution.started_at == naive.replace(tzinfo=UTC)

    def test_aware_datetime_is_converted_to_utc(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        paris_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        proposal = AgentProposalFactory(training_start_date=paris_noon)
        commit_and_expire()

        assert proposal.training_start_date == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
        assert is_utc(proposal.training_start_date)

    def test_a_datetime_column_refuses_other_types(self) -> None:
        with pytest.raises(ValidationError, match=r"AgentExecution.completed_at.*datetime"):
            AgentExecution(completed_at="2026-01-01")


@dataclass(frozen=True)
class EnumCase:
    build: Callable[[], Base]
    field: str
    allowed: list[str]


ENUM_CASES = [
    EnumCase(new_agent, "status", [m.value for m in AgentStatus]),
    EnumCase(new_agent, "required_role_for_autonomy", [m.value for m in UserRole]),
    EnumCase(lambda: User(), "status", [m.value for m in UserStatus]),
    EnumCase(lambda: Workspace(), "status", [m.value for m in WorkspaceStatus]),
    EnumCase(lambda: EpisodeAccessLog(), "access_type", [m.value for m in AccessType]),
    EnumCase(lambda: BlockedTriggerContext(), "trigger_source", [m.value for m in TriggerSource]),
    EnumCase(lambda: AgentProposal(), "proposal_type", [m.value for m in ProposalType]),
]


class TestFieldValidation:
    @pytest.mark.parametrize(
        "case", ENUM_CASES, ids=lambda c: f"{type(c.build()).__name__}.{c.field}"
    )
    def test_unknown_enum_value_is_rejected_before_any_sql(
        self, count_queries: QueryCounter, case: EnumCase
    ) -> None:
        obj = case.build()
        with count_queries(0), pytest.raises(ValidationError) as error:
            setattr(obj, case.field, "genius")

        message = str(error.value)
        assert error.value.field == f"{type(obj).__name__}.{case.field}"
        assert message.startswith(error.value.field)
        assert "'genius'" in message
        for value in case.allowed:
            assert value in message

    def test_the_database_rejects_an_unknown_enum_value_too(self, db: Session) -> None:
        agent = AgentFactory()
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(
                text("UPDATE agent_registry SET status = 'genius' WHERE id = :id"),
                {"id": agent.id},
            )
        assert stored(db, AgentRegistry, "status", agent.id) == "student"

    def test_over_long_strings_are_rejected(self, db: Session) -> None:
        agent = AgentFactory(name="n" * 255, version="v" * 20)
        db.flush()
        assert len(stored(db, AgentRegistry, "name", agent.id)) == 255

        with pytest.raises(ValidationError, match=r"AgentRegistry.name: at most 255 characters"):
            agent.name = "n" * 256
        with pytest.raises(ValidationError, match=r"AgentRegistry.version: at most 20"):
            new_agent(version="v" * 21)
        with pytest.raises(ValidationError, match=r"Episode.title: at most 500"):
            Episode(title="t" * 501)
        assert len(agent.name) == 255

    def test_numbers_are_checked_on_assignment_not_only_at_construction(self) -> None:
        agent = new_agent(confidence_score=0.9)

        with pytest.raises(ValidationError, match="expected a number"):
            agent.confidence_score = "high"  # type: ignore[assignment]
        with pytest.raises(ValidationError, match="expected a number"):
            agent.confidence_score = True
        assert agent.confidence_score == 0.9

    def test_constructors_validate_only_what_they_are_given(self, db: Session) -> None:
        agent = AgentRegistry(name="only a name")  # no category: not checked here
        db.add(agent)

        with pytest.raises(IntegrityError, match=r"(?i)category"):
            db.flush()

    def test_python_none_is_sql_null_not_json_null(self, db: Session) -> None:
        run = WorkflowExecution(workflow_id="w", input_data=None, outputs=None)
        agent = new_agent(configuration=None)
        db.add_all([run, agent])
        db.flush()

        assert db.scalar(
            text("SELECT input_data IS NULL AND outputs IS NULL FROM workflow_executions")
        )
        assert db.scalar(text("SELECT configuration IS NULL FROM agent_registry"))
        assert agent.configuration is None


def reflected(db: Session) -> Any:
    return inspect(db.connection())


def leading_columns(db: Session, table: str) -> list[str]:
    """The first column of every index, unique constraint and primary key."""
    inspector = reflected(db)
    indexes = [
        ix["column_names"]
        for ix in inspector.get_indexes(table)
        if not ix.get("duplicates_constraint")  # PostgreSQL lists UNIQUE's index too
    ]
    uniques = [uq["column_names"] for uq in inspector.get_unique_constraints(table)]
    primary = [inspector.get_pk_constraint(table)["constrained_columns"]]
    return [columns[0] for columns in indexes + uniques + primary if columns]


class TestIndexConstraints:
    def test_every_foreign_key_column_leads_exactly_one_index(self, db: Session) -> None:
        inspector = reflected(db)
        checked = 0
        for table in Base.metadata.sorted_tables:
            leading = leading_columns(db, table.name)
            for foreign_key in inspector.get_foreign_keys(table.name):
                column = foreign_key["constrained_columns"][0]
                assert leading.count(column) == 1, f"{table.name}.{column}: {leading}"
                checked += 1
        assert checked == sum(len(table.foreign_keys) for table in Base.metadata.sorted_tables)

    @pytest.mark.parametrize(
        ("table", "columns"),
        [
            ("agent_executions", ["agent_id", "started_at"]),
            ("blocked_triggers", ["agent_id", "resolved"]),
            ("agent_proposals", ["status", "created_at"]),
            ("workflow_step_executions", ["execution_id", "sequence_order"]),
            ("episode_segments", ["episode_id", "sequence_order"]),
            ("workflow_executions", ["workflow_id"]),
        ],
    )
    def test_named_non_unique_indexes_exist(
        self, db: Session, table: str, columns: list[str]
    ) -> None:
        indexes = {ix["name"]: ix for ix in reflected(db).get_indexes(table)}
        name = f"ix_{table}_{'_'.join(columns)}"

        assert name in indexes, sorted(indexes)
        assert indexes[name]["column_names"] == columns
        assert not indexes[name]["unique"]

    def test_no_index_is_duplicated_or_shadowed_by_a_composite(self, db: Session) -> None:
        inspector = reflected(db)
        for table in Base.metadata.sorted_tables:
            indexes = [
                tuple(ix["column_names"])
                for ix in inspector.get_indexes(table.name)
                if not ix.get("duplicates_constraint")
            ]
            covered = [
                *indexes,
                *(tuple(uq["column_names"]) for uq in inspector.get_unique_constraints(table.name)),
                tuple(inspector.get_pk_constraint(table.name)["constrained_columns"]),
            ]
            assert len(set(covered)) == len(covered), f"{table.name}: {covered}"
            for columns in indexes:
                if len(columns) == 1:
                    longer = [other for other in covered if len(other) > 1]
                    assert all(other[0] != columns[0] for other in longer), table.name

    def test_unique_constraints_and_constraint_names(self, db: Session) -> None:
        inspector = reflected(db)
        assert {
            uq["name"]: uq["column_names"] for uq in inspector.get_unique_constraints("teams")
        } == {"uq_teams_workspace_id_name": ["workspace_id", "name"]}
        assert [uq["column_names"] for uq in inspector.get_unique_constraints("users")] == [
            ["email"]
        ]
        for table in Base.metadata.sorted_tables:
            for foreign_key in inspector.get_foreign_keys(table.name):
                column = foreign_key["constrained_columns"][0]
                expected = f"fk_{table.name}_{column}_{foreign_key['referred_table']}"
                assert foreign_key["name"] == expected
        checks = {ck["name"] for ck in inspector.get_check_constraints("agent_proposals")}
        assert "ck_agent_proposals_hours_per_day_limit_range" in checks

    def test_a_duplicate_primary_key_fails_at_flush(self, db: Session) -> None:
        agent = AgentFactory(_session=db)
        db.add(new_agent(id=agent.id))

        with pytest.raises(IntegrityError):
            db.flush()


# --------------------------------------------------------------------------
# Delete policies, one case per foreign key
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCase:
    """A child row pointing at a parent through `key` (`table.column`)."""

    key: str
    build: Callable[[], tuple[Base, Base]]  # (child, parent)
    relationship: str | None = None  # many-to-one through the key, if any

    @property
    def attribute(self) -> str:
        return self.key.split(".")[1]


def _feedback_on_execution() -> tuple[Base, Base]:
    execution = AgentExecutionFactory()
    return AgentFeedbackFactory(agent=execution.agent, execution=execution), execution


def _canvas_on_execution() -> tuple[Base, Base]:
    execution = AgentExecutionFactory()
    return CanvasAuditFactory(execution=execution), execution


def _trigger_with_proposal() -> tuple[Base, Base]:
    proposal = AgentProposalFactory()
    return BlockedTriggerContextFactory(agent=proposal.agent, proposal=proposal), proposal


def _with_parent(
    parent_factory: Callable[[], Base], child_factory: Callable[..., Base], field: str
) -> Callable[[], tuple[Base, Base]]:
    def build() -> tuple[Base, Base]:
        parent = parent_factory()
        return child_factory(**{field: parent}), parent

    return build


def _with_parent_key(
    parent_factory: Callable[[], Base], child_factory: Callable[..., Base], field: str
) -> Callable[[], tuple[Base, Base]]:
    def build() -> tuple[Base, Base]:
        parent = parent_factory()
        return child_factory(**{field: primary_key(parent)}), parent

    return build


def _child_of(child_factory: Callable[[], Base], relationship: str) -> Callable[[], Any]:
    def build() -> tuple[Base, Base]:
        child = child_factory()
        return child, getattr(child, relationship)

    return build


SET_NULL_CASES = [
    KeyCase("agent_registry.user_id", _with_parent(UserFactory, AgentFactory, "owner"), "owner"),
    KeyCase(
        "agent_executions.workspace_id",
        _with_parent_key(WorkspaceFactory, AgentExecutionFactory, "workspace_id"),
    ),
    KeyCase("agent_feedback.agent_execution_id", _feedback_on_execution, "execution"),
    KeyCase(
        "agent_feedback.episode_id",
        _with_parent(EpisodeFactory, AgentFeedbackFactory, "episode"),
        "episode",
    ),
    KeyCase(
        "workflow_executions.user_id",
        _with_parent(UserFactory, WorkflowExecutionFactory, "user"),
        "user",
    ),
    KeyCase("episodes.user_id", _with_parent_key(UserFactory, EpisodeFactory, "user_id")),
    KeyCase(
        "episodes.supervisor_id", _with_parent_key(UserFactory, EpisodeFactory, "supervisor_id")
    ),
    KeyCase(
        "episodes.proposal_id",
        _with_parent(AgentProposalFactory, EpisodeFactory, "proposal"),
        "proposal",
    ),
    KeyCase(
        "episodes.consolidated_into",
        _with_parent_key(EpisodeFactory, EpisodeFactory, "consolidated_into"),
    ),
    KeyCase(
        "episode_access_logs.accessed_by",
        _with_parent_key(UserFactory, EpisodeAccessLogFactory, "accessed_by"),
    ),
    KeyCase(
        "episode_access_logs.accessed_by_agent",
        _with_parent_key(AgentFactory, EpisodeAccessLogFactory, "accessed_by_agent"),
    ),
    KeyCase(
        "canvas_audit.workspace_id",
        _with_parent_key(WorkspaceFactory, CanvasAuditFactory, "workspace_id"),
    ),
    KeyCase(
        "canvas_audit.agent_id", _with_parent(AgentFactory, CanvasAuditFactory, "agent"), "agent"
    ),
    KeyCase("canvas_audit.agent_execution_id", _canvas_on_execution, "execution"),
    KeyCase(
        "canvas_audit.episode_id",
        _with_parent(EpisodeFactory, CanvasAuditFactory, "episode"),
        "episode",
    ),
    KeyCase("blocked_triggers.proposal_id", _trigger_with_proposal, "proposal"),
    KeyCase(
        "agent_proposals.approved_by",
        _with_parent(UserFactory, AgentProposalFactory, "approver"),
        "approver",
    ),
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


class TestCascadeBehaviors:
    def test_deleting_a_workflow_execution_deletes_its_steps(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        run = WorkflowExecutionFactory()
        for _ in range(3):
            WorkflowStepExecutionFactory(execution=run)
        other_step = WorkflowStepExecutionFactory()
        commit_and_expire()

        db.delete(run)
        db.commit()

        steps = table_of(WorkflowStepExecution)
        assert count_rows(db, steps, steps.c.execution_id == run.execution_id) == 0
        assert count_rows(db, steps) == 1
        assert count_rows(db, table_of(WorkflowExecution)) == 1
        assert db.get(WorkflowStepExecution, other_step.id) is other_step

    def test_deleting_a_user_leaves_their_agents_without_owner(
        self, db: Session, commit_and_expire: Callable[[], None]
    ) -> None:
        owner = UserFactory(_session=db)
        agents = [AgentFactory(_session=db, owner=owner) for _ in range(3)]
        commit_and_expire()
        assert [agent.owner for agent in agents[:2]] == [owner, owner]
        assert agents[2].user_id == owner.id  # its `owner` is left unloaded

        db.delete(owner)
        db.flush()

        assert [(agent.user_id, agent.owner) for agent in agents] == [(None, None)] * 3
        agent_table = table_of(AgentRegistry)
        db.commit()
        assert count_rows(db, agent_table) == 3
        assert count_rows(db, agent_table, agent_table.c.user_id.is_not(None)) == 0

    def test_an_unloaded_owner_is_nulled_in_the_database(self, db: Session) -> None:
        owner = UserFactory()
        owner_id, agent_id = owner.id, AgentFactory(owner=owner).id
        db.commit()
        db.expunge_all()  # no agent is loaded: only the database can null the key

        db.delete(db.get_one(User, owner_id))
        db.commit()

        assert stored(db, AgentRegistry, "user_id", agent_id) is None

    def test_the_set_null_cases_cover_every_set_null_key(self) -> None:
        assert {case.key for case in SET_NULL_CASES} == foreign_keys_with("SET NULL")

    def test_the_restrict_cases_cover_every_restrict_key(self) -> None:
        assert {case.key for case in RESTRICT_CASES} == foreign_keys_with("RESTRICT", None)

    @pytest.mark.parametrize("case", SET_NULL_CASES, ids=lambda c: c.key)
    def test_set_null_reaches_the_database_and_loaded_objects(
        self, db: Session, commit_and_expire: Callable[[], None], case: KeyCase
    ) -> None:
        child, parent = case.build()
        parent_key = primary_key(parent)
        child_key = primary_key(child)
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
        self, db: Session, count_queries: QueryCounter, case: KeyCase
    ) -> None:
        child, parent = case.build()
        parent_key = primary_key(parent)
        child_key = primary_key(child)
        db.commit()

        db.delete(parent)
        with count_queries() as log, pytest.raises(IntegrityError) as error:
            db.flush()
        db.rollback()

        assert FOREIGN_KEY_VIOLATION in str(error.value).lower()
        assert not [sql for sql in log.statements if sql.upper().startswith("UPDATE")]
        assert stored(db, type(child), case.attribute, child_key) == parent_key
        assert getattr(child, case.attribute) == parent_key
