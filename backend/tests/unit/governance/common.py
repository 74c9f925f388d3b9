"""What the governance tests share: a trigger's payload, and rows and row
counts read from the database (not from the identity map)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.schema import Base
from tests.harness import tables_with_rows
from tests.unit.readback import table_of

PAYLOAD = {"ticket": 42, "priority": "high"}


def row_counts(db: Session) -> dict[str, int]:
    """Rows per non-empty table, after flushing what the session holds."""
    db.flush()
    return tables_with_rows(db.connection())


def count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def stored_row(db: Session, model: type[Base], key: str, *columns: str) -> dict[str, Any]:
    """The named columns of one row as the database holds them: a fresh
    SELECT, after flushing what the session holds."""
    db.flush()
    table = table_of(model)
    (key_column,) = table.primary_key.columns
    values = db.execute(select(*(table.c[name] for name in columns)).where(key_column == key))
    return dict(zip(columns, values.one(), strict=True))
