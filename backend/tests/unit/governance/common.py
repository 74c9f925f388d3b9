"""What the governance tests share: a trigger's payload and row counts read
from the database (not from the identity map)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.harness import tables_with_rows

PAYLOAD = {"ticket": 42, "priority": "high"}


def row_counts(db: Session) -> dict[str, int]:
    """Rows per non-empty table, after flushing what the session holds."""
    db.flush()
    return tables_with_rows(db.connection())


def count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)
