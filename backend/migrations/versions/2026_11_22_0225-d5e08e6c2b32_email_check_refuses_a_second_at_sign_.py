"""Tighter CHECKs: an email with a second @, and NaN where only a lower bound stood.

The model refused both; raw SQL could still store them. PostgreSQL orders NaN
above every number, so `x >= 0` alone admits it. (Not on MariaDB, whose
DOUBLE cannot hold NaN: there the lower bound is left as it was.)

Revision ID: d5e08e6c2b32
Revises: 471e0a1e9e28
Create Date: 2026-11-22 02:25:00.000000
"""

from collections.abc import Sequence

from alembic import op

# Revisions are frozen history: they import no model and nothing from core.
revision: str = "d5e08e6c2b32"
down_revision: str | Sequence[str] | None = "471e0a1e9e28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


EMAIL_BEFORE = "email = lower(trim(email)) AND email LIKE '%_@_%._%' AND email NOT LIKE '% %'"
EMAIL_AFTER = (
    "email = lower(trim(email)) AND email LIKE '%_@_%._%' AND email NOT LIKE '%@%@%'"
    " AND email NOT LIKE '% %'"
)

# (table, column, range before): each gains "AND <column> <> 'NaN'".
LOWER_BOUNDED_FLOATS = [
    ("agent_executions", "duration_seconds", "duration_seconds >= 0"),
    ("agent_proposals", "estimated_duration_hours", "estimated_duration_hours > 0"),
    ("agent_proposals", "user_override_duration_hours", "user_override_duration_hours > 0"),
]


def _replace_check(table: str, name: str, sqltext: str) -> None:
    if op.get_context().dialect.name == "mysql":
        # One statement: MariaDB commits each ALTER on its own, so a drop and
        # then an add that existing rows refuse would leave neither CHECK.
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} CHECK ({sqltext})"
        )
        return
    # resolve_fks=False: batch mode reflects this table alone, not the tables its
    # keys point at (alembic stubs them), which halves an upgrade on SQLite.
    with op.batch_alter_table(table, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.create_check_constraint(op.f(name), sqltext)


def _floats_can_hold_nan() -> bool:
    """Not on MariaDB: its DOUBLE cannot hold NaN, and in strict mode it refuses
    to compare a number with the text 'NaN'. There the lower bounds stay alone."""
    return op.get_context().dialect.name != "mysql"


def upgrade() -> None:
    _replace_check("users", "ck_users_email_format", EMAIL_AFTER)
    if _floats_can_hold_nan():
        for table, column, before in LOWER_BOUNDED_FLOATS:
            _replace_check(table, f"ck_{table}_{column}_range", f"{before} AND {column} <> 'NaN'")


def downgrade() -> None:
    if _floats_can_hold_nan():
        for table, column, before in LOWER_BOUNDED_FLOATS:
            _replace_check(table, f"ck_{table}_{column}_range", before)
    _replace_check("users", "ck_users_email_format", EMAIL_BEFORE)
