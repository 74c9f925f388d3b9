"""The ORM suite: every model of the domain contract in the README, its core
contract checked against the database, one class per model.

Each test asserts behaviour a caller relies on, and reads the database back
(a fresh SELECT, or an expired object) wherever the identity map could hide
the truth. The `db` fixture rolls back whatever a test writes, commits
included, so tests commit freely.

What cuts across the models has a module of its own in `unit/models/`: JSON,
enum and email columns, bounds, delete policies, indexes, `updated_at`, the
column rules' machinery (`test_validation.py`), the session hooks and the
backends' parity.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AccessType,
    AgentExecution,
    AgentFeedback,
    AgentRegistry,
    AgentStatus,
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
    normalize_email,
    team_members,
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
    EpisodeFactory,
    EpisodeSegmentFactory,
    TeamFactory,
    UserFactory,
    WorkflowExecutionFactory,
    WorkflowStepExecutionFactory,
    WorkspaceFactory,
)
from tests.harness import QueryCounter
from tests.unit.readback import (
    Reload,
    assert_bound_holds,
    assert_ordered_load,
    count_rows,
    is_utc,
    naive_utcnow,
    new_agent,
    new_step,
    reflected,
    stored,
    table_of,
)

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
        self, db: Session, commit_and_expire: Reload, given: Any
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

    def test_owner_and_user_agents_are_two_sides_of_one_key(self, db: Session) -> None:
        owner = UserFactory(_session=db)
        agent = AgentFactory(_session=db, owner=owner)

        assert agent.user_id == owner.id
        assert owner.agents == [agent]

    def test_repr_names_the_agent_and_its_status(self) -> None:
        agent = new_agent(status="intern")
        assert repr(agent) == f"<AgentRegistry {agent.id} 'Invoice reconciler' intern>"


class TestAgentExecutionModel:
    def test_defaults(self, db: Session, commit_and_expire: Reload) -> None:
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

    def test_unknown_agent_is_rejected_by_the_foreign_key(self, db: Session) -> None:
        db.add(AgentExecution(agent_id=str(uuid.uuid4())))
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            db.flush()

    def test_completion_fields_round_trip(self, db: Session, commit_and_expire: Reload) -> None:
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
    def test_defaults_and_relationships(self, db: Session, commit_and_expire: Reload) -> None:
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


# ==========================================================================
# Workflows
# ==========================================================================


class TestWorkflowExecutionModel:
    def test_defaults_and_uuid_primary_key(self, db: Session, commit_and_expire: Reload) -> None:
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
        self, db: Session, commit_and_expire: Reload, count_queries: QueryCounter
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
        assert stored(db, WorkflowStepExecution, "workflow_id", explicit.id) == "kept-as-given"

    def test_a_step_given_its_loaded_run_reads_nothing_back(
        self, db: Session, count_queries: QueryCounter
    ) -> None:
        run = WorkflowExecutionFactory(_session=db, workflow_id="quarter-close")
        step = new_step(execution=run, sequence_order=0)
        db.add(step)

        with count_queries(1) as log:  # the INSERT; the run's workflow_id is at hand
            db.flush()

        assert "INSERT INTO workflow_step_executions" in log.statements[0]
        assert step.workflow_id == "quarter-close"

    def test_a_step_without_a_run_fails_at_flush(self, db: Session) -> None:
        db.add(new_step(sequence_order=0))
        with pytest.raises(IntegrityError):
            db.flush()


# ==========================================================================
# Episodic memory
# ==========================================================================


class TestEpisodeModel:
    def test_defaults(self, db: Session, commit_and_expire: Reload) -> None:
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

    def test_segments_come_back_ordered_by_sequence_order(
        self, db: Session, commit_and_expire: Reload, count_queries: QueryCounter
    ) -> None:
        episode = EpisodeFactory(_session=db)
        for order in (3, 1, 2):
            EpisodeSegmentFactory(_session=db, episode=episode, sequence_order=order)
        commit_and_expire()

        with count_queries() as log:
            segments = list(episode.segments)

        assert [segment.sequence_order for segment in segments] == [1, 2, 3]
        assert_ordered_load(log, "episode_segments")

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
        assert_bound_holds(db, EpisodeFactory(**{field: good}), field, good, bad)

    def test_maturity_at_time_is_required(self, db: Session) -> None:
        agent, workspace = AgentFactory(), WorkspaceFactory()
        db.add(Episode(title="t", agent_id=agent.id, workspace_id=workspace.id))

        with pytest.raises(IntegrityError, match=r"(?i)maturity_at_time"):
            db.flush()

    def test_an_access_log_needs_only_its_episode_and_access_type(
        self, db: Session, commit_and_expire: Reload
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
    def test_defaults_and_parent(self, db: Session, commit_and_expire: Reload) -> None:
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


# ==========================================================================
# Tenancy
# ==========================================================================


class TestUserModel:
    @pytest.mark.parametrize(
        ("given", "normalised"),
        [
            ("  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
            ("Ada@Example.COM", "ada@example.com"),
            ("  bob@example.org ", "bob@example.org"),
        ],
    )
    def test_email_is_stored_trimmed_and_lower_cased(
        self, db: Session, commit_and_expire: Reload, given: str, normalised: str
    ) -> None:
        assert normalize_email(given) == normalised
        user = User(email=given, password_hash="hash")
        assert user.email == normalised
        db.add(user)
        commit_and_expire()

        assert stored(db, User, "email", user.id) == normalised

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

    def test_defaults_and_sso_user(self, db: Session, commit_and_expire: Reload) -> None:
        user = UserFactory(sso=True)
        commit_and_expire()

        assert user.password_hash is None
        assert user.role == UserRole.MEMBER
        assert user.status == UserStatus.ACTIVE
        assert user.email_verified is False
        assert user.preferences == {}
        assert user.last_login_at is None


class TestWorkspaceModel:
    def test_defaults(self, db: Session, commit_and_expire: Reload) -> None:
        workspace = Workspace(name="Acme")
        db.add(workspace)
        commit_and_expire()

        assert workspace.status == WorkspaceStatus.ACTIVE
        assert workspace.plan_tier == "standard"
        assert workspace.is_startup is False
        assert workspace.learning_phase_completed is False
        assert workspace.metadata_json == {}
        assert repr(workspace) == f"<Workspace {workspace.id} 'Acme'>"

    @pytest.mark.strict_loading(False, reason="loads each side's collection, one by one")
    def test_users_and_workspaces_are_many_to_many(
        self, db: Session, commit_and_expire: Reload
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


class TestTeamModel:
    def test_name_is_unique_within_a_workspace(self, db: Session) -> None:
        workspace = WorkspaceFactory(_session=db)
        TeamFactory(_session=db, workspace=workspace, name="Ops")
        TeamFactory(_session=db, name="Ops")  # another workspace: allowed
        db.add(Team(workspace_id=workspace.id, name="Ops"))

        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            db.flush()

    def test_members_are_many_to_many_with_membership_defaults(
        self, db: Session, commit_and_expire: Reload
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

    def test_repr_names_the_team(self) -> None:
        team = Team(name="Platform")
        assert repr(team) == f"<Team {team.id} 'Platform'>"


# ==========================================================================
# Governance
# ==========================================================================


class TestCanvasAuditModel:
    def test_defaults_and_relationships(self, db: Session, commit_and_expire: Reload) -> None:
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


class TestBlockedTriggerContextModel:
    def test_enums_defaults_and_agent_snapshot(
        self, db: Session, commit_and_expire: Reload
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


class TestAgentProposalModel:
    def test_defaults_lists_and_relationships(self, db: Session, commit_and_expire: Reload) -> None:
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


class TestLifecycleHooks:
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

    def test_naive_datetime_is_taken_as_utc(self, db: Session, commit_and_expire: Reload) -> None:
        naive = naive_utcnow()
        execution = AgentExecutionFactory(started_at=naive)
        assert execution.started_at == naive.replace(tzinfo=UTC)
        commit_and_expire()

        assert is_utc(execution.started_at)
        assert execution.started_at == naive.replace(tzinfo=UTC)

    def test_aware_datetime_is_converted_to_utc(
        self, db: Session, commit_and_expire: Reload
    ) -> None:
        paris_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        proposal = AgentProposalFactory(training_start_date=paris_noon)
        commit_and_expire()

        started = proposal.training_start_date
        assert started == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
        assert is_utc(started)
        assert started is not None
        assert started.tzinfo is UTC  # the same object, not merely an offset of zero


class TestFieldValidation:
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


class TestIndexConstraints:
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


class TestCascadeBehaviors:
    def test_deleting_a_workflow_execution_deletes_its_steps(
        self, db: Session, commit_and_expire: Reload
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
        self, db: Session, commit_and_expire: Reload
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
