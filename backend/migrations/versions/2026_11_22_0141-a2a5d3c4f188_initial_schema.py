"""Initial schema: every table of the domain, its indexes, CHECKs and foreign keys.

Revision ID: a2a5d3c4f188
Revises:
Create Date: 2026-11-22 01:41:26.600317
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

# Revisions are frozen history: they import no model and nothing from core.
revision: str = "a2a5d3c4f188"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every timestamp column: on MariaDB a DATETIME with microseconds (a plain
# DATETIME drops them), as the models' UTCDateTime makes it there.
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "super_admin",
                "security_admin",
                "workspace_admin",
                "workflow_admin",
                "automation_admin",
                "integration_admin",
                "compliance_admin",
                "team_lead",
                "member",
                "guest",
                name="userrole",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'member'"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "suspended",
                "pending",
                "deleted",
                name="userstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'active'"),
            nullable=False,
        ),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("email_verified", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "preferences",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("last_login_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "email = lower(trim(email)) AND email LIKE '%_@_%._%' AND email NOT LIKE '% %'",
            name=op.f("ck_users_email_format"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "suspended",
                "trial",
                "expired",
                name="workspacestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'active'"),
            nullable=False,
        ),
        sa.Column(
            "plan_tier", sa.String(length=50), server_default=sa.text("'standard'"), nullable=False
        ),
        sa.Column("industry", sa.String(length=100), nullable=True),
        sa.Column("company_size", sa.String(length=50), nullable=True),
        sa.Column("is_startup", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "learning_phase_completed", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.Column(
            "metadata_json",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
    )
    op.create_table(
        "agent_registry",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("module_path", sa.String(length=255), nullable=False),
        sa.Column("class_name", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "student",
                "intern",
                "supervised",
                "autonomous",
                "paused",
                "deprecated",
                name="agentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'student'"),
            nullable=False,
        ),
        sa.Column("confidence_score", sa.Double(), server_default=sa.text("(0.5)"), nullable=False),
        sa.Column(
            "required_role_for_autonomy",
            sa.Enum(
                "super_admin",
                "security_admin",
                "workspace_admin",
                "workflow_admin",
                "automation_admin",
                "integration_admin",
                "compliance_admin",
                "team_lead",
                "member",
                "guest",
                name="userrole",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'team_lead'"),
            nullable=False,
        ),
        sa.Column(
            "version", sa.String(length=20), server_default=sa.text("'1.0.0'"), nullable=False
        ),
        sa.Column(
            "configuration",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "schedule_config",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "confidence_score >= 0 AND confidence_score <= 1",
            name=op.f("ck_agent_registry_confidence_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_registry_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_agent_registry_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_registry")),
    )
    op.create_index(op.f("ix_agent_registry_user_id"), "agent_registry", ["user_id"])
    op.create_index(op.f("ix_agent_registry_workspace_id"), "agent_registry", ["workspace_id"])

    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "team_type", sa.String(length=50), server_default=sa.text("'general'"), nullable=True
        ),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_teams_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_teams_workspace_id_name")),
    )
    op.create_table(
        "user_workspaces",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=50), server_default=sa.text("'member'"), nullable=False),
        sa.Column("joined_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_workspaces_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_user_workspaces_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "workspace_id", name=op.f("pk_user_workspaces")),
    )
    op.create_index(op.f("ix_user_workspaces_workspace_id"), "user_workspaces", ["workspace_id"])

    op.create_table(
        "workflow_executions",
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "RUNNING",
                "COMPLETED",
                "FAILED",
                "PAUSED",
                "CANCELLED",
                "SKIPPED",
                name="workflowexecutionstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'PENDING'"),
            nullable=False,
        ),
        sa.Column(
            "input_data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "outputs",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "context",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_workflow_executions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workflow_executions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_workflow_executions")),
    )
    op.create_index(op.f("ix_workflow_executions_user_id"), "workflow_executions", ["user_id"])
    op.create_index(
        op.f("ix_workflow_executions_workflow_id"), "workflow_executions", ["workflow_id"]
    )
    op.create_index(
        op.f("ix_workflow_executions_workspace_id"), "workflow_executions", ["workspace_id"]
    )

    op.create_table(
        "agent_executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "completed",
                "failed",
                "cancelled",
                name="executionstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'running'"),
            nullable=False,
        ),
        sa.Column("input_summary", sa.Text(), nullable=True),
        sa.Column("output_summary", sa.Text(), nullable=True),
        sa.Column(
            "triggered_by", sa.String(length=50), server_default=sa.text("'manual'"), nullable=False
        ),
        sa.Column("started_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("duration_seconds", sa.Double(), server_default=sa.text("(0.0)"), nullable=False),
        sa.Column("result_summary", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "duration_seconds >= 0", name=op.f("ck_agent_executions_duration_seconds_range")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent_registry.id"],
            name=op.f("fk_agent_executions_agent_id_agent_registry"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_agent_executions_workspace_id_workspaces"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_executions")),
    )
    op.create_index(
        op.f("ix_agent_executions_agent_id_started_at"),
        "agent_executions",
        ["agent_id", "started_at"],
    )
    op.create_index(op.f("ix_agent_executions_workspace_id"), "agent_executions", ["workspace_id"])

    op.create_table(
        "agent_proposals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("agent_name", sa.String(length=255), nullable=False),
        sa.Column(
            "proposal_type",
            sa.Enum(
                "training",
                "action",
                "analysis",
                name="proposaltype",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "proposed_action",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column(
            "learning_objectives",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "capability_gaps",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("training_scenario_template", sa.String(length=100), nullable=True),
        sa.Column("estimated_duration_hours", sa.Double(), nullable=True),
        sa.Column("duration_estimation_confidence", sa.Double(), nullable=True),
        sa.Column("user_override_duration_hours", sa.Double(), nullable=True),
        sa.Column("hours_per_day_limit", sa.Double(), nullable=True),
        sa.Column("training_start_date", TIMESTAMP, nullable=True),
        sa.Column("training_end_date", TIMESTAMP, nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "proposed",
                "approved",
                "rejected",
                "executed",
                "cancelled",
                name="proposalstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'proposed'"),
            nullable=False,
        ),
        sa.Column("proposed_by", sa.String(length=255), nullable=False),
        sa.Column("approved_by", sa.String(length=36), nullable=True),
        sa.Column("approved_at", TIMESTAMP, nullable=True),
        sa.Column(
            "modifications",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "execution_result",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "duration_estimation_confidence >= 0 AND duration_estimation_confidence <= 1",
            name=op.f("ck_agent_proposals_duration_estimation_confidence_range"),
        ),
        sa.CheckConstraint(
            "estimated_duration_hours > 0",
            name=op.f("ck_agent_proposals_estimated_duration_hours_range"),
        ),
        sa.CheckConstraint(
            "hours_per_day_limit > 0 AND hours_per_day_limit <= 24",
            name=op.f("ck_agent_proposals_hours_per_day_limit_range"),
        ),
        sa.CheckConstraint(
            "user_override_duration_hours > 0",
            name=op.f("ck_agent_proposals_user_override_duration_hours_range"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent_registry.id"],
            name=op.f("fk_agent_proposals_agent_id_agent_registry"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["approved_by"],
            ["users.id"],
            name=op.f("fk_agent_proposals_approved_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_proposals")),
    )
    op.create_index(op.f("ix_agent_proposals_agent_id"), "agent_proposals", ["agent_id"])
    op.create_index(op.f("ix_agent_proposals_approved_by"), "agent_proposals", ["approved_by"])
    op.create_index(
        op.f("ix_agent_proposals_status_created_at"), "agent_proposals", ["status", "created_at"]
    )

    op.create_table(
        "team_members",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=50), server_default=sa.text("'member'"), nullable=False),
        sa.Column("joined_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_team_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "team_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_team_id"), "team_members", ["team_id"])

    op.create_table(
        "team_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("context_type", sa.String(length=50), nullable=True),
        sa.Column("context_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_messages_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_team_messages_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_messages")),
    )
    op.create_index(op.f("ix_team_messages_team_id"), "team_messages", ["team_id"])
    op.create_index(op.f("ix_team_messages_user_id"), "team_messages", ["user_id"])

    op.create_table(
        "workflow_step_executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("step_id", sa.String(length=255), nullable=False),
        sa.Column("step_name", sa.String(length=255), nullable=False),
        sa.Column("step_type", sa.String(length=50), nullable=False),
        sa.Column("sequence_order", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "RUNNING",
                "COMPLETED",
                "FAILED",
                "PAUSED",
                "CANCELLED",
                "SKIPPED",
                name="workflowexecutionstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'PENDING'"),
            nullable=False,
        ),
        sa.Column(
            "input_data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "output_data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "metadata_json",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "duration_ms >= 0", name=op.f("ck_workflow_step_executions_duration_ms_range")
        ),
        sa.CheckConstraint(
            "sequence_order >= 0", name=op.f("ck_workflow_step_executions_sequence_order_range")
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.execution_id"],
            name=op.f("fk_workflow_step_executions_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_step_executions")),
    )
    op.create_index(
        op.f("ix_workflow_step_executions_execution_id_sequence_order"),
        "workflow_step_executions",
        ["execution_id", "sequence_order"],
    )

    op.create_table(
        "blocked_triggers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("agent_name", sa.String(length=255), nullable=False),
        sa.Column(
            "agent_maturity_at_block",
            sa.Enum(
                "student",
                "intern",
                "supervised",
                "autonomous",
                "paused",
                "deprecated",
                name="agentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("confidence_score_at_block", sa.Double(), nullable=False),
        sa.Column(
            "trigger_source",
            sa.Enum(
                "manual",
                "data_sync",
                "workflow_engine",
                "ai_coordinator",
                name="triggersource",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("trigger_type", sa.String(length=100), nullable=False),
        sa.Column(
            "trigger_context",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "routing_decision",
            sa.Enum(
                "training",
                "proposal",
                "supervision",
                "execution",
                name="routingdecision",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("block_reason", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=True),
        sa.Column("resolved", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("resolution_outcome", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "confidence_score_at_block >= 0 AND confidence_score_at_block <= 1",
            name=op.f("ck_blocked_triggers_confidence_score_at_block_range"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent_registry.id"],
            name=op.f("fk_blocked_triggers_agent_id_agent_registry"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["agent_proposals.id"],
            name=op.f("fk_blocked_triggers_proposal_id_agent_proposals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocked_triggers")),
    )
    op.create_index(
        op.f("ix_blocked_triggers_agent_id_resolved"), "blocked_triggers", ["agent_id", "resolved"]
    )
    op.create_index(op.f("ix_blocked_triggers_proposal_id"), "blocked_triggers", ["proposal_id"])

    op.create_table(
        "episodes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column(
            "execution_ids",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "canvas_ids",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("canvas_action_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "feedback_ids",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("aggregate_feedback_score", sa.Double(), nullable=True),
        sa.Column("supervisor_id", sa.String(length=36), nullable=True),
        sa.Column("supervisor_rating", sa.Integer(), nullable=True),
        sa.Column("supervision_feedback", sa.Text(), nullable=True),
        sa.Column("intervention_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=True),
        sa.Column("proposal_outcome", sa.String(length=50), nullable=True),
        sa.Column("started_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "completed",
                "archived",
                "consolidated",
                name="episodestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'active'"),
            nullable=False,
        ),
        sa.Column(
            "topics",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "entities",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("importance_score", sa.Double(), server_default=sa.text("(0.5)"), nullable=False),
        sa.Column(
            "maturity_at_time",
            sa.Enum(
                "student",
                "intern",
                "supervised",
                "autonomous",
                "paused",
                "deprecated",
                name="agentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "human_intervention_count", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("decay_score", sa.Double(), server_default=sa.text("(1.0)"), nullable=False),
        sa.Column("access_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("consolidated_into", sa.String(length=36), nullable=True),
        sa.Column("archived_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "aggregate_feedback_score >= -1 AND aggregate_feedback_score <= 1",
            name=op.f("ck_episodes_aggregate_feedback_score_range"),
        ),
        sa.CheckConstraint(
            "decay_score >= 0 AND decay_score <= 1", name=op.f("ck_episodes_decay_score_range")
        ),
        sa.CheckConstraint(
            "importance_score >= 0 AND importance_score <= 1",
            name=op.f("ck_episodes_importance_score_range"),
        ),
        sa.CheckConstraint(
            "supervisor_rating >= 1 AND supervisor_rating <= 5",
            name=op.f("ck_episodes_supervisor_rating_range"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent_registry.id"],
            name=op.f("fk_episodes_agent_id_agent_registry"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["consolidated_into"],
            ["episodes.id"],
            name=op.f("fk_episodes_consolidated_into_episodes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["agent_proposals.id"],
            name=op.f("fk_episodes_proposal_id_agent_proposals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["supervisor_id"],
            ["users.id"],
            name=op.f("fk_episodes_supervisor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_episodes_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_episodes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodes")),
    )
    op.create_index(op.f("ix_episodes_agent_id"), "episodes", ["agent_id"])
    op.create_index(op.f("ix_episodes_consolidated_into"), "episodes", ["consolidated_into"])
    op.create_index(op.f("ix_episodes_proposal_id"), "episodes", ["proposal_id"])
    op.create_index(op.f("ix_episodes_supervisor_id"), "episodes", ["supervisor_id"])
    op.create_index(op.f("ix_episodes_user_id"), "episodes", ["user_id"])
    op.create_index(op.f("ix_episodes_workspace_id"), "episodes", ["workspace_id"])

    op.create_table(
        "agent_feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("agent_execution_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("episode_id", sa.String(length=36), nullable=True),
        sa.Column("input_context", sa.Text(), nullable=True),
        sa.Column("original_output", sa.Text(), nullable=False),
        sa.Column("user_correction", sa.Text(), nullable=False),
        sa.Column("feedback_type", sa.String(length=50), nullable=True),
        sa.Column("thumbs_up_down", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "rejected",
                name="feedbackstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("ai_reasoning", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("adjudicated_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "rating >= 1 AND rating <= 5", name=op.f("ck_agent_feedback_rating_range")
        ),
        sa.ForeignKeyConstraint(
            ["agent_execution_id"],
            ["agent_executions.id"],
            name=op.f("fk_agent_feedback_agent_execution_id_agent_executions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent_registry.id"],
            name=op.f("fk_agent_feedback_agent_id_agent_registry"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_agent_feedback_episode_id_episodes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_feedback_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_feedback")),
    )
    op.create_index(
        op.f("ix_agent_feedback_agent_execution_id"), "agent_feedback", ["agent_execution_id"]
    )
    op.create_index(op.f("ix_agent_feedback_agent_id"), "agent_feedback", ["agent_id"])
    op.create_index(op.f("ix_agent_feedback_episode_id"), "agent_feedback", ["episode_id"])
    op.create_index(op.f("ix_agent_feedback_user_id"), "agent_feedback", ["user_id"])

    op.create_table(
        "canvas_audit",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=True),
        sa.Column("agent_id", sa.String(length=36), nullable=True),
        sa.Column("agent_execution_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("canvas_id", sa.String(length=36), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column(
            "canvas_type", sa.String(length=50), server_default=sa.text("'generic'"), nullable=False
        ),
        sa.Column("component_type", sa.String(length=50), nullable=False),
        sa.Column("component_name", sa.String(length=255), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column(
            "audit_metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("governance_check_passed", sa.Boolean(), nullable=True),
        sa.Column("episode_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_execution_id"],
            ["agent_executions.id"],
            name=op.f("fk_canvas_audit_agent_execution_id_agent_executions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agent_registry.id"],
            name=op.f("fk_canvas_audit_agent_id_agent_registry"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_canvas_audit_episode_id_episodes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_canvas_audit_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_canvas_audit_workspace_id_workspaces"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canvas_audit")),
    )
    op.create_index(
        op.f("ix_canvas_audit_agent_execution_id"), "canvas_audit", ["agent_execution_id"]
    )
    op.create_index(op.f("ix_canvas_audit_agent_id"), "canvas_audit", ["agent_id"])
    op.create_index(op.f("ix_canvas_audit_episode_id"), "canvas_audit", ["episode_id"])
    op.create_index(op.f("ix_canvas_audit_user_id"), "canvas_audit", ["user_id"])
    op.create_index(op.f("ix_canvas_audit_workspace_id"), "canvas_audit", ["workspace_id"])

    op.create_table(
        "episode_access_logs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("episode_id", sa.String(length=36), nullable=False),
        sa.Column("accessed_by", sa.String(length=36), nullable=True),
        sa.Column("accessed_by_agent", sa.String(length=36), nullable=True),
        sa.Column(
            "access_type",
            sa.Enum(
                "retrieval",
                "temporal",
                "semantic",
                "sequential",
                "contextual",
                name="accesstype",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("retrieval_query", sa.Text(), nullable=True),
        sa.Column("retrieval_mode", sa.String(length=50), nullable=True),
        sa.Column(
            "governance_check_passed", sa.Boolean(), server_default=sa.true(), nullable=False
        ),
        sa.Column("agent_maturity_at_access", sa.String(length=20), nullable=True),
        sa.Column("results_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("access_duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["accessed_by"],
            ["users.id"],
            name=op.f("fk_episode_access_logs_accessed_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["accessed_by_agent"],
            ["agent_registry.id"],
            name=op.f("fk_episode_access_logs_accessed_by_agent_agent_registry"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_episode_access_logs_episode_id_episodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episode_access_logs")),
    )
    op.create_index(
        op.f("ix_episode_access_logs_accessed_by"), "episode_access_logs", ["accessed_by"]
    )
    op.create_index(
        op.f("ix_episode_access_logs_accessed_by_agent"),
        "episode_access_logs",
        ["accessed_by_agent"],
    )
    op.create_index(
        op.f("ix_episode_access_logs_episode_id"), "episode_access_logs", ["episode_id"]
    )

    op.create_table(
        "episode_segments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("episode_id", sa.String(length=36), nullable=False),
        sa.Column("segment_type", sa.String(length=50), nullable=False),
        sa.Column("sequence_order", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_summary", sa.Text(), nullable=True),
        sa.Column(
            "source_type", sa.String(length=50), server_default=sa.text("'manual'"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "sequence_order >= 0", name=op.f("ck_episode_segments_sequence_order_range")
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_episode_segments_episode_id_episodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episode_segments")),
    )
    op.create_index(
        op.f("ix_episode_segments_episode_id_sequence_order"),
        "episode_segments",
        ["episode_id", "sequence_order"],
    )


def downgrade() -> None:
    op.drop_table("episode_segments")
    op.drop_table("episode_access_logs")
    op.drop_table("canvas_audit")
    op.drop_table("agent_feedback")
    op.drop_table("episodes")
    op.drop_table("blocked_triggers")
    op.drop_table("workflow_step_executions")
    op.drop_table("team_messages")
    op.drop_table("team_members")
    op.drop_table("agent_proposals")
    op.drop_table("agent_executions")
    op.drop_table("workflow_executions")
    op.drop_table("user_workspaces")
    op.drop_table("teams")
    op.drop_table("agent_registry")
    op.drop_table("workspaces")
    op.drop_table("users")
