"""Work that must wait until a transaction has really committed: `on_commit`.

Django has `transaction.on_commit`, Rails `after_commit`; SQLAlchemy has
neither (sqlalchemy#4794), only session events that fire on every commit,
savepoint releases included. `on_commit(session, callback)` is the missing
piece, for effects outside the database (a message, an e-mail, a cache
purge) that must not happen for a change nobody will ever see:

- `callback()` runs once, after the session's outermost transaction has
  committed to the database, and never if it rolls back.
- Releasing a savepoint (`begin_nested()` ending well) is not a commit: the
  callbacks registered inside it wait for the transaction around it. Rolling
  a savepoint back drops the callbacks registered inside it, and only those.
- Callbacks run in the order they were registered, outside the transaction
  (a callback that uses the session begins a new one). If one raises, the
  commit stands, the others still run, and the first error is raised from
  `commit()`.
- A session that joined a transaction it does not own (bound to a
  `Connection` already inside `begin()`, as the test harness's `db` is)
  commits nothing when it commits: its callbacks wait for that outer
  transaction, and are dropped when it rolls back. SQLAlchemy reports a
  Connection's COMMIT only *before* sending it (no event follows it), so a
  callback cannot be run after it; if the outer transaction commits, they
  are dropped with an `UnrunCallbacksWarning`. Give such a session the
  transaction (`join_transaction_mode="control_fully"`, as `core.demo` does).
- Tests: `capture_on_commit()` collects the callbacks a block registers
  (Django's `captureOnCommitCallbacks`), and can run them.

Works on an `AsyncSession` through its `sync_session`
(`on_commit(async_session.sync_session, callback)`): its commit runs the
same Session events. The callback is a plain function.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType

import sqlalchemy
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, SessionTransaction

Callback = Callable[[], object]

# Where a session keeps what it has to run: `session.info[_PENDING]`, the
# callbacks waiting for a transaction, and `session.info[_COMMITTED]`, those
# whose transaction just committed, run when it has ended.
_PENDING = "core.transactions.pending"
_COMMITTED = "core.transactions.committed"
# `session.info[_OUTER]`: (connection, callbacks) waiting for the transaction
# of a Connection the session joined without owning it.
_OUTER = "core.transactions.outer"


class UnrunCallbacksWarning(UserWarning):
    """A transaction the session did not own committed: its callbacks were dropped."""


@dataclass(eq=False)
class _Pending:
    callback: Callback
    # The session's transaction whose fate the callback shares: a released
    # savepoint hands it to its parent; once handed to the transaction of a
    # Connection the session does not own (`_awaiting`), it keeps its ended one.
    transaction: SessionTransaction
    done: bool = False  # ran, or dropped


_capture: ContextVar[list[_Pending] | None] = ContextVar("on_commit_capture", default=None)


def on_commit(session: Session, callback: Callback) -> None:
    """Run `callback()` once `session`'s outermost transaction has committed.

    Registered in the session's innermost transaction (a savepoint, if one
    is open), so that it is dropped if that rolls back. A session with no
    transaction yet begins one, as its first query would.
    """
    # The innermost transaction, or, with none yet, the implicit begin a
    # session makes at its first use: not `session.begin()`, which would
    # refuse a later `with session.begin():`.
    transaction = session._autobegin_t()
    pending = _Pending(callback, transaction)
    session.info.setdefault(_PENDING, []).append(pending)
    captured = _capture.get()
    if captured is not None:
        captured.append(pending)


def pending_on_commit(session: Session) -> list[Callback]:
    """The callbacks `session` will run if its transactions commit, in order."""
    return [pending.callback for pending in _waiting(session)]


def _waiting(session: Session) -> list[_Pending]:
    pending: list[_Pending] = session.info.get(_PENDING, [])
    pending[:] = [item for item in pending if not item.done]
    return pending


def _inside(transaction: SessionTransaction, outer: SessionTransaction) -> bool:
    """Whether `transaction` is `outer` or one of its savepoints."""
    current: SessionTransaction | None = transaction
    while current is not None:
        if current is outer:
            return True
        current = current.parent
    return False


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    for pending in _waiting(session):
        if _inside(pending.transaction, previous_transaction):
            pending.done = True


event.listen(Session, "after_soft_rollback", _drop_rolled_back)


def _hand_on_committed(session: Session) -> None:
    waiting = _waiting(session)
    if not waiting:
        return
    # The transaction that committed: a savepoint while one is open (it is
    # still the session's innermost here), else the outermost.
    committed = session.get_nested_transaction() or session.get_transaction()
    mine = [pending for pending in waiting if pending.transaction is committed]
    if committed is None or not mine:
        return
    if committed.nested:  # a savepoint released: its callbacks join the transaction around it
        for pending in mine:
            pending.transaction = committed.parent or pending.transaction
        return
    outer = _outer_transaction(session)
    if outer is None:
        session.info.setdefault(_COMMITTED, []).extend(mine)
        for pending in mine:
            pending.done = True
        return
    # Their transaction has ended: no later commit or rollback of the
    # session's is theirs. The owner's transaction decides (`_awaiting`).
    _awaiting(session, outer).extend(mine)


event.listen(Session, "after_commit", _hand_on_committed)


def _outer_transaction(session: Session) -> Connection | None:
    """The Connection whose transaction the session joined without owning it,
    still open after the session's commit; None when that commit was real."""
    bind = session.bind
    if isinstance(bind, Connection) and bind.in_transaction():
        return bind
    return None


def _awaiting(session: Session, connection: Connection) -> list[_Pending]:
    """The callbacks of `session` waiting for `connection`'s transaction, which
    drops them when it ends (one list, and one pair of listeners, for each
    outer transaction)."""
    awaiting: tuple[Connection, list[_Pending]] | None = session.info.get(_OUTER)
    if awaiting is not None and awaiting[0] is connection:
        return awaiting[1]
    waiting: list[_Pending] = []
    session.info[_OUTER] = (connection, waiting)

    def ended(_connection: Connection) -> None:
        if session.info.get(_OUTER, (None, None))[1] is waiting:
            del session.info[_OUTER]
        for pending in waiting:
            pending.done = True

    def committed(_connection: Connection) -> None:
        unrun = [pending for pending in waiting if not pending.done]
        ended(_connection)
        if unrun:
            warnings.warn(
                f"{len(unrun)} on_commit callback(s) not run: the session joined a transaction "
                "of a Connection that it did not own, and SQLAlchemy gives no event after "
                "that transaction's COMMIT. Let the session own it "
                '(Session(bind=connection, join_transaction_mode="control_fully")).',
                UnrunCallbacksWarning,
                stacklevel=_outside_sqlalchemy(sys._getframe()),
            )

    # Listeners are not removed while SQLAlchemy runs them; once the
    # transaction has ended, these have nothing left to do.
    event.listen(connection, "rollback", ended)
    event.listen(connection, "commit", committed)
    return waiting


def _outside_sqlalchemy(frame: FrameType) -> int:
    """The `stacklevel` that points a warning given in `frame` (level 1) at
    the first frame outside this module and SQLAlchemy: the line that ended
    the transaction."""
    inside = (__file__, os.path.dirname(sqlalchemy.__file__))
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(inside):
        level, frame = level + 1, frame.f_back
    return level


def _run_committed(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    committed: list[_Pending] = session.info.pop(_COMMITTED, [])
    run_all(pending.callback for pending in committed)


event.listen(Session, "after_transaction_end", _run_committed)


def run_all(callbacks: Iterable[Callback]) -> None:
    """Run every callback, even after one has failed; then raise the first
    error, if any, noting how many others failed."""
    errors: list[BaseException] = []
    for callback in callbacks:
        try:
            callback()
        except Exception as error:
            errors.append(error)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            first.add_note(f"{len(errors) - 1} more on_commit callback(s) failed too")
        raise first


# --------------------------------------------------------------------------
# Tests: capturing the callbacks, like Django's captureOnCommitCallbacks
# --------------------------------------------------------------------------


@contextmanager
def capture_on_commit(*, execute: bool = False) -> Iterator[list[Callback]]:
    """Collect the callbacks registered inside the block (in this thread or task).

    Yields a list, filled when the block ends with the callbacks still
    waiting to run: those of a savepoint rolled back inside the block are
    not in it, nor those that already ran after a real commit. With
    `execute=True` they are run then (and so never again), including any
    they register in turn. For tests, where the `db` fixture's outer
    transaction never commits and no callback would ever run.
    """
    captured: list[_Pending] = []
    token = _capture.set(captured)
    callbacks: list[Callback] = []
    try:
        yield callbacks
        start = 0
        while True:
            batch = [pending for pending in captured[start:] if not pending.done]
            start = len(captured)
            callbacks.extend(pending.callback for pending in batch)
            if not execute or not batch:
                break
            for pending in batch:
                pending.done = True
            run_all(pending.callback for pending in batch)
    finally:
        _capture.reset(token)
