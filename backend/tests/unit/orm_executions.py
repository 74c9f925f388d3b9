"""The ORM executions a session makes, as its `do_orm_execute` hook sees them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session


@contextmanager
def orm_executions(db: Session) -> Iterator[list[ORMExecuteState]]:
    """Every ORM statement `db` runs inside the block, with the execution
    options the class-wide hooks (`core.validation`'s among them) left it."""
    executed: list[ORMExecuteState] = []
    record = executed.append
    event.listen(db, "do_orm_execute", record)
    try:
        yield executed
    finally:
        event.remove(db, "do_orm_execute", record)
