"""Integer columns hold whole numbers: a CHECK on each, named <column>_integer.

SQLite stores 3.5, 'abc' or 2**40 in an INTEGER column as given; the CHECK
refuses any value that is not a whole number within INTEGER's range. On
PostgreSQL (and MariaDB) the column type already rounds or refuses such
values, so the CHECK never fires there; it is added everywhere so that every
backend's schema is the same. An existing SQLite row that breaks the rule
makes the upgrade fail (in one transaction, nothing changed), naming the
constraint: fix the row, then upgrade again.

Revision ID: 1f855b9f8987
Revises: d5e08e6c2b32
Create Date: 2026-12-03 09:50:34.238453
"""

from collections.abc import Sequence

from alembic import op

# Revisions are frozen history: they import no model and nothing from core.
revision: str = "1f855b9f8987"
down_revision: str | Sequence[str] | None = "d5e08e6c2b32"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


INTEGER_COLUMNS = {
    "agent_feedback": ["rating"],
    "agent_proposals": ["version"],
    "episode_access_logs": ["results_count", "access_duration_ms"],
    "episode_segments": ["sequence_order"],
    "episodes": [
        "canvas_action_count",
        "supervisor_rating",
        "intervention_count",
        "duration_seconds",
        "human_intervention_count",
        "access_count",
    ],
    "workflow_executions": ["version"],
    "workflow_step_executions": ["sequence_order", "duration_ms", "retry_count"],
}
INT32 = (-(2**31), 2**31 - 1)


def upgrade() -> None:
    for table, columns in INTEGER_COLUMNS.items():
        # One batch per table: SQLite rebuilds each table once.
        # resolve_fks=False: batch mode reflects this table alone, not the tables its
        # keys point at (alembic stubs them), which halves an upgrade on SQLite.
        with op.batch_alter_table(table, reflect_kwargs={"resolve_fks": False}) as batch_op:
            for column in columns:
                batch_op.create_check_constraint(
                    op.f(f"ck_{table}_{column}_integer"),
                    f"{column} = ROUND({column}) AND {column} BETWEEN {INT32[0]} AND {INT32[1]}",
                )


def downgrade() -> None:
    for table, columns in INTEGER_COLUMNS.items():
        with op.batch_alter_table(table, reflect_kwargs={"resolve_fks": False}) as batch_op:
            for column in columns:
                batch_op.drop_constraint(op.f(f"ck_{table}_{column}_integer"), type_="check")
