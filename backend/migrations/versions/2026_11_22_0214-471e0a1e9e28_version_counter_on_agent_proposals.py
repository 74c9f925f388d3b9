"""Optimistic version counter on agent_proposals (the governance layer's lock).

Every UPDATE of a proposal checks and bumps `version`, so of two sessions
deciding the same proposal only the first to commit wins. Existing rows start
at 1, like new ones.

Revision ID: 471e0a1e9e28
Revises: a2a5d3c4f188
Create Date: 2026-11-22 02:14:02.913861
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revisions are frozen history: they import no model and nothing from core.
revision: str = "471e0a1e9e28"
down_revision: str | Sequence[str] | None = "a2a5d3c4f188"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # resolve_fks=False: batch mode reflects this table alone, not the tables its
    # keys point at (alembic stubs them), which halves an upgrade on SQLite.
    with op.batch_alter_table("agent_proposals", reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("agent_proposals", reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("version")
