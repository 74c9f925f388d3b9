"""What the ORM tests share: reading the database behind the ORM's back, and
models built by their constructors with only the required columns.

A test reads the database with a fresh SELECT (or an expired object)
wherever the identity map could hide the truth.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Table, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import (
    AgentRegistry,
    ValidationError,
    WorkflowStepExecution,
)
from core.schema import Base
from tests.harness import QueryLog

FOREIGN_KEY_VIOLATION = "foreign key"  # in the error text of SQLite and PostgreSQL alike

# The `commit_and_expire` fixture (unit/conftest.py): commit, then expire every
# object, so that the next read of any attribute reloads it from the database.
Reload = Callable[[], None]


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


def reflected(db: Session) -> Any:
    """The schema as the database reports it (an `Inspector`), not as the models declare it."""
    return inspect(db.connection())


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


def assert_bound_holds(db: Session, obj: Base, field: str, good: object, bad: object) -> None:
    """`obj` was made with `field=good`, a value at the bound: it is stored as
    given, and `bad`, just beyond, is refused on assignment and by the CHECK."""
    model = type(obj)
    assert stored(db, model, field, primary_key(obj)) == good

    with pytest.raises(ValidationError, match=f"{model.__name__}.{field}"):
        setattr(obj, field, bad)
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(update(table_of(model)).values({field: bad}))


def assert_ordered_load(log: QueryLog, table: str) -> None:
    """The collection's order is asked of the database, not left to an index.

    SQLite happens to return (parent, sequence_order)-indexed rows in order
    even without ORDER BY; other databases do not promise that.
    """
    (load,) = [sql for sql in log.statements if f"FROM {table}" in sql]
    assert f"ORDER BY {table}.sequence_order" in load
