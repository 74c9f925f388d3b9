"""The agent-governance domain: tenants, people, agents, runs and their audit.

Read top to bottom: enums, association tables, then the models by area
(tenancy, agents, workflows, episodes, governance), then the few session
hooks that keep loaded objects truthful. Columns are declared with the
vocabulary of `core.schema`; the README's "The domain" section is the
contract this module implements.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import (
    MANYTOONE,
    Mapped,
    Mapper,
    Session,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.attributes import set_committed_value

from core.schema import (
    Base,
    CreatedAt,
    JSONDict,
    JSONList,
    Now,
    Str20,
    Str36,
    Str50,
    Str100,
    Str255,
    Str500,
    UpdatedAt,
    UTCDateTime,
    UUIDPrimaryKey,
    defaulted,
    fk,
    new_uuid,
    utc_now,
)
from core.validation import ValidationError, bounds, normalized_by

# ==========================================================================
# Enums (stored as their value strings)
# ==========================================================================


class UserRole(StrEnum):
    SUPER_ADMIN = "super_admin"
    SECURITY_ADMIN = "security_admin"
    WORKSPACE_ADMIN = "workspace_admin"
    WORKFLOW_ADMIN = "workflow_admin"
    AUTOMATION_ADMIN = "automation_admin"
    INTEGRATION_ADMIN = "integration_admin"
    COMPLIANCE_ADMIN = "compliance_admin"
    TEAM_LEAD = "team_lead"
    MEMBER = "member"
    GUEST = "guest"


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    PENDING = "pending"
    DELETED = "deleted"


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TRIAL = "trial"
    EXPIRED = "expired"


class AgentStatus(StrEnum):
    """An agent's maturity (student -> autonomous), or why it does not run."""

    STUDENT = "student"
    INTERN = "intern"
    SUPERVISED = "supervised"
    AUTONOMOUS = "autonomous"
    PAUSED = "paused"
    DEPRECATED = "deprecated"


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FeedbackStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class WorkflowExecutionStatus(StrEnum):
    """Upper case by contract: shared by workflow executions and their steps."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


class EpisodeStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ARCHIVED = "archived"
    CONSOLIDATED = "consolidated"


class AccessType(StrEnum):
    RETRIEVAL = "retrieval"
    TEMPORAL = "temporal"
    SEMANTIC = "semantic"
    SEQUENTIAL = "sequential"
    CONTEXTUAL = "contextual"


class TriggerSource(StrEnum):
    MANUAL = "manual"
    DATA_SYNC = "data_sync"
    WORKFLOW_ENGINE = "workflow_engine"
    AI_COORDINATOR = "ai_coordinator"


class RoutingDecision(StrEnum):
    TRAINING = "training"
    PROPOSAL = "proposal"
    SUPERVISION = "supervision"
    EXECUTION = "execution"


class ProposalType(StrEnum):
    TRAINING = "training"
    ACTION = "action"
    ANALYSIS = "analysis"


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    CANCELLED = "cancelled"


# ==========================================================================
# Association tables
# ==========================================================================

user_workspaces = Table(
    "user_workspaces",
    Base.metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "workspace_id",
        String(36),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("role", String(50), nullable=False, default="member", server_default=text("'member'")),
    Column("joined_at", UTCDateTime(), nullable=False, default=utc_now, server_default=func.now()),
)

team_members = Table(
    "team_members",
    Base.metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "team_id",
        String(36),
        ForeignKey("teams.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("role", String(50), nullable=False, default="member", server_default=text("'member'")),
    Column("joined_at", UTCDateTime(), nullable=False, default=utc_now, server_default=func.now()),
)


# ==========================================================================
# Tenancy: workspaces, teams, users
# ==========================================================================


class Workspace(Base):
    """A tenant: every agent, episode and workflow belongs to one."""

    __tablename__ = "workspaces"

    id: Mapped[UUIDPrimaryKey]
    name: Mapped[Str255]
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[WorkspaceStatus] = defaulted(WorkspaceStatus.ACTIVE)
    plan_tier: Mapped[Str50] = defaulted("standard")
    industry: Mapped[Str100 | None]
    company_size: Mapped[Str50 | None]
    is_startup: Mapped[bool] = defaulted(False)
    learning_phase_completed: Mapped[bool] = defaulted(False)
    metadata_json: Mapped[JSONDict | None] = defaulted({})
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    users: Mapped[list[User]] = relationship(
        secondary=user_workspaces, back_populates="workspaces", passive_deletes=True
    )
    teams: Mapped[list[Team]] = relationship(
        back_populates="workspace", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Workspace {self.id} {self.name!r}>"


class Team(Base):
    """A group of users inside one workspace, with its own message thread."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[UUIDPrimaryKey]
    name: Mapped[Str255]
    description: Mapped[str | None] = mapped_column(Text)
    # Nullable with a default: `evaluates_none()` makes an explicit None an
    # SQL NULL, where the ORM would otherwise apply the default instead.
    team_type: Mapped[Str50 | None] = defaulted("general", type_=String(50).evaluates_none())
    # Indexed by the (workspace_id, name) unique constraint.
    workspace_id: Mapped[str] = fk("workspaces.id", ondelete="CASCADE", index=False)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    workspace: Mapped[Workspace] = relationship(back_populates="teams")
    members: Mapped[list[User]] = relationship(
        secondary=team_members, back_populates="teams", passive_deletes=True
    )
    messages: Mapped[list[TeamMessage]] = relationship(
        back_populates="team",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="TeamMessage.created_at",
    )

    def __repr__(self) -> str:
        return f"<Team {self.id} {self.name!r}>"


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str) -> str:
    """Trimmed and lower-cased; raises `ValidationError` if malformed."""
    if not isinstance(value, str):
        raise ValidationError("User.email", f"expected a string, got {value!r}")
    normalized = value.strip().lower()
    if not EMAIL_PATTERN.fullmatch(normalized):
        raise ValidationError(
            "User.email", f"{value!r} is not a valid email address (expected name@domain.tld)"
        )
    return normalized


class User(Base):
    """A person: member of workspaces and teams, owner of agents."""

    __tablename__ = "users"
    __table_args__ = (
        # Mirrors normalize_email for rows written with raw SQL.
        CheckConstraint(
            "email = lower(trim(email)) AND email LIKE '%_@_%._%' AND email NOT LIKE '%@%@%'"
            " AND email NOT LIKE '% %'",
            name="email_format",
        ),
    )

    id: Mapped[UUIDPrimaryKey]
    # Normalised (and checked) on every write path, like any column rule.
    email: Mapped[Str255] = mapped_column(unique=True, info=normalized_by(normalize_email))
    password_hash: Mapped[Str255 | None]
    first_name: Mapped[Str100 | None]
    last_name: Mapped[Str100 | None]
    role: Mapped[UserRole] = defaulted(UserRole.MEMBER)
    status: Mapped[UserStatus] = defaulted(UserStatus.ACTIVE)
    specialty: Mapped[Str100 | None]
    email_verified: Mapped[bool] = defaulted(False)
    preferences: Mapped[JSONDict | None] = defaulted({})
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    workspaces: Mapped[list[Workspace]] = relationship(
        secondary=user_workspaces, back_populates="users", passive_deletes=True
    )
    teams: Mapped[list[Team]] = relationship(
        secondary=team_members, back_populates="members", passive_deletes=True
    )
    # Messages are history: a user who wrote some cannot be hard-deleted.
    messages: Mapped[list[TeamMessage]] = relationship(
        back_populates="sender", passive_deletes="all"
    )
    agents: Mapped[list[AgentRegistry]] = relationship(back_populates="owner", passive_deletes=True)

    def __repr__(self) -> str:
        # Never the password hash.
        return f"<User {self.id} {self.email!r}>"


class TeamMessage(Base):
    """A message posted to a team, optionally about some other object."""

    __tablename__ = "team_messages"

    id: Mapped[UUIDPrimaryKey]
    team_id: Mapped[str] = fk("teams.id", ondelete="CASCADE")
    user_id: Mapped[str] = fk("users.id")
    content: Mapped[str] = mapped_column(Text)
    context_type: Mapped[Str50 | None]
    context_id: Mapped[Str36 | None]
    created_at: Mapped[CreatedAt]

    team: Mapped[Team] = relationship(back_populates="messages")
    sender: Mapped[User] = relationship(back_populates="messages")


# ==========================================================================
# Agents: registry, executions, feedback
# ==========================================================================


class AgentRegistry(Base):
    """A registered agent, its maturity and the confidence that earns it."""

    __tablename__ = "agent_registry"

    id: Mapped[UUIDPrimaryKey]
    name: Mapped[Str255]
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[Str100]
    module_path: Mapped[Str255]
    class_name: Mapped[Str255]
    user_id: Mapped[str | None] = fk("users.id", ondelete="SET NULL")
    workspace_id: Mapped[str | None] = fk("workspaces.id", ondelete="CASCADE")
    status: Mapped[AgentStatus] = defaulted(AgentStatus.STUDENT)
    confidence_score: Mapped[float] = defaulted(0.5, info=bounds(ge=0, le=1))
    required_role_for_autonomy: Mapped[UserRole] = defaulted(UserRole.TEAM_LEAD)
    version: Mapped[Str20] = defaulted("1.0.0")
    configuration: Mapped[JSONDict | None] = defaulted({})
    schedule_config: Mapped[JSONDict | None] = defaulted({})
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    owner: Mapped[User | None] = relationship(back_populates="agents")
    workspace: Mapped[Workspace | None] = relationship()
    # Audit history: the database refuses to delete an agent that has any;
    # passive_deletes="all" keeps the ORM from nulling the keys first.
    executions: Mapped[list[AgentExecution]] = relationship(
        back_populates="agent", passive_deletes="all"
    )
    feedback: Mapped[list[AgentFeedback]] = relationship(
        back_populates="agent", passive_deletes="all"
    )
    episodes: Mapped[list[Episode]] = relationship(back_populates="agent", passive_deletes="all")
    proposals: Mapped[list[AgentProposal]] = relationship(
        back_populates="agent", passive_deletes="all"
    )
    blocked_triggers: Mapped[list[BlockedTriggerContext]] = relationship(
        back_populates="agent", passive_deletes="all"
    )

    def __repr__(self) -> str:
        return f"<AgentRegistry {self.id} {self.name!r} {self.status}>"


class AgentExecution(Base):
    """One run of an agent."""

    __tablename__ = "agent_executions"
    __table_args__ = (Index(None, "agent_id", "started_at"),)

    id: Mapped[UUIDPrimaryKey]
    agent_id: Mapped[str] = fk("agent_registry.id", index=False)
    workspace_id: Mapped[str | None] = fk("workspaces.id", ondelete="SET NULL")
    status: Mapped[ExecutionStatus] = defaulted(ExecutionStatus.RUNNING)
    input_summary: Mapped[str | None] = mapped_column(Text)
    output_summary: Mapped[str | None] = mapped_column(Text)
    triggered_by: Mapped[Str50] = defaulted("manual")
    started_at: Mapped[Now]
    completed_at: Mapped[datetime | None]
    duration_seconds: Mapped[float] = defaulted(0.0, info=bounds(ge=0))
    result_summary: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)

    agent: Mapped[AgentRegistry] = relationship(back_populates="executions")
    feedback: Mapped[list[AgentFeedback]] = relationship(
        back_populates="execution", passive_deletes=True
    )
    canvas_audits: Mapped[list[CanvasAudit]] = relationship(
        back_populates="execution", passive_deletes=True
    )


class AgentFeedback(Base):
    """A person's rating or correction of an agent's output."""

    __tablename__ = "agent_feedback"

    id: Mapped[UUIDPrimaryKey]
    agent_id: Mapped[str] = fk("agent_registry.id")
    agent_execution_id: Mapped[str | None] = fk("agent_executions.id", ondelete="SET NULL")
    user_id: Mapped[str] = fk("users.id")
    episode_id: Mapped[str | None] = fk("episodes.id", ondelete="SET NULL")
    input_context: Mapped[str | None] = mapped_column(Text)
    original_output: Mapped[str] = mapped_column(Text)
    user_correction: Mapped[str] = mapped_column(Text)
    feedback_type: Mapped[Str50 | None]
    thumbs_up_down: Mapped[bool | None]
    rating: Mapped[int | None] = mapped_column(info=bounds(ge=1, le=5))
    status: Mapped[FeedbackStatus] = defaulted(FeedbackStatus.PENDING)
    ai_reasoning: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    adjudicated_at: Mapped[datetime | None]

    agent: Mapped[AgentRegistry] = relationship(back_populates="feedback")
    execution: Mapped[AgentExecution | None] = relationship(back_populates="feedback")
    user: Mapped[User] = relationship()
    episode: Mapped[Episode | None] = relationship(back_populates="feedback")


# ==========================================================================
# Workflows
# ==========================================================================


class WorkflowExecution(Base):
    """One run of a multi-step automation."""

    __tablename__ = "workflow_executions"

    execution_id: Mapped[UUIDPrimaryKey]
    workflow_id: Mapped[Str255] = mapped_column(index=True)
    status: Mapped[WorkflowExecutionStatus] = defaulted(WorkflowExecutionStatus.PENDING)
    input_data: Mapped[JSONDict | None]
    outputs: Mapped[JSONDict | None]
    context: Mapped[JSONDict | None]
    error: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = defaulted(1)
    user_id: Mapped[str | None] = fk("users.id", ondelete="SET NULL")
    workspace_id: Mapped[str | None] = fk("workspaces.id", ondelete="CASCADE")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    user: Mapped[User | None] = relationship()
    step_executions: Mapped[list[WorkflowStepExecution]] = relationship(
        back_populates="execution",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WorkflowStepExecution.sequence_order",
    )


class WorkflowStepExecution(Base):
    """One attempt at one step of a workflow run; a retry is another row."""

    __tablename__ = "workflow_step_executions"
    # Not unique: a retried step repeats its sequence_order.
    __table_args__ = (Index(None, "execution_id", "sequence_order"),)

    id: Mapped[UUIDPrimaryKey]
    execution_id: Mapped[str] = fk(
        "workflow_executions.execution_id", ondelete="CASCADE", index=False
    )
    # Filled from the parent run at flush when not given (see below).
    workflow_id: Mapped[Str255]
    step_id: Mapped[Str255]
    step_name: Mapped[Str255]
    step_type: Mapped[Str50]
    sequence_order: Mapped[int] = mapped_column(info=bounds(ge=0))
    status: Mapped[WorkflowExecutionStatus] = defaulted(WorkflowExecutionStatus.PENDING)
    input_data: Mapped[JSONDict | None]
    output_data: Mapped[JSONDict | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(info=bounds(ge=0))
    retry_count: Mapped[int] = defaulted(0)
    metadata_json: Mapped[JSONDict | None]
    created_at: Mapped[CreatedAt]

    execution: Mapped[WorkflowExecution] = relationship(back_populates="step_executions")


# ==========================================================================
# Episodic memory
# ==========================================================================


class Episode(Base):
    """A remembered stretch of an agent's work, for later retrieval."""

    __tablename__ = "episodes"

    id: Mapped[UUIDPrimaryKey]
    title: Mapped[Str500]
    description: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str] = fk("agent_registry.id")
    user_id: Mapped[str | None] = fk("users.id", ondelete="SET NULL")
    workspace_id: Mapped[str] = fk("workspaces.id", ondelete="CASCADE")
    session_id: Mapped[Str36 | None]
    execution_ids: Mapped[JSONList | None] = defaulted([])
    canvas_ids: Mapped[JSONList | None] = defaulted([])
    canvas_action_count: Mapped[int] = defaulted(0)
    feedback_ids: Mapped[JSONList | None] = defaulted([])
    aggregate_feedback_score: Mapped[float | None] = mapped_column(info=bounds(ge=-1, le=1))
    supervisor_id: Mapped[str | None] = fk("users.id", ondelete="SET NULL")
    supervisor_rating: Mapped[int | None] = mapped_column(info=bounds(ge=1, le=5))
    supervision_feedback: Mapped[str | None] = mapped_column(Text)
    intervention_count: Mapped[int] = defaulted(0)
    proposal_id: Mapped[str | None] = fk("agent_proposals.id", ondelete="SET NULL")
    proposal_outcome: Mapped[Str50 | None]
    started_at: Mapped[Now]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None]
    status: Mapped[EpisodeStatus] = defaulted(EpisodeStatus.ACTIVE)
    topics: Mapped[JSONList | None] = defaulted([])
    entities: Mapped[JSONList | None] = defaulted([])
    importance_score: Mapped[float] = defaulted(0.5, info=bounds(ge=0, le=1))
    maturity_at_time: Mapped[AgentStatus]
    human_intervention_count: Mapped[int] = defaulted(0)
    decay_score: Mapped[float] = defaulted(1.0, info=bounds(ge=0, le=1))
    access_count: Mapped[int] = defaulted(0)
    consolidated_into: Mapped[str | None] = fk("episodes.id", ondelete="SET NULL")
    archived_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    agent: Mapped[AgentRegistry] = relationship(back_populates="episodes")
    workspace: Mapped[Workspace] = relationship()
    proposal: Mapped[AgentProposal | None] = relationship(back_populates="episodes")
    segments: Mapped[list[EpisodeSegment]] = relationship(
        back_populates="episode",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="EpisodeSegment.sequence_order",
    )
    access_logs: Mapped[list[EpisodeAccessLog]] = relationship(
        back_populates="episode", cascade="all, delete-orphan", passive_deletes=True
    )
    feedback: Mapped[list[AgentFeedback]] = relationship(
        back_populates="episode", passive_deletes=True
    )


class EpisodeSegment(Base):
    """One ordered piece of an episode: a turn, an action, a reflection."""

    __tablename__ = "episode_segments"
    __table_args__ = (Index(None, "episode_id", "sequence_order"),)

    id: Mapped[UUIDPrimaryKey]
    episode_id: Mapped[str] = fk("episodes.id", ondelete="CASCADE", index=False)
    segment_type: Mapped[Str50]
    sequence_order: Mapped[int] = mapped_column(info=bounds(ge=0))
    content: Mapped[str] = mapped_column(Text)
    content_summary: Mapped[str | None] = mapped_column(Text)
    source_type: Mapped[Str50] = defaulted("manual")
    source_id: Mapped[Str36 | None]
    created_at: Mapped[CreatedAt]

    episode: Mapped[Episode] = relationship(back_populates="segments")


class EpisodeAccessLog(Base):
    """An audit record of who (or which agent) read an episode, and how."""

    __tablename__ = "episode_access_logs"

    id: Mapped[UUIDPrimaryKey]
    episode_id: Mapped[str] = fk("episodes.id", ondelete="CASCADE")
    accessed_by: Mapped[str | None] = fk("users.id", ondelete="SET NULL")
    accessed_by_agent: Mapped[str | None] = fk("agent_registry.id", ondelete="SET NULL")
    access_type: Mapped[AccessType]
    retrieval_query: Mapped[str | None] = mapped_column(Text)
    retrieval_mode: Mapped[Str50 | None]
    governance_check_passed: Mapped[bool] = defaulted(True)
    agent_maturity_at_access: Mapped[Str20 | None]
    results_count: Mapped[int] = defaulted(0)
    access_duration_ms: Mapped[int | None]
    created_at: Mapped[CreatedAt]

    episode: Mapped[Episode] = relationship(back_populates="access_logs")


# ==========================================================================
# Governance: canvas audit, blocked triggers, proposals
# ==========================================================================


class CanvasAudit(Base):
    """An audited action on a UI canvas an agent presented."""

    __tablename__ = "canvas_audit"

    id: Mapped[UUIDPrimaryKey]
    workspace_id: Mapped[str | None] = fk("workspaces.id", ondelete="SET NULL")
    agent_id: Mapped[str | None] = fk("agent_registry.id", ondelete="SET NULL")
    agent_execution_id: Mapped[str | None] = fk("agent_executions.id", ondelete="SET NULL")
    user_id: Mapped[str] = fk("users.id")
    canvas_id: Mapped[Str36 | None]
    session_id: Mapped[Str36 | None]
    canvas_type: Mapped[Str50] = defaulted("generic")
    component_type: Mapped[Str50]
    component_name: Mapped[Str255 | None]
    action: Mapped[Str50]
    audit_metadata: Mapped[JSONDict | None] = defaulted({})
    governance_check_passed: Mapped[bool | None]
    episode_id: Mapped[str | None] = fk("episodes.id", ondelete="SET NULL")
    created_at: Mapped[CreatedAt]

    agent: Mapped[AgentRegistry | None] = relationship()
    execution: Mapped[AgentExecution | None] = relationship(back_populates="canvas_audits")
    user: Mapped[User] = relationship()
    episode: Mapped[Episode | None] = relationship()


class BlockedTriggerContext(Base):
    """A trigger the maturity guard stopped, and where it was routed instead."""

    __tablename__ = "blocked_triggers"
    __table_args__ = (Index(None, "agent_id", "resolved"),)

    id: Mapped[UUIDPrimaryKey]
    agent_id: Mapped[str] = fk("agent_registry.id", index=False)
    agent_name: Mapped[Str255]
    agent_maturity_at_block: Mapped[AgentStatus]
    confidence_score_at_block: Mapped[float] = mapped_column(info=bounds(ge=0, le=1))
    trigger_source: Mapped[TriggerSource]
    trigger_type: Mapped[Str100]
    trigger_context: Mapped[JSONDict] = defaulted({})
    routing_decision: Mapped[RoutingDecision]
    block_reason: Mapped[str] = mapped_column(Text)
    proposal_id: Mapped[str | None] = fk("agent_proposals.id", ondelete="SET NULL")
    resolved: Mapped[bool] = defaulted(False)
    resolved_at: Mapped[datetime | None]
    resolution_outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]

    agent: Mapped[AgentRegistry] = relationship(back_populates="blocked_triggers")
    proposal: Mapped[AgentProposal | None] = relationship(back_populates="blocked_triggers")


class AgentProposal(Base):
    """Something an agent proposes to do or learn, awaiting a human decision."""

    __tablename__ = "agent_proposals"
    __table_args__ = (Index(None, "status", "created_at"),)

    id: Mapped[UUIDPrimaryKey]
    agent_id: Mapped[str] = fk("agent_registry.id")
    agent_name: Mapped[Str255]
    proposal_type: Mapped[ProposalType]
    title: Mapped[Str500]
    description: Mapped[str] = mapped_column(Text)
    proposed_action: Mapped[JSONDict | None]
    reasoning: Mapped[str | None] = mapped_column(Text)
    learning_objectives: Mapped[JSONList | None]
    capability_gaps: Mapped[JSONList | None]
    training_scenario_template: Mapped[Str100 | None]
    estimated_duration_hours: Mapped[float | None] = mapped_column(info=bounds(gt=0))
    duration_estimation_confidence: Mapped[float | None] = mapped_column(info=bounds(ge=0, le=1))
    user_override_duration_hours: Mapped[float | None] = mapped_column(info=bounds(gt=0))
    hours_per_day_limit: Mapped[float | None] = mapped_column(info=bounds(gt=0, le=24))
    training_start_date: Mapped[datetime | None]
    training_end_date: Mapped[datetime | None]
    status: Mapped[ProposalStatus] = defaulted(ProposalStatus.PROPOSED)
    proposed_by: Mapped[Str255]
    approved_by: Mapped[str | None] = fk("users.id", ondelete="SET NULL")
    approved_at: Mapped[datetime | None]
    modifications: Mapped[JSONDict | None]
    execution_result: Mapped[JSONDict | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    # Optimistic lock, for the governance layer: every UPDATE checks and
    # bumps it, so of two sessions deciding on the same proposal only the
    # first to commit wins.
    version: Mapped[int] = defaulted(1)
    __mapper_args__ = {"version_id_col": version}

    agent: Mapped[AgentRegistry] = relationship(back_populates="proposals")
    approver: Mapped[User | None] = relationship()
    blocked_triggers: Mapped[list[BlockedTriggerContext]] = relationship(
        back_populates="proposal", passive_deletes=True
    )
    episodes: Mapped[list[Episode]] = relationship(back_populates="proposal", passive_deletes=True)


# ==========================================================================
# Hooks that keep loaded objects in step with the database
# ==========================================================================


def _find_constructor_defaults(model: type[Base]) -> tuple[tuple[str, Callable[[], Any]], ...]:
    found = []
    for column in inspect(model).columns:
        if column.key and column.info.get("uuid"):
            found.append((column.key, new_uuid))
        elif column.key and "constructor_default" in column.info:
            found.append((column.key, column.info["constructor_default"]))
    return tuple(found)


_constructor_defaults = cache(_find_constructor_defaults)


def _apply_constructor_defaults(target: Base, _args: Any, kwargs: dict[str, Any]) -> None:
    """Defaults that must exist before flush: the uuid, so `obj.id` can be used
    at once, and fresh `{}`/`[]` containers for JSON columns."""
    for key, make_default in _constructor_defaults(type(target)):
        # `id=None` still gets a uuid; `configuration=None` stays SQL NULL.
        if key not in kwargs or (kwargs[key] is None and make_default is new_uuid):
            kwargs[key] = make_default()


event.listen(Base, "init", _apply_constructor_defaults, propagate=True)


def _copy_workflow_id_from_run(
    _mapper: Mapper[Any], connection: Connection, step: WorkflowStepExecution
) -> None:
    """A step repeats its run's workflow_id; fill it in when the caller did not."""
    if step.workflow_id is not None:
        return
    run = step.__dict__.get("execution")
    if run is not None:
        step.workflow_id = run.workflow_id
    elif step.execution_id is not None:
        runs = WorkflowExecution.__table__
        step.workflow_id = connection.scalar(
            select(runs.c.workflow_id).where(runs.c.execution_id == step.execution_id)
        )


event.listen(WorkflowStepExecution, "before_insert", _copy_workflow_id_from_run)


# --------------------------------------------------------------------------
# ON DELETE SET NULL, mirrored onto loaded objects
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _SetNullKey:
    """One ON DELETE SET NULL foreign key: `model.attribute` holds column
    `position` of the primary key of the row it points at."""

    model: type[Base]
    attribute: str
    position: int
    # The many-to-one relationships of `model` that go through this key.
    relationships: tuple[str, ...]


def _find_set_null_keys(target: type[Base]) -> tuple[_SetNullKey, ...]:
    """Every ON DELETE SET NULL key, of any model, that points at `target`'s table."""
    target_mapper = inspect(target)
    found = []
    for mapper in Base.registry.mappers:
        for column in mapper.local_table.columns:
            for foreign_key in column.foreign_keys:
                if foreign_key.ondelete != "SET NULL":
                    continue
                if foreign_key.column.table is not target_mapper.local_table:
                    continue
                # Every such key here points at a primary key; one that did
                # not would fail here, at its first delete, not be mirrored wrong.
                position = list(target_mapper.primary_key).index(foreign_key.column)
                relationships = tuple(
                    relationship.key
                    for relationship in mapper.relationships
                    if relationship.direction is MANYTOONE and column in relationship.local_columns
                )
                attribute = mapper.get_property_by_column(column).key
                found.append(_SetNullKey(mapper.class_, attribute, position, relationships))
    return tuple(found)


_set_null_keys = cache(_find_set_null_keys)


class _LoadedHolders:
    """The session's loaded objects, by the value each SET NULL key of theirs holds.

    Built for one flush, from the identity map as its first delete finds it,
    so a flush that deletes many rows reads the identity map once, not once
    per deleted row. A key's index is built when a row it points at is first
    deleted: by then the flush has written every object that holds that key
    through a relationship (the unit of work saves them before it deletes
    what they point at), so the values indexed are the ones the database has.
    """

    def __init__(self, session: Session) -> None:
        # The objects themselves, not their states: held for the flush, none
        # can be collected between this pass and the delete that nulls it.
        self._by_class: dict[type[Any], list[Any]] = defaultdict(list)
        for obj in session.identity_map.values():
            self._by_class[type(obj)].append(obj)
        self._by_key: dict[_SetNullKey, dict[Any, list[Any]]] = {}

    def take(self, key: _SetNullKey, value: Any) -> list[Any]:
        """The loaded objects whose `key` holds `value`; each is given out once."""
        holders = self._by_key.get(key)
        if holders is None:
            holders = self._by_key[key] = defaultdict(list)
            for cls, objects in self._by_class.items():
                if issubclass(cls, key.model):
                    for obj in objects:
                        held = obj.__dict__.get(key.attribute)
                        if held is not None:
                            holders[held].append(obj)
        return holders.pop(value, [])


# One per session with a flush under way; weak, so a session is never kept alive.
_HOLDERS: WeakKeyDictionary[Session, _LoadedHolders] = WeakKeyDictionary()


def _forget_loaded_holders(session: Session, *_: Any) -> None:
    # Before every flush, too: a flush that failed never reached its
    # postexec, and what it indexed is stale.
    _HOLDERS.pop(session, None)


event.listen(Session, "before_flush", _forget_loaded_holders)
event.listen(Session, "after_flush_postexec", _forget_loaded_holders)


def _mirror_on_delete_set_null(_mapper: Mapper[Any], _conn: Connection, deleted: Base) -> None:
    """The database nulls SET NULL keys on delete; do the same to loaded objects.

    Without this, an agent loaded before its owner was deleted would still
    report the old `user_id` until it is expired. A loaded many-to-one
    relationship through the key is set to None too; one not loaded is left
    for the next access to load (as None). The cost is one pass over the
    identity map per flush, plus the objects that hold a deleted row's key.
    """
    keys = _set_null_keys(type(deleted))
    state = inspect(deleted)
    # The deleted row's primary key comes from its identity: reading an
    # attribute could try to load it from a row that no longer exists.
    session, identity = state.session, state.identity
    if not keys or session is None or identity is None:
        return
    holders = _HOLDERS.get(session)
    if holders is None:
        holders = _HOLDERS[session] = _LoadedHolders(session)
    for key in keys:
        for holder in holders.take(key, identity[key.position]):
            set_committed_value(holder, key.attribute, None)
            for name in key.relationships:
                if name in holder.__dict__:
                    set_committed_value(holder, name, None)


event.listen(Base, "after_delete", _mirror_on_delete_set_null, propagate=True)


__all__ = [
    "AccessType",
    "AgentExecution",
    "AgentFeedback",
    "AgentProposal",
    "AgentRegistry",
    "AgentStatus",
    "Base",
    "BlockedTriggerContext",
    "CanvasAudit",
    "Episode",
    "EpisodeAccessLog",
    "EpisodeSegment",
    "EpisodeStatus",
    "ExecutionStatus",
    "FeedbackStatus",
    "ProposalStatus",
    "ProposalType",
    "RoutingDecision",
    "Team",
    "TeamMessage",
    "TriggerSource",
    "User",
    "UserRole",
    "UserStatus",
    "ValidationError",
    "WorkflowExecution",
    "WorkflowExecutionStatus",
    "WorkflowStepExecution",
    "Workspace",
    "WorkspaceStatus",
    "normalize_email",
    "team_members",
    "user_workspaces",
]
