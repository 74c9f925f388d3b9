"""N+1 detection: Rails' `strict_loading` (`n_plus_one_only`) for SQLAlchemy.

SQLAlchemy's `raiseload` refuses every lazy load, a single harmless one
included, and only where the option is written. The N+1 signature is
narrower: the same relationship lazy-loaded for two or more objects of one
class, one SELECT each, as a loop over objects does. Inside `strict_loading()`
that fails when the block ends, naming the class, the relationship, the
statement and where each load came from; a single lazy load stays allowed.

How: a `do_orm_execute` listener on the `Session` class, so every session of
the process is watched (threads included, and an `AsyncSession`, whose
`sync_session` runs the same events). A lazy load is an ORM SELECT whose
`ORMExecuteState.lazy_loaded_from` is the object and whose
`loader_strategy_path` ends with the relationship. Loads SQLAlchemy answers
from the identity map (a many-to-one whose object is already loaded) run no
SQL and are not counted; nor are eager loads (`selectinload`,
`joinedload`), which load many objects' relationships in one statement.

Loads are grouped per session, and per transaction of it: a unit of work
that commits or rolls back starts afresh, so separate units of work that each
load one object's relationship (requests, steps of a state machine) are not
an N+1, while a loop inside one transaction is.

In the test suite: `@pytest.mark.strict_loading` on a test, or
`pytest --strict-loading` for every test (conftest.py).
"""

from __future__ import annotations

import os
import threading
import traceback
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql.elements import ClauseElement

_SKIPPED_FOLDERS = (f"{os.sep}sqlalchemy{os.sep}", f"{os.sep}factory{os.sep}")


class NPlusOneError(AssertionError):
    """A relationship was lazy-loaded for two or more objects of one class."""


@dataclass
class LazyLoads:
    """The lazy loads of one relationship in one transaction of one session."""

    owner: str  # the class whose objects were loaded from
    relationship: str
    statement: str
    loads: list[tuple[Any, str]] = field(default_factory=list)  # (parameters, where)
    objects: set[int] = field(default_factory=set)  # id() of each InstanceState

    def describe(self) -> str:
        lines = [
            f"{self.owner}.{self.relationship} was lazy-loaded for {len(self.objects)} "
            f"{self.owner} objects, one SELECT each:",
            f"  {self.statement}",
        ]
        lines += [
            f"  {n}. {parameters} at {where}" for n, (parameters, where) in enumerate(self.loads, 1)
        ]
        return "\n".join(lines)


class StrictLoading:
    """What one `strict_loading()` block saw: its N+1s, and every lazy load."""

    def __init__(self) -> None:
        self.lazy_loads: list[LazyLoads] = []
        # Per session, for its current transaction: (class, relationship) -> its loads.
        self._open: weakref.WeakKeyDictionary[Session, dict[tuple[str, str], LazyLoads]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def n_plus_ones(self) -> list[LazyLoads]:
        return [loads for loads in self.lazy_loads if len(loads.objects) > 1]

    def record(self, state: ORMExecuteState) -> None:
        owner = state.lazy_loaded_from
        path = state.loader_strategy_path
        if owner is None or path is None:
            return
        relationship = getattr(path, "prop", None)
        key = getattr(relationship, "key", str(path))
        group = (owner.class_.__name__, key)
        groups = self._open.setdefault(state.session, {})
        loads = groups.get(group)
        if loads is None:
            loads = LazyLoads(owner.class_.__name__, key, _sql(state))
            groups[group] = loads
            self.lazy_loads.append(loads)
        loads.objects.add(id(owner))
        parameters = state.parameters
        values = tuple(parameters.values()) if isinstance(parameters, Mapping) else parameters
        loads.loads.append((values, _caller()))

    def transaction_ended(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            self._open.pop(session, None)

    def check(self) -> None:
        found = self.n_plus_ones
        if found:
            raise NPlusOneError(
                "N+1 lazy loading (the same relationship loaded one object at a time):\n"
                + "\n".join(loads.describe() for loads in found)
                + "\nLoad it for all of them in one statement: add "
                "selectinload(Class.relationship) to the query that loaded them, or "
                "run one such query for the objects at hand before the loop."
            )


def _sql(state: ORMExecuteState) -> str:
    bind = state.session.get_bind(mapper=state.bind_mapper)
    statement = cast(ClauseElement, state.statement)  # an ORM SELECT
    return " ".join(str(statement.compile(dialect=bind.dialect)).split())


def _caller() -> str:
    """Where the load came from: the innermost frame outside SQLAlchemy,
    factory_boy and this module."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if frame.filename != __file__ and not any(
            folder in frame.filename for folder in _SKIPPED_FOLDERS
        ):
            return f"{os.path.relpath(frame.filename)}:{frame.lineno} in {frame.name}"
    return "(unknown)"  # pragma: no cover - some frame is always the caller's


# The blocks in force, innermost last: a load belongs to the innermost, so a
# test that plants an N+1 in its own block still passes under --strict-loading.
_blocks: list[StrictLoading] = []
_lock = threading.Lock()


def _on_execute(state: ORMExecuteState) -> None:
    if not state.is_select:
        return
    with _lock:
        block = _blocks[-1] if _blocks else None
    if block is not None:
        block.record(state)


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    with _lock:
        blocks = list(_blocks)
    for block in blocks:
        block.transaction_ended(session, transaction)


@contextmanager
def strict_loading() -> Iterator[StrictLoading]:
    """Fail, when the block ends, if a relationship was lazy-loaded for two or
    more objects of one class in one transaction of a session (`NPlusOneError`,
    naming each). A block that raises is left to its own error."""
    block = StrictLoading()
    with _lock:
        if not _blocks:
            event.listen(Session, "do_orm_execute", _on_execute)
            event.listen(Session, "after_transaction_end", _on_transaction_end)
        _blocks.append(block)
    try:
        yield block
    finally:
        with _lock:
            _blocks.remove(block)
            if not _blocks:
                event.remove(Session, "do_orm_execute", _on_execute)
                event.remove(Session, "after_transaction_end", _on_transaction_end)
    block.check()
