"""`core.transactions.on_commit` and the harness's `capture_on_commit`.

A callback runs once, after the session's outermost transaction really
commits; never if it rolls back; a released savepoint is no commit, and a
rolled-back one drops what was registered inside it. Real commits come from
`transactional_db` (the run's database, on each backend), the rest from
`db`, where nothing ever commits and `capture_on_commit` is the way in.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from sqlalchemy import Connection, Engine, RootTransaction, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import User
from core.transactions import (
    Callback,
    UnrunCallbacksWarning,
    on_commit,
    pending_on_commit,
)
from tests.harness import CommittingDatabase

Capture = Callable[..., AbstractContextManager[list[Callback]]]


class Calls:
    """Records which callbacks ran, and what a fresh connection saw then."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self.ran: list[str] = []
        self.users_seen: list[int] = []

    def __call__(self, name: str) -> Callback:
        def callback() -> None:
            self.ran.append(name)
            if self.engine is not None:
                with self.engine.connect() as connection:
                    count = connection.scalar(select(func.count()).select_from(User))
                    self.users_seen.append(int(count or 0))

        return callback


def assert_ran_after_the_commit(calls: Calls, name: str) -> None:
    """`name` alone ran, and the connection it opened already saw the one user."""
    assert calls.ran == [name]
    assert calls.users_seen == [1]


@contextmanager
def owner_transaction(engine: Engine) -> Iterator[tuple[Connection, RootTransaction]]:
    """A connection and the transaction it began: the owner a session joins."""
    with engine.connect() as connection:
        yield connection, connection.begin()


def commit_in_a_joined_session(connection: Connection, calls: Calls, name: str) -> None:
    """A session joined to `connection`'s transaction adds a user, registers
    `name` and commits: the session's commit, not the transaction's."""
    with Session(bind=connection) as session:
        session.add(User(email=f"{name}@example.com"))
        on_commit(session, calls(name))
        session.commit()


@pytest.fixture
def session(transactional_db: CommittingDatabase) -> Iterator[Session]:
    with transactional_db.sessions() as session:
        yield session


@pytest.fixture
def calls(transactional_db: CommittingDatabase) -> Calls:
    return Calls(transactional_db.engine)


# --------------------------------------------------------------------------
# Real commits
# --------------------------------------------------------------------------


def test_a_callback_runs_once_after_the_commit(session: Session, calls: Calls) -> None:
    session.add(User(email="committed@example.com"))
    session.flush()
    on_commit(session, calls("welcome"))
    assert calls.ran == []

    session.commit()

    assert_ran_after_the_commit(calls, "welcome")
    session.add(User(email="second@example.com"))
    session.commit()
    assert calls.ran == ["welcome"]  # once


def test_a_rolled_back_transaction_runs_nothing(session: Session, calls: Calls) -> None:
    session.add(User(email="rolled@example.com"))
    on_commit(session, calls("never"))
    session.rollback()
    session.commit()
    assert calls.ran == []
    assert pending_on_commit(session) == []


def test_a_released_savepoint_is_not_a_commit(session: Session, calls: Calls) -> None:
    with session.begin_nested():
        session.add(User(email="nested@example.com"))
        on_commit(session, calls("inner"))
    assert calls.ran == []
    assert pending_on_commit(session) != []
    session.commit()
    assert_ran_after_the_commit(calls, "inner")


def test_a_savepoint_released_around_nothing_leaves_the_outer_callbacks(
    session: Session, calls: Calls
) -> None:
    session.add(User(email="outer@example.com"))
    on_commit(session, calls("outer"))
    with session.begin_nested():
        session.add(User(email="inner@example.com"))
    assert calls.ran == []
    session.commit()
    assert calls.ran == ["outer"]


def test_a_rolled_back_savepoint_drops_only_its_own_callbacks(
    session: Session, calls: Calls
) -> None:
    on_commit(session, calls("before"))
    savepoint = session.begin_nested()
    on_commit(session, calls("inside"))
    with session.begin_nested():
        on_commit(session, calls("deeper"))
    savepoint.rollback()
    with session.begin_nested():
        on_commit(session, calls("after"))
    session.commit()
    assert calls.ran == ["before", "after"]


def test_a_commit_that_fails_runs_nothing(session: Session, calls: Calls) -> None:
    session.add(User(email="taken@example.com"))
    session.commit()
    session.add(User(email="taken@example.com"))
    on_commit(session, calls("duplicate"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.commit()
    assert calls.ran == []


def test_callbacks_run_in_order_and_an_error_stops_none_of_them(
    session: Session, calls: Calls
) -> None:
    def fails(message: str) -> Callback:
        def callback() -> None:
            raise RuntimeError(message)

        return callback

    session.add(User(email="errors@example.com"))
    for callback in (calls("first"), fails("one"), calls("second"), fails("two")):
        on_commit(session, callback)

    with pytest.raises(RuntimeError) as failure:
        session.commit()

    assert calls.ran == ["first", "second"]
    assert str(failure.value) == "one"
    assert failure.value.__notes__ == ["1 more on_commit callback(s) failed too"]
    assert calls.users_seen == [1, 1]  # the commit stands
    session.add(User(email="usable@example.com"))
    session.commit()


def test_one_failing_callback_is_raised_as_it_is(session: Session, calls: Calls) -> None:
    def fails() -> None:
        raise RuntimeError("alone")

    session.add(User(email="alone@example.com"))
    on_commit(session, fails)
    on_commit(session, calls("after"))

    with pytest.raises(RuntimeError) as failure:
        session.commit()

    assert calls.ran == ["after"]
    assert str(failure.value) == "alone"
    assert not hasattr(failure.value, "__notes__")  # no "0 more failed too"


def test_registered_before_any_work_it_waits_for_the_first_commit(
    session: Session, calls: Calls
) -> None:
    on_commit(session, calls("early"))
    session.add(User(email="late@example.com"))
    assert calls.ran == []
    session.commit()
    assert calls.ran == ["early"]


def test_a_callback_may_use_the_session_again(session: Session) -> None:
    def count_users() -> None:
        counted.append(session.scalar(select(func.count()).select_from(User)) or 0)

    counted: list[int] = []
    session.add(User(email="again@example.com"))
    on_commit(session, count_users)
    session.commit()
    assert counted == [1]


# --------------------------------------------------------------------------
# A session that joined a transaction it does not own
# --------------------------------------------------------------------------


def test_in_the_db_fixture_nothing_runs_by_itself(db: Session) -> None:
    ran: list[str] = []
    db.add(User(email="fixture@example.com"))
    on_commit(db, lambda: ran.append("x"))
    db.commit()  # only the fixture's savepoint
    assert ran == []
    assert len(pending_on_commit(db)) == 1


def test_capture_collects_what_would_run_and_can_run_it(
    db: Session, capture_on_commit: Capture
) -> None:
    ran: list[str] = []
    with capture_on_commit() as callbacks:
        on_commit(db, lambda: ran.append("kept"))
        savepoint = db.begin_nested()
        on_commit(db, lambda: ran.append("rolled back"))
        savepoint.rollback()
        db.commit()
    assert len(callbacks) == 1
    assert ran == []
    callbacks[0]()
    assert ran == ["kept"]

    with capture_on_commit(execute=True) as executed:
        on_commit(db, lambda: on_commit(db, lambda: ran.append("registered by a callback")))
    assert len(executed) == 2
    assert ran == ["kept", "registered by a callback"]


def test_capture_leaves_out_what_already_ran(
    transactional_db: CommittingDatabase, capture_on_commit: Capture
) -> None:
    calls = Calls()
    with capture_on_commit(execute=True) as callbacks, transactional_db.sessions() as session:
        session.add(User(email="ran@example.com"))
        on_commit(session, calls("committed"))
        session.commit()
    assert calls.ran == ["committed"]
    assert callbacks == []


@pytest.mark.parametrize("owner_ends", ["commit", "rollback"])
def test_a_joined_session_cannot_run_them_after_its_owners_commit(
    transactional_db: CommittingDatabase, owner_ends: str
) -> None:
    """The owner's COMMIT has no event after it: its commit warns that the
    callbacks were not run; its rollback drops them quietly."""
    calls = Calls()
    with owner_transaction(transactional_db.engine) as (connection, owner):
        commit_in_a_joined_session(connection, calls, "joined")
        if owner_ends == "commit":
            committing_line = sys._getframe().f_lineno + 2
            with pytest.warns(UnrunCallbacksWarning, match="1 on_commit callback") as warned:
                owner.commit()
            # Reported at the line that committed, not inside SQLAlchemy.
            [warning] = warned.list
            assert (warning.filename, warning.lineno) == (__file__, committing_line)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                owner.rollback()
    assert calls.ran == []


def test_the_next_transaction_of_the_connection_does_not_meet_them_again(
    transactional_db: CommittingDatabase,
) -> None:
    calls = Calls()
    with owner_transaction(transactional_db.engine) as (connection, owner):
        commit_in_a_joined_session(connection, calls, "first")
        owner.rollback()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with connection.begin():
                pass  # committed: nothing is left to warn about
    assert calls.ran == []


def test_a_session_given_control_of_the_transaction_runs_them(
    transactional_db: CommittingDatabase,
) -> None:
    calls = Calls(transactional_db.engine)
    with (
        transactional_db.engine.connect() as connection,
        connection.begin(),
        Session(bind=connection, join_transaction_mode="control_fully") as session,
    ):
        session.add(User(email="owned@example.com"))
        on_commit(session, calls("owned"))
        session.commit()
    assert_ran_after_the_commit(calls, "owned")


def test_a_rolled_back_savepoint_drops_those_of_the_savepoints_still_open_inside_it(
    session: Session, calls: Calls
) -> None:
    on_commit(session, calls("before"))
    savepoint = session.begin_nested()
    session.begin_nested()
    on_commit(session, calls("in a savepoint left open"))
    savepoint.rollback()  # the only rollback SQLAlchemy reports: of `savepoint`
    assert len(pending_on_commit(session)) == 1
    session.commit()
    assert calls.ran == ["before"]


def test_callbacks_waiting_for_the_owner_outlive_a_rollback_of_the_session(
    db: Session,
) -> None:
    """Handed on to the fixture's transaction by `commit()`, they belong to
    it, not to the session's next transaction."""

    def waiting() -> None:
        pass

    on_commit(db, waiting)
    db.commit()
    db.add(User(email="then@example.com"))
    db.rollback()
    assert pending_on_commit(db) == [waiting]


def test_the_owners_commit_warns_once_for_all_the_joined_commits(
    transactional_db: CommittingDatabase,
) -> None:
    calls = Calls()
    with (
        owner_transaction(transactional_db.engine) as (connection, owner),
        Session(bind=connection) as session,
    ):
        for name in ("first", "second"):
            session.add(User(email=f"{name}@example.com"))
            on_commit(session, calls(name))
            session.commit()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            owner.commit()
    assert [(warning.category, str(warning.message)) for warning in caught] == [
        (
            UnrunCallbacksWarning,
            "2 on_commit callback(s) not run: the session joined a transaction of a "
            "Connection that it did not own, and SQLAlchemy gives no event after that "
            "transaction's COMMIT. Let the session own it "
            '(Session(bind=connection, join_transaction_mode="control_fully")).',
        )
    ]
    assert calls.ran == []


def test_a_session_keeps_nothing_of_an_owners_transaction_once_it_ended(
    transactional_db: CommittingDatabase,
) -> None:
    with (
        owner_transaction(transactional_db.engine) as (connection, owner),
        Session(bind=connection) as session,
    ):
        on_commit(session, lambda: None)
        session.commit()
        assert "core.transactions.outer" in session.info
        owner.rollback()
        assert "core.transactions.outer" not in session.info
        assert pending_on_commit(session) == []
